"""The driver's snapshot storage (search/study/snapshot.py) on a real SQLite study: one read and
one write per decision, what it writes read back through plain Optuna, other drivers' writes seen
at the next decision, and claims (a waiting trial, a finished trial) still decided by the
database."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.driver.run import run_search
from search.driver.simulated import SimulatedExecutor
from search.study.database import open_storage
from search.study.schema import DIRECTIONS
from search.study.snapshot import SnapshotStorage, decision, set_user_attrs
from search.worker.curves import SyntheticCurves
from space.searchspace import SearchSpace
from tests.fixtures_pg import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures used by name

ALPHA = FloatDistribution(1.0, 2.0)
BLOCK = CategoricalDistribution(["standard", "se"])


def _storage(where: Path | str) -> optuna.storages.RDBStorage:
    """A new connection to the test's database: an SQLite file in a folder, or a server URL."""
    return open_storage(where if isinstance(where, str) else f"sqlite:///{where / 'snap.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's study lives: an SQLite file, or a fresh PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path
    return request.getfixturevalue("postgres_url")


def _study(storage: optuna.storages.BaseStorage, create: bool = False) -> optuna.Study:
    if create:
        return optuna.create_study(study_name="s", storage=storage, directions=list(DIRECTIONS))
    return optuna.load_study(study_name="s", storage=storage)


def _commits(storage: optuna.storages.RDBStorage) -> list[int]:
    """A counter of the transactions committed through ``storage``'s engine."""
    counted = [0]

    def count(connection: object) -> None:
        counted[0] += 1

    sqlalchemy.event.listen(storage.engine, "commit", count)
    return counted


def _start(trial: optuna.Trial, spec: str) -> None:
    """What the searcher does when a trial starts: params, then its start attrs."""
    trial.suggest_float("alpha", 1.0, 2.0)
    trial.suggest_categorical("block", ["standard", "se"])
    trial.storage.set_trial_system_attr(trial._trial_id, "relative", {"alpha": 1.5})
    set_user_attrs(trial, {"spec": spec, "seed": 7, "curve": (0.5, 0.6)})


def _shape(trial: FrozenTrial) -> tuple[object, ...]:
    return (
        trial.number,
        trial.state,
        trial.values,
        trial.params,
        trial.distributions,
        trial.user_attrs,
        trial.system_attrs,
    )


def test_a_decision_reads_once_writes_once_and_sees_its_own_writes(tmp_path: Path) -> None:
    backend = _storage(tmp_path)
    snapshot = SnapshotStorage(backend)
    study = _study(snapshot, create=True)
    commits = _commits(backend)
    with decision(study):
        trial = study.ask()
        _start(trial, "a")
        seen = study.get_trials(deepcopy=False)
        assert len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) == 1
        assert seen[0].user_attrs == {"spec": "a", "seed": 7, "curve": [0.5, 0.6]}
        assert seen[0].params["block"] in ("standard", "se")
        assert snapshot.reads == 1 and commits[0] == 1  # the trial's creation only
    assert commits[0] == 2  # params and attrs: one transaction at the decision's end
    with decision(study):
        set_user_attrs(trial, {"curve": [0.5, 0.6, 0.7], "status": "complete"})
        study.tell(trial, [0.7, 1e6])
    assert commits[0] == 3  # attrs and the state together
    # what plain Optuna reads back from the file is what the snapshot showed
    plain = _study(_storage(tmp_path)).trials[0]
    assert plain.state == TrialState.COMPLETE and plain.values == [0.7, 1e6]
    assert plain.user_attrs == {
        "spec": "a",
        "seed": 7,
        "curve": [0.5, 0.6, 0.7],
        "status": "complete",
    }
    assert plain.system_attrs == {"relative": {"alpha": 1.5}}
    assert plain.distributions == {"alpha": ALPHA, "block": BLOCK}
    assert _shape(plain) == _shape(study.get_trials(deepcopy=False)[0])


def test_it_stores_what_optuna_stores_for_the_same_calls(database: Path | str) -> None:
    ours, theirs = (
        optuna.create_study(
            study_name=name,
            storage=storage,
            directions=list(DIRECTIONS),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        for name, storage in (
            ("s", SnapshotStorage(_storage(database))),
            ("plain", _storage(database)),
        )
    )
    for study in (ours, theirs):
        for number in range(3):
            with decision(study):
                trial = study.ask()
                _start(trial, f"net{number}")
                trial.set_constraint("budget", 0.5) if number == 1 else None
            with decision(study):
                trial.set_user_attr("status", "done")
                if number == 2:
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, [0.5 + number / 10, 1e6 * (number + 1)])
        study.enqueue_trial({"alpha": 1.25}, user_attrs={"stage": "joint"})
    reread = optuna.load_study(study_name="s", storage=_storage(database)).trials
    plain = optuna.load_study(study_name="plain", storage=_storage(database)).trials
    assert [_shape(t) for t in reread] == [_shape(t) for t in plain]
    assert len(reread) == 4 and reread[1].constraints == {"budget": 0.5}


