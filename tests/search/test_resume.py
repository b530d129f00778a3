"""Kill -9 a running `search run` mid-trial, resume it with the same command, check the study."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.ledger import Counts

pytestmark = pytest.mark.ray


def states(db: Path) -> list[str]:
    """Each trial's state, "TRAINING" for a RUNNING trial already handed to Ray (read-only)."""
    if not db.exists():
        return []
    query = (
        "SELECT t.state, d.value_json IS NOT NULL AND s.value_json = '\"running\"' FROM trials t "
        "LEFT JOIN trial_user_attributes d ON d.trial_id = t.trial_id AND d.key = 'driver' "
        "LEFT JOIN trial_user_attributes s ON s.trial_id = t.trial_id AND s.key = 'status' "
        "ORDER BY t.number"
    )
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30) as connection:
            rows = connection.execute(query).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    # "driver" is written after "status" when a trial starts (StudySearcher._record_start)
    return ["TRAINING" if s == "RUNNING" and d else s for s, d in rows]


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True
    )


def test_kill_mid_trial_then_resume(tmp_path: Path, tiny_args: list[str]) -> None:
    db = tmp_path / "search.db"
    command = [sys.executable, "-m", "search.cli", "run", *tiny_args, "--trials", "4"]
    command += ["--concurrency", "1", "--device", "cpu", "--study", "resume", "--seed", "3"]
    command += ["--storage", f"sqlite:///{db}"]
    log = tmp_path / "stderr.log"
    process = start(command, log)
    deadline = time.monotonic() + 120
    while True:
        seen = states(db)
        if "COMPLETE" in seen and "TRAINING" in seen:
            break
        assert process.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"no running trial after a complete one: {seen}"
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # Ray's helper processes, too
    process.wait()

    before = optuna.load_study(study_name="resume", storage=f"sqlite:///{db}").trials
    killed = [t for t in before if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    finished = {t.number: t for t in before if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert finished

    resumed = start(command, log)
    assert resumed.wait(timeout=180) == 0, log.read_text()[-3000:]

    after = optuna.load_study(study_name="resume", storage=f"sqlite:///{db}").trials
    assert [t.number for t in after] == list(range(len(after)))
    counts = Counts.of(after)
    assert counts.done == 4 and counts.running == counts.waiting == 0
    assert counts.interrupted == 1
    interrupted = after[killed[0].number]
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs["fail_reason"] == "interrupted"
    replay = [t for t in after if t.user_attrs.get("requeued_from") == interrupted.number]
    assert len(replay) == 1
    assert replay[0].params == interrupted.params
    assert replay[0].user_attrs["spec"] == interrupted.user_attrs["spec"]
    assert replay[0].user_attrs["seed"] == interrupted.user_attrs["seed"]
    assert replay[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    for number, trial in finished.items():  # nothing done was lost or trained again
        assert after[number].state == trial.state and after[number].values == trial.values
    assert not any(t.user_attrs.get("requeued_from") in finished for t in after)
    assert "re-queued trial(s)" in log.read_text()
