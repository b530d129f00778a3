"""The study's sampler: multi-objective TPE that learns from early-stopped trials.

How Optuna 5.0's TPE (``optuna/samplers/_tpe/sampler.py``, ``_split_trials``) treats this
project's trials, and what this module changes:

- COMPLETE trials are split into "good" (``below``) and "bad" by non-dominated rank of
  (accuracy, MACs), ties broken by hypervolume subset selection; the good set has
  ``ceil(0.1 * n)`` trials (``default_gamma_multiobjective``).
- PRUNED trials only fill the good set when there are fewer complete trials than that; they are
  ordered by their last intermediate value, but a multi-objective study cannot report
  intermediate values (``Trial.report`` raises), so they all tie and fill it in trial-number
  order whatever they achieved; otherwise they land in the bad set with the worst completes. An
  early-stopped trial is thus either "good" by accident or "bad" by default, never ranked by
  what it showed; when completes are few, the good set is mostly pruned trials.
- Trials with a positive constraint (``Trial.set_constraint``) are infeasible: they come after
  every feasible trial, so they only reach the good set when there are not enough feasible ones.

:class:`ObservedSampler` therefore shows TPE each trial stopped by the scheduler (status "pruned"
with its "last_accuracy" attr) as an *observation*: a COMPLETE trial with values
``[last_accuracy, *costs]`` (its MACs and/or measured latency, as the study's objectives say).
It then takes part in the non-dominated split like any result, ranked by the accuracy it reached
when it was stopped, a conservative (low) estimate of its final accuracy, not as the worst
possible result. Over-budget candidates carry a constraint set by the planner,
so they stay in TPE's infeasible group; older infeasible trials without one (studies written
before this module) are hidden from TPE. Running trials are still seen through ``constant_liar``
(TPE puts them in the bad set so parallel workers don't sample the same point). Nothing is
written to the study: the conversion happens in a read-only view that only the sampler sees.
"""

from __future__ import annotations

import weakref
from collections.abc import Container, Iterable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from search.strategy.groups import IncrementalGroups
from search.study import schema
from search.study.schema import DEFAULT_OBJECTIVES, INFEASIBLE, PRUNED, cost_values, objectives_of
from search.study.snapshot import generation

SAMPLERS: tuple[str, ...] = ("tpe", "random", "gp", "nsga2")
NSGA_POPULATION = 8  # a generation per 8 trials: a 32-trial search sees four
MAX_STARTUP = 10  # Optuna's default n_startup_trials


def make_sampler(seed: int, trials: int | None = None, kind: str = "tpe") -> BaseSampler:
    """The sampler of a search with ``trials`` trials (``kind`` "random" or "gp" for benchmarks).

    TPE: multivariate with ``group=True`` (the conditional se_ratio / experts form separate
    groups), ``constant_liar`` for concurrent trials, and random start-up trials: Optuna's 10, or
    a third of a short study (at least 4), so that TPE has a say in a 12-trial study too.
    "gp" is Optuna's Gaussian-process sampler (multi-objective: log expected hypervolume
    improvement) with the same start-up trials and the same view of early-stopped trials; a
    benchmark's alternative, since a GP often learns faster than TPE from a dozen trials. It has
    no constant liar, so it is not offered for concurrent searches. "nsga2" is Optuna's NSGA-II
    (Deb et al. 2002), the evolutionary baseline of multi-objective NAS, with generations of
    ``NSGA_POPULATION`` trials (its default 50 would leave a 64-trial search one generation).
    """
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "gp":
        return ObservedSampler(
            optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=startup_trials(trials), warn_independent_sampling=False
            )
        )
    if kind == "nsga2":
        return ObservedSampler(
            optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGA_POPULATION)
        )
    if kind != "tpe":
        raise ValueError(f"unknown sampler {kind!r}; choose from {SAMPLERS}")
    return ObservedSampler(
        optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup_trials(trials),
            multivariate=True,
            group=True,
            constant_liar=True,
        )
    )


