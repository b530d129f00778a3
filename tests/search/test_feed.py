"""Incremental readers (search/study/feed.py): the running tally equals the full recount after
every step, on the driver's snapshot storage and on plain Optuna storages alike."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.study.database import open_storage
from search.study.feed import StudyTally, TrialFeed
from search.study.front import best_accuracy, pareto_front
from search.study.schema import DIRECTIONS, Counts
from search.study.snapshot import SnapshotStorage, decision


@pytest.mark.parametrize("kind", ["snapshot", "rdb", "memory"])
def test_the_tally_equals_a_full_recount_at_every_step(tmp_path: Path, kind: str) -> None:
    storage: optuna.storages.BaseStorage | None = None
    if kind != "memory":
        storage = open_storage(f"sqlite:///{tmp_path / 'feed.db'}")
        storage = SnapshotStorage(storage) if kind == "snapshot" else storage
    study = optuna.create_study(storage=storage, directions=list(DIRECTIONS))
    tally, feed = StudyTally(study), TrialFeed(study)
    rng = random.Random(0)
    live: list[optuna.Trial] = []
    seen: list[int] = []
    for step in range(60):
        with decision(study):
            if not live or rng.random() < 0.5:
                live.append(study.ask())
                live[-1].set_user_attr("status", "running")
            else:
                trial = live.pop(rng.randrange(len(live)))
                state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
                status = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed"}
                trial.set_user_attr(
                    "status", status.get(state, rng.choice(["pruned", "infeasible"]))
                )
                accuracy, macs = round(rng.random(), 2), rng.choice([1e6, 2e6, 4e6])
                study.tell(trial, [accuracy, macs] if state == TrialState.COMPLETE else None, state)
            if step % 7 == 0:
                study.enqueue_trial({}, user_attrs={"stage": "joint"})
            trials = study.get_trials(deepcopy=False)
            tally.update()
            assert tally.counts == Counts.of(trials)
            assert tally.best == best_accuracy(trials)
            assert tally.front == pareto_front(trials)
            new, unfinished = feed.read()
        seen += [t.number for t in new]
        assert [t.number for t in unfinished] == [
            t.number for t in trials if not t.state.is_finished()
        ]
    finished = [t.number for t in study.trials if t.state.is_finished()]
    assert sorted(seen) == finished and len(seen) == len(set(seen)) > 20
