"""Sampler seeds (search/sampling.py): never repeated across drivers or resumes, reproducible."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.strategy.seeding import TrialSeededSampler, sampler_seed
from search.study.database import open_storage
from search.study.schema import DIRECTIONS
from space.searchspace import SearchSpace

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
SPACE = SearchSpace.from_mapping(
    {"block": ["standard", "se"], "expansion": [1, 2], "se_ratio": 4, "resolution": 24}
)


def tpe(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def drive(path: Path, samplers: list[optuna.samplers.BaseSampler], asks: int) -> list[tuple]:
    """``asks`` trials asked in turn by one driver per sampler, all on one study."""
    storage = open_storage(f"sqlite:///{path}")
    optuna.create_study(study_name="s", storage=storage, directions=list(DIRECTIONS))
    studies = [optuna.load_study(study_name="s", storage=storage, sampler=s) for s in samplers]
    drawn = []
    for i in range(asks):
        study = studies[i % len(studies)]
        trial = study.ask()
        SPACE.sample(trial)
        drawn.append(tuple(sorted(trial.params.items())))
        study.tell(trial, [0.1 * (i % 5), 1000 + i])
    return drawn


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_old_rule_repeats_for_two_drivers_starting_together(tmp_path: Path) -> None:
    # `--seed + len(trials)` when both start on the same study: the same seed, the same draws
    drawn = drive(tmp_path / "old.db", [tpe(0 + 0), tpe(0 + 0)], asks=8)
    assert len(set(drawn)) < len(drawn)


def test_trial_seeds_never_repeat_and_reproduce(tmp_path: Path) -> None:
    one = drive(tmp_path / "one.db", [TrialSeededSampler(tpe, 0)], asks=14)
    two = drive(tmp_path / "two.db", [TrialSeededSampler(tpe, 0), TrialSeededSampler(tpe, 0)], 14)
    assert len(set(one)) == len(one)  # past TPE's 10 random start-up trials too
    assert two == one  # trial N draws with (--seed, N): who asks does not matter
    other = drive(tmp_path / "other.db", [TrialSeededSampler(tpe, 1)], asks=14)
    assert not set(other) & set(one)
    seeds = {sampler_seed(s, n) for s in range(20) for n in range(200)}
    assert len(seeds) == 20 * 200 and all(0 <= s < 2**32 for s in seeds)