def startup_trials(trials: int | None) -> int:
    """TPE's random start-up trials: Optuna's 10, or a third of a short study (at least 4)."""
    return MAX_STARTUP if trials is None else max(4, min(MAX_STARTUP, trials // 3))


def observed(
    trial: FrozenTrial, objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
) -> FrozenTrial | None:
    """How the sampler sees one trial: itself, an early-stopped trial as an observation, or
    ``None`` for an infeasible trial without a constraint (hidden)."""
    if trial.state != TrialState.PRUNED:
        return trial
    attrs = trial.user_attrs
    if attrs.get(schema.STATUS) == INFEASIBLE and not trial.constraints:
        return None
    accuracy, costs = attrs.get(schema.LAST_ACCURACY), cost_values(attrs, objectives)
    if attrs.get(schema.STATUS) != PRUNED or not _number(accuracy) or costs is None:
        return trial
    return FrozenTrial(
        number=trial.number,
        state=TrialState.COMPLETE,
        value=None,
        values=[float(accuracy), *costs],
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=trial._trial_id,
    )


class _ObservedStudy:
    """The study as the inner sampler sees it: everything delegated, trials through
    :func:`observed` (Optuna's samplers read trials only through ``_get_trials``).

    On the driver's storage (``search.study.snapshot``) a finished trial is the same object at
    every read and the trial lists change only with the storage's ``generation``, so each trial is
    converted once and each list is built once per generation (a TPE suggestion reads them four
    or five times); elsewhere every read converts every trial, as before."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._state = _state(study)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        state = self._state
        current = generation(self._study)
        if current is None or deepcopy or use_cache:
            trials = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache)
            return _filtered(map(state.observed, trials), states)
        if state.generation != current:
            state.generation, state.lists = current, {}
        key = None if states is None else frozenset(s for s in TrialState if s in states)
        if key not in state.lists:
            if None not in state.lists:
                trials = self._study._get_trials(deepcopy=False, states=None)
                state.lists[None] = _filtered(map(state.observed, trials), None)
            state.lists[key] = _filtered(state.lists[None], states)
        return list(state.lists[key])

    def get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class _StudyState:
    """What the sampler keeps of one study across suggestions (a new inner sampler is made for
    every trial, ``search.strategy.seeding``): the objectives, each finished trial as seen,
    the lists of the current generation and TPE's groups."""

    def __init__(self, study: optuna.Study) -> None:
        self.objectives = objectives_of(study)
        self.seen: dict[int, tuple[FrozenTrial, FrozenTrial | None]] = {}
        self.generation: int | None = None
        self.lists: dict[frozenset[TrialState] | None, list[FrozenTrial]] = {}
        self.groups = IncrementalGroups(study, self.observed)

    def observed(self, trial: FrozenTrial) -> FrozenTrial | None:
        """:func:`observed`, converted once per finished trial object."""
        if not trial.state.is_finished():
            return observed(trial, self.objectives)
        known = self.seen.get(trial._trial_id)
        if known is None or known[0] is not trial:
            known = (trial, observed(trial, self.objectives))
            self.seen[trial._trial_id] = known
        return known[1]


def _filtered(
    trials: Iterable[FrozenTrial | None], states: Container[TrialState] | None
) -> list[FrozenTrial]:
    return [t for t in trials if t is not None and (states is None or t.state in states)]


class ObservedSampler(BaseSampler):
    """A sampler that shows its inner sampler the study through :func:`observed`."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if getattr(self.inner, "_group_decomposed_search_space", None) is not None:
            # TPE's groups, kept up to date instead of recomputed (search.strategy.groups)
            self.inner._group_decomposed_search_space = _state(study).groups
        return self.inner.infer_relative_search_space(_view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(_view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(_view(study), trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(_view(study), trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(_view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def _view(study: optuna.Study) -> Any:
    return study if isinstance(study, _ObservedStudy) else _ObservedStudy(study)


def _state(study: optuna.Study) -> _StudyState:
    if study not in _STATES:
        _STATES[study] = _StudyState(study)
    return _STATES[study]


_STATES: weakref.WeakKeyDictionary[optuna.Study, _StudyState] = weakref.WeakKeyDictionary()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
