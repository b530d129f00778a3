"""Stop a running `search run` twice, resume it, check the study.

Run 1 is stopped with SIGTERM mid-trial (the driver's own stop: the trial is "interrupted" and
re-queued); run 2 starts with that replay and is killed with ``kill -9`` while training it (a
crashed driver: its trial is left RUNNING); run 3 finds the replay stale (its driver's process
is gone) and fails it for good, because a trial is re-queued at most once, then finishes the
study. Nothing finished is lost or trained again, and no two sampled trials share parameters
although three drivers sampled one after the other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from search.study.schema import Counts
from tests.fixtures_driver import freeze_training_trial, kill_tree, start_driver, trials, wait_until

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]


def test_stop_kill_resume_requeues_once(tmp_path: Path, tiny_args: list[str]) -> None:
    db, study = tmp_path / "search.db", "resume"
    args = [*tiny_args, "--trials", "4", "--concurrency", "1", "--device", "cpu", "--seed", "3"]
    args += ["--study", study, "--storage", f"sqlite:///{db}"]

    first = start_driver(args, tmp_path, "run1")
    try:
        # a trial training after a complete one, frozen so it cannot finish first
        _, worker = wait_until(
            lambda: (
                any(r.state == "COMPLETE" for r in trials(db, study))
                and freeze_training_trial(first, db, study, lambda r: True)
            ),
            300,
            [first],
            "a trial training after a complete one",
        )
        first.process.terminate()  # SIGTERM: the driver stops its trials itself
        wait_until(lambda: "stopping:" in first.stderr(), 60, [first], "the stop")
        # the driver has flagged its stop: whether Ray Tune stops the frozen trial first or sees
        # its worker die first, the driver's own stop is what ended it
        worker.kill()
        assert first.wait(180) == 130, first.stderr()[-3000:]
    finally:
        kill_tree(first.pid)
    after_stop = trials(db, study)
    (stopped,) = [r for r in after_stop if r.state == "FAIL"]
    assert stopped.reason == "interrupted"
    (replay,) = [r for r in after_stop if r.attrs.get("requeued_from") == stopped.number]
    assert replay.state == "WAITING"
    finished = {r.number: r for r in after_stop if r.state in ("COMPLETE", "PRUNED")}
    assert finished
    assert "interrupted; resume with: search " in first.stderr()

    second = start_driver(args, tmp_path, "run2")
    try:
        wait_until(
            lambda: freeze_training_trial(second, db, study, lambda r: r.number == replay.number),
            300,
            [second],
            "the replay training",
        )
    finally:
        kill_tree(second.pid)  # kill -9: the replay stays RUNNING
    second.process.wait()
    assert trials(db, study)[replay.number].state == "RUNNING"

    third = start_driver(args, tmp_path, "run3")
    try:
        assert third.wait(300) == 0, third.stderr()[-3000:]
    finally:
        kill_tree(third.pid)

    after = optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials
    assert [t.number for t in after] == list(range(len(after)))
    counts = Counts.of(after)
    assert counts.done == 4 and counts.running == counts.waiting == 0
    assert counts.interrupted == 1  # the first stop; the replay's second interruption counts
    again = after[replay.number]
    assert again.state == TrialState.FAIL and again.params == after[stopped.number].params
    assert again.user_attrs["fail_reason"] == (
        f"interrupted twice: interrupted again; trial {stopped.number} was already re-queued once"
    )
    assert not any(t.user_attrs.get("requeued_from") == replay.number for t in after)
    assert f"trial {replay.number} failed: interrupted twice" in third.stderr()
    for number, row in finished.items():  # nothing done was lost or trained again
        assert after[number].state.name == row.state
    assert not any(t.user_attrs.get("requeued_from") in finished for t in after)
    # three drivers sampled in turn; the sampler seed never repeated, nor did the parameters
    sampled = [t for t in after if "requeued_from" not in t.user_attrs]
    params = [tuple(sorted(t.params.items())) for t in sampled]
    assert len(params) == len(set(params)) >= 4