def test_other_drivers_writes_appear_at_the_next_decision(database: Path | str) -> None:
    mine = _study(SnapshotStorage(_storage(database)), create=True)
    other = _study(SnapshotStorage(_storage(database)))
    with decision(other):
        theirs = other.ask()
        _start(theirs, "b")
    with decision(mine):
        (seen,) = mine.get_trials(deepcopy=False)
        assert seen.state == TrialState.RUNNING and seen.user_attrs["spec"] == "b"
        with decision(other):  # meanwhile: its first epoch, then it ends
            set_user_attrs(theirs, {"curve": [0.4]})
        assert mine.get_trials(deepcopy=False)[0].user_attrs["curve"] == [0.5, 0.6]  # snapshot
    with decision(other):
        other.tell(theirs, [0.6, 2e6])
    with decision(mine):
        (done,) = mine.get_trials(deepcopy=False)
        assert done.state == TrialState.COMPLETE and done.user_attrs["curve"] == [0.4]
        assert mine._storage.finished_trials(mine._study_id) == [done]


def test_claims_are_decided_by_the_database(database: Path | str) -> None:
    first = _study(SnapshotStorage(_storage(database)), create=True)
    second = _study(SnapshotStorage(_storage(database)))
    first.enqueue_trial({"alpha": 1.25})
    with decision(second):
        second.get_trials(deepcopy=False)  # second's snapshot: one trial waiting
        with decision(first):
            taken = first.ask()
        fresh = second.ask()  # the waiting trial is gone: a new one
    assert taken.number == 0 and taken.suggest_float("alpha", 1.0, 2.0) == 1.25
    assert fresh.number == 1
    # a trial another driver finished cannot be finished again (its lease had expired)
    with decision(first):
        first.tell(fresh.number, state=TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError), decision(second):
        fresh.set_user_attr("status", "complete")
        second.tell(fresh, [0.5, 1e6])
    with decision(second):  # its cache was read again: the trial as the database has it
        assert second.get_trials(deepcopy=False)[1].state == TrialState.FAIL
        assert "status" not in second.get_trials(deepcopy=False)[1].user_attrs


def test_outside_a_decision_every_read_refreshes_and_every_write_commits(tmp_path: Path) -> None:
    snapshot = SnapshotStorage(_storage(tmp_path))
    study = _study(snapshot, create=True)
    trial = study.ask()
    trial.set_user_attr("a", 1)
    trial.set_user_attr("b", 2)
    assert snapshot.writes == 3  # the creation, then each attr
    reads = snapshot.reads
    study.get_trials()
    study.get_trials()
    assert snapshot.reads == reads + 2
    assert _study(_storage(tmp_path)).trials[0].user_attrs == {"a": 1, "b": 2}


def test_a_search_decides_the_same_through_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same simulated search (4 trials at once, TPE after its start-up trials, MO-ASHA, the
    no-repeat rule) with the driver's storage and with plain Optuna's: the same trials with the
    same parameters, values and attrs."""

    def search(folder: Path) -> list[tuple[object, ...]]:
        folder.mkdir()
        config = SearchConfig(
            budget_macs=20_000_000,
            dataset="fashion-mnist",
            trials=16,
            epochs=4,
            subset=200,
            val_fraction=0.25,
            seed=3,
            concurrency=4,
            space=SearchSpace.from_mapping(
                {"block": ["standard", "se"], "expansion": [1, 2, 4], "base_resolution": 16}
            ),
            storage=f"sqlite:///{folder / 'sim.db'}",
        )
        executor = SimulatedExecutor(SyntheticCurves(seconds_per_mmac=1.0, min_seconds=1.0), 4)
        run_search(config, io.StringIO(), executor)
        trials = optuna.load_study(study_name=config.study, storage=config.storage).trials
        volatile = ("driver", "versions", "decision", "decision_seconds")  # host, timing
        return [
            (*_shape(t)[:5], {k: v for k, v in t.user_attrs.items() if k not in volatile})
            for t in trials
        ]

    ours = search(tmp_path / "snapshot")
    monkeypatch.setattr("search.driver.run.SnapshotStorage", lambda backend: backend)
    plain = search(tmp_path / "plain")
    assert ours == plain and len(ours) >= 16
