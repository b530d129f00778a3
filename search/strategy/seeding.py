"""Sampler seeds that never repeat: trial N draws its random numbers from seed (--seed, N).

Why: a sampler seeded once per driver (say with ``--seed + len(trials)``) gives two drivers that
start from the same number of trials (two drivers at once on a new study, or two resumes at the same
time) the same seed, and they draw the very same parameters, trial after trial. Trial numbers,
however, are handed out by the database, one per trial, to whichever driver asks: so
:class:`TrialSeededSampler` builds the actual sampler afresh for every trial, in Optuna's
``before_trial`` hook (called with the new trial's number before anything is sampled), seeded with
:func:`sampler_seed` of ``--seed`` and that number.

The rule, and why it keeps runs reproducible: the random draws of trial N depend only on
``--seed`` and N (plus, for a model-based sampler such as TPE, the study's history at that
moment). A search run from scratch with the same seed and one trial at a time repeats exactly; a
resume continues with numbers no earlier trial had; concurrent trials differ by their numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from common.clock import DECISIONS

SamplerFactory = Callable[[int], BaseSampler]


def sampler_seed(seed: int, number: int) -> int:
    """A 32-bit seed for trial ``number`` of a search with ``--seed seed`` (hash-mixed, so
    neighbouring seeds and numbers give unrelated random streams)."""
    digest = hashlib.blake2b(f"effnas-sampler:{seed}:{number}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class TrialSeededSampler(BaseSampler):
    """Delegates to ``factory(sampler_seed(seed, trial.number))``, made anew for each trial."""

    def __init__(self, factory: SamplerFactory, seed: int) -> None:
        self.factory = factory
        self.seed = seed
        self._sampler = factory(sampler_seed(seed, -1))  # until the first trial is asked

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        with DECISIONS.part("sample"):
            self._sampler = self.factory(sampler_seed(self.seed, trial.number))
            self._sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        with DECISIONS.part("sample"):
            return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        with DECISIONS.part("sample"):
            return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        with DECISIONS.part("sample"):
            return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with DECISIONS.part("sample"):
            self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()
