"""Per-trial faults through real Ray: each ends as one FAIL with a one-line reason, the
search goes on and exits 0, and the user sees no Ray noise.

The faults are natural ones: a trial whose ``--weights-dir`` entry is a plain file raises when it
saves its weights; the test kills a trial's worker process with SIGKILL; the test freezes a
worker (SIGSTOP: a hung step) under ``--trial-timeout``; Ray's own memory monitor kills workers
when the node's memory use is above ``RAY_memory_usage_threshold``. Every driver is a real
``search run`` subprocess with a temporary SQLite study.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_driver import (
    Driver,
    foreign_lines,
    freeze_training_trial,
    is_loopback,
    kill_tree,
    listening_sockets,
    psutil,
    start_driver,
    trial_workers,
    trials,
    wait_until,
)

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


def storage(db: Path, study: str) -> list[str]:
    return ["--study", study, "--storage", f"sqlite:///{db}", "--device", "cpu"]


def assert_quiet(driver: Driver) -> None:
    """Only the search's own lines: no traceback, no Ray log or warning, nothing on stdout."""
    err = driver.stderr()
    assert "Traceback" not in err and "(raylet)" not in err, err
    assert foreign_lines(err) == [], err
    assert driver.stdout() == ""


def test_a_raising_trial_and_a_killed_worker_each_fail_alone(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    db, study = tmp_path / "faults.db", "faults"
    blocked = tmp_path / "weights" / study / "trial-0"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where trial 0's weights directory should go\n")
    args = [*tiny_args, "--trials", "3", "--concurrency", "1", "--b0"]
    args += ["--weights-dir", str(tmp_path / "weights"), *storage(db, study)]
    driver = start_driver(args, tmp_path, study)
    try:
        # trial 0 (B0's coefficients) trains, then cannot save its weights: it raises
        wait_until(
            lambda: any(r.number == 0 and r.state == "FAIL" for r in trials(db, study)),
            300,
            [driver],
            "trial 0 failing",
        )
        victim, worker = wait_until(
            lambda: freeze_training_trial(driver, db, study, lambda r: r.number > 0),
            300,
            [driver],
            "a second trial training",
        )
        sockets = listening_sockets(driver)  # Ray is fully up: GCS, raylet, agents, workers
        worker.kill()  # SIGKILL
        assert driver.wait(300) == 0, driver.stderr()[-3000:]
    finally:
        kill_tree(driver.pid)

    rows = trials(db, study)
    assert rows[0].state == "FAIL" and rows[0].attrs["status"] == "failed"
    assert rows[0].reason.startswith("UserError: cannot write to --save "), rows[0].reason
    killed = rows[victim]
    assert killed.state == "FAIL", killed
    assert killed.reason.startswith(f"worker died: process {worker.pid} "), killed.reason
    assert "SIGKILL" in killed.reason
    searched = [r for r in rows if r.attrs.get("status") != "infeasible"]
    assert len(searched) == 3  # --trials 3: the two failures count, the third was trained
    others = [r for r in searched if r.number not in (0, victim)]
    assert [r.state for r in others] and {r.state for r in others} <= {"COMPLETE", "PRUNED"}
    assert not any(r.state in ("RUNNING", "WAITING") or "requeued_from" in r.attrs for r in rows)
    # the reason is one line in the progress output and in the study
    err = driver.stderr()
    for row in (rows[0], killed):
        assert "\n" not in row.reason and f"trial {row.number} failed: {row.reason} |" in err
    assert_quiet(driver)
    # local Ray listened on loopback only
    assert {name for name, _, _ in sockets} >= {"gcs_server", "raylet"}, sockets
    assert all(is_loopback(ip) for _, ip, _ in sockets), sockets


def test_trial_timeout_stops_a_hung_trial(tmp_path: Path, tiny_args: list[str]) -> None:
    db, study = tmp_path / "timeout.db", "timeout"
    args = [*tiny_args, "--trials", "1", "--epochs", "20", "--trial-timeout", "3"]
    driver = start_driver([*args, *storage(db, study)], tmp_path, study)
    try:
        worker = wait_until(lambda: trial_workers(driver), 300, [driver], "a training worker")[0]
        worker.suspend()  # the step hangs: only the driver can end it
        assert driver.wait(180) == 0, driver.stderr()[-3000:]
    finally:
        kill_tree(driver.pid)
    (row,) = [r for r in trials(db, study) if r.attrs.get("status") != "infeasible"]
    assert row.state == "FAIL", row
    assert row.reason.startswith("timeout: ran "), row.reason
    assert row.reason.endswith("over --trial-timeout 3 s; stopped by the driver")
    assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
    assert "study 'timeout': 1/1 trials done (0 complete, 0 pruned, 1 failed" in driver.stderr()
    assert_quiet(driver)


def test_memory_monitor_kills_are_out_of_memory_failures(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    from ray._private.utils import get_system_memory, get_used_memory

    used = get_used_memory() / get_system_memory()  # as Ray counts it (cgroup-aware)
    # a 5 % threshold; lower on a machine that uses less, so the monitor always fires
    threshold = max(0.001, min(0.05, round(used / 2, 3)))
    db, study = tmp_path / "oom.db", "oom"
    args = [*tiny_args, "--trials", "2", "--concurrency", "1", *storage(db, study)]
    env = {"RAY_memory_usage_threshold": str(threshold)}
    driver = start_driver(args, tmp_path, study, env=env)
    try:
        assert driver.wait(300) == 0, driver.stderr()[-3000:]
    finally:
        kill_tree(driver.pid)
    searched = [r for r in trials(db, study) if r.attrs.get("status") != "infeasible"]
    assert len(searched) == 2 and {r.state for r in searched} == {"FAIL"}
    for row in searched:
        assert row.reason.startswith("out of memory: Ray's memory monitor killed"), row.reason
        assert f"kill threshold {threshold * 100:.1f}%" in row.reason
    assert_quiet(driver)
