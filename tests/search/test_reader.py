"""Padded studies (search/driver/padding.py) and the plain-query reader (search/study/reader.py)
against Optuna's own ``add_trials`` and ``RDBStorage`` reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.driver.padding import pad, padding_trials, rung_points
from search.strategy.scheduler import make_scheduler
from search.study.database import open_storage
from search.study.reader import read_trials
from search.study.schema import DIRECTIONS, Counts
from search.worker.curves import SyntheticCurves
from space.searchspace import SearchSpace
from tests.fixtures_pg import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures used by name

CONFIG = SearchConfig(
    budget_macs=20_000_000,
    dataset="fashion-mnist",
    trials=40,
    epochs=4,
    subset=200,
    val_fraction=0.25,
    space=SearchSpace.from_mapping(
        {"block": ["standard", "se"], "expansion": [1, 2, 4], "base_resolution": 16}
    ),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pad.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _shape(trial: FrozenTrial) -> tuple[object, ...]:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.params,
        trial.distributions,
        trial.user_attrs,
        trial.system_attrs,
        trial.intermediate_values,
        trial.datetime_start,
        trial.datetime_complete,
    )


def test_a_padded_study_reads_back_as_optunas_own(url: str) -> None:
    trials = padding_trials(CONFIG, 10, 30, SyntheticCurves(), seed=1)
    counts = Counts.of(trials)
    assert counts.done == 30 and counts.pruned > 0 and counts.complete > 0
    storage = open_storage(url)
    ours, theirs = (
        optuna.create_study(study_name=name, storage=storage, directions=list(DIRECTIONS))
        for name in ("padded", "added")
    )
    for study in (ours, theirs):
        study.enqueue_trial({"block": "se"})  # a trial of the study's own comes first
    pad(storage, ours._study_id, trials)
    theirs.add_trials(trials)
    added = optuna.load_study(study_name="added", storage=url).trials
    padded = optuna.load_study(study_name="padded", storage=url).trials
    assert [_shape(t) for t in padded] == [_shape(t) for t in added]
    assert [t.number for t in padded] == list(range(len(trials) + 1))
    assert padded[0].state == TrialState.WAITING
    # the plain-query reader gives what Optuna's ORM gives, for the study or some trials
    orm = storage._get_trials(ours._study_id, None, set(), -1)
    assert [_shape(t) for t in read_trials(storage, ours._study_id)] == [_shape(t) for t in orm]
    some = {orm[3]._trial_id, orm[7]._trial_id}
    assert [t._trial_id for t in read_trials(storage, ours._study_id, some)] == sorted(some)


def test_the_rungs_of_a_padded_search() -> None:
    trials = padding_trials(CONFIG, 10, 12, SyntheticCurves(), seed=2)
    scheduler = rung_points(trials, make_scheduler(4), ("accuracy", "macs"))
    trained = [t for t in trials if t.user_attrs.get("status") != "infeasible"]
    assert scheduler.milestones == [1] and len(scheduler.rungs[1]) == len(trained) == 12
    first = trained[0]
    point = scheduler.rungs[1][f"padded-{first.number}"]
    assert point == (first.user_attrs["accuracy_per_epoch"][0], first.user_attrs["macs"])
