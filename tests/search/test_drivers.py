"""Several drivers on one study, and a study database that fills up.

- A driver on another host (a real driver whose ``socket.gethostname()`` says so, see
  ``tests/fixtures_driver.other_host_env``) finds a live trial of the first driver: it leaves it
  alone (its lease is fresh) and counts it towards ``--trials``, so it has nothing to run.
- Drivers racing to create one new study: one creates it, the others load it (or, with another
  configuration, get one error line); no DuplicatedStudyError, B0 queued once.
- The disk fills up mid-run: the driver's file size limit (RLIMIT_FSIZE, set on the running
  driver with ``prlimit``) makes SQLite's next write fail for real. One line, exit 2; the study is
  intact and the next run recovers the trial that was running (checked with the recovery the
  next run starts with; the slow variant runs that next search for real).
"""

from __future__ import annotations

import resource
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from search.strategy.sampler import startup_trials
from search.study.database import open_storage
from search.study.lease import Lease
from search.study.ledger import recover_stale
from space.searchspace import SearchSpace
from tests.fixtures_driver import (
    OTHER_HOST,
    foreign_lines,
    freeze_training_trial,
    kill_tree,
    other_host_env,
    start_driver,
    trials,
    wait_until,
)

TRAINED = ("COMPLETE", "PRUNED")


def storage(db: Path, study: str) -> list[str]:
    return ["--study", study, "--storage", f"sqlite:///{db}", "--device", "cpu"]


@pytest.mark.ray
@pytest.mark.timeout(900)
def test_a_driver_on_another_host_leaves_a_live_trial_alone(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    db, study = tmp_path / "shared.db", "shared"
    args = [*tiny_args, "--trials", "1", "--concurrency", "1", *storage(db, study)]
    here = start_driver(args, tmp_path, "here")
    there = None
    try:
        # the first driver's trial is live (its driver renews the lease) but makes no progress
        number, worker = wait_until(
            lambda: freeze_training_trial(here, db, study, lambda r: True),
            300,
            [here],
            "a trial training",
        )
        there = start_driver(args, tmp_path, "there", env=other_host_env(tmp_path))
        assert there.wait(300) == 0, there.stderr()[-3000:]
        assert trials(db, study)[number].state == "RUNNING"  # not taken over
        worker.resume()
        assert here.wait(300) == 0, here.stderr()[-3000:]
    finally:
        kill_tree(here.pid)
        if there is not None:
            kill_tree(there.pid)

    rows = trials(db, study)
    assert [r.number for r in rows] == [number] and rows[0].state in TRAINED, rows
    assert rows[0].attrs["driver"]["host"] == socket.gethostname() != OTHER_HOST
    err = there.stderr()
    assert "re-queued" not in err and "trial 0 " not in err  # neither taken over nor re-run
    assert "study 'shared': 0/1 trials done" in err
    assert "note: 1 trial(s) still running in another driver" in err
    assert foreign_lines(err) == [] and foreign_lines(here.stderr()) == []


RACER = """
import os, pathlib, sys, time
from search.cli.run import build_config
from search.strategy.planner import Planner
from search.driver.run import _open_study
from common.errors import UserError

go, url, epochs = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
options = {"budget_flops": 2.5e7, "epochs": epochs, "resolution": 24, "b0": True, "trials": 12}
config = build_config({**options, "storage": url, "study": "race"})
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
try:
    # each racer saw no study before
    study, _ = _open_study(config, Planner(config, 10), created=True)
    print("opened", study.user_attrs["config"]["epochs"])
except UserError as exc:
    print("error:", exc)
"""


def test_drivers_racing_to_create_a_study(tmp_path: Path) -> None:
    db, go = tmp_path / "race.db", tmp_path / "go"
    url = f"sqlite:///{db}"
    epochs = [1, 1, 2]  # two drivers of one search, one of another
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), url, str(e)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for e in epochs
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(racers):  # imports done, all waiting
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.05)
    go.touch()
    results = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), results
    assert not any(err.strip() for _, err in results), results
    study = optuna.load_study(study_name="race", storage=url)
    assert optuna.get_all_study_names(url) == ["race"]
    winner = study.user_attrs["config"]["epochs"]
    for (out, _), mine in zip(results, epochs, strict=True):
        if mine == winner:
            assert out == f"opened {winner}\n", results
        else:
            assert out.startswith("error: study 'race' was run with a different configuration")
            assert out.count("\n") == 1
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    # B0's coefficients, then the joint search's opening, queued by the creator only
    assert len(waiting) == 1 + startup_trials(12) == 5
    assert waiting[0].user_attrs["start_gamma"] == 1.15
    b0_params, _ = SearchSpace().start_point()
    assert waiting[0].system_attrs["fixed_params"] == pytest.approx(b0_params)


@pytest.mark.ray
@pytest.mark.timeout(900)
@pytest.mark.parametrize("resume", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_full_disk_is_one_line_and_loses_nothing(
    resume: bool, tmp_path: Path, tiny_args: list[str]
) -> None:
    db, study = tmp_path / "full.db", "full"
    args = [*tiny_args, "--trials", "2", "--concurrency", "1", *storage(db, study)]
    driver = start_driver(args, tmp_path, "full")
    try:
        number, worker = wait_until(
            lambda: (
                any(r.state in TRAINED for r in trials(db, study))
                and freeze_training_trial(driver, db, study, lambda r: True)
            ),
            300,
            [driver],
            "a trial training after a finished one",
        )
        # the disk is full from now on: the next write that grows the database (its WAL) fails
        wal = Path(f"{db}-wal")
        limit = wal.stat().st_size + 100
        resource.prlimit(driver.pid, resource.RLIMIT_FSIZE, (limit, limit))
        worker.resume()
        assert driver.wait(300) == 2, driver.stderr()[-3000:]
    finally:
        kill_tree(driver.pid)

    err = driver.stderr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.splitlines()[-1]], err
    assert errors[0].startswith(f"error: cannot write to the study database '{db}': ")
    assert "disk" in errors[0] and "run the same command to resume" in errors[0]
    assert "Traceback" not in err and foreign_lines(err) == []
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = trials(db, study)
    finished = {r.number: r for r in before if r.state in TRAINED}
    assert finished and before[number].state == "RUNNING"
    if not resume:  # what the next run starts with: the dead driver's trial is re-queued
        url = f"sqlite:///{db}"
        loaded = optuna.load_study(study_name=study, storage=open_storage(url))
        stale = Lease(open_storage(url)).stale(loaded)
        assert recover_stale(loaded, 0, stale) == [(number, "interrupted")]
        (replay,) = loaded.get_trials(states=(optuna.trial.TrialState.WAITING,))
        assert replay.user_attrs["requeued_from"] == number
        return

    resumed = start_driver(args, tmp_path, "resumed")
    try:
        assert resumed.wait(300) == 0, resumed.stderr()[-3000:]
    finally:
        kill_tree(resumed.pid)
    after = trials(db, study)
    assert after[number].state == "FAIL" and after[number].reason == "interrupted"
    assert all(after[n].state == row.state for n, row in finished.items())
    (replay,) = [r for r in after if r.attrs.get("requeued_from") == number]
    assert replay.state in TRAINED
    searched = [r for r in after if r.attrs.get("status") not in ("infeasible",)]
    assert sum(r.state in TRAINED for r in searched) == 2
    assert f"trial {number} re-queued: left running by a driver that is gone" in resumed.stderr()
