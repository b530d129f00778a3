"""Two hosts for real: a lost Ray worker node, a lost host with a driver on it, a restart.

The test bed (tests/fixtures_hosts.py) makes two hosts on this machine: network namespaces
joined by a veth pair (10.231.0.1 and .2, no route anywhere else), each with its own host name
and process tree. Host A runs PostgreSQL (the study), the Ray head and a driver; host B runs a
Ray worker node and, in the second test, a second driver of the same search. Every driver is the
real `search run` command joined to the cluster with ``--ray-address`` and to the study with
``--storage postgresql+psycopg://...@10.231.0.1``.

A trial is caught mid-training by freezing its worker process on host B (SIGSTOP), so the kill
that follows always hits a running trial. The counts are read from the study in PostgreSQL (by a
snippet run on host A); the recovery times are measured from the kill to the driver's line that
reports it, and printed (``-s``) for the README's table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_driver import Driver, foreign_lines, wait_until
from tests.fixtures_hosts import Host, TwoHostBed, two_host_bed

__all__ = ["two_host_bed"]  # fixture used by name

pytestmark = [pytest.mark.slow, pytest.mark.hosts, pytest.mark.ray, pytest.mark.postgres]
pytestmark.append(pytest.mark.timeout(1500))

TRAINED = ("COMPLETE", "PRUNED")  # Optuna states of a finished trial (or a never-trained one)
TRAINED_STATUS = ("complete", "pruned")  # trained: every epoch, or stopped early by MO-ASHA
LEASE_S = 10  # EFFNAS_LEASE_S of the second test's drivers: host B's trial expires this soon
WAIT_S = 600  # generous: Ray on two busy cores is slow to start and to notice a dead node

# every trial of the study: its state and the attrs the asserts read
_ROWS = """
import json, sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print(json.dumps([
    {"number": t.number, "state": t.state.name, "values": t.values,
     "status": t.user_attrs.get("status"), "reason": t.user_attrs.get("fail_reason"),
     "spec_id": t.user_attrs.get("spec_id"), "requeued_from": t.user_attrs.get("requeued_from"),
     "host": (t.user_attrs.get("driver") or {}).get("host")}
    for t in study.trials
]))
"""


def rows(bed: TwoHostBed, study: str) -> list[dict[str, Any]]:
    """The study's trials as PostgreSQL on host A has them now."""
    return list(json.loads(bed.python(bed.a, _ROWS, bed.url, study).strip().splitlines()[-1]))


def counts(trials: list[dict[str, Any]]) -> dict[str, int]:
    """Trained (complete or pruned, not "infeasible": those never trained), failed,
    interrupted, left running, and distinct networks among the trained ones."""
    trained = [t for t in trials if t["status"] in TRAINED_STATUS]
    failed = [t for t in trials if t["state"] == "FAIL"]
    return {
        "trained": len(trained),
        "failed": sum(t["reason"] != "interrupted" for t in failed),
        "interrupted": sum(t["reason"] == "interrupted" for t in failed),
        "unfinished": sum(t["state"] in ("RUNNING", "WAITING") for t in trials),
        "networks": len({t["spec_id"] for t in trained}),
    }


def freeze_training_worker(host: Host) -> int | None:
    """Pid of the one trial worker training on ``host``, frozen with SIGSTOP; None if none is."""
    for pid in host.processes():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::ImplicitFunc.train"):
            os.kill(pid, signal.SIGSTOP)
            return pid
    return None


def wait_for(
    condition: Callable[[], Any], what: str, drivers: list[Driver], timeout: float = WAIT_S
) -> Any:
    """``wait_until`` with this module's generous timeout, polling the database less often."""
    return wait_until(condition, timeout, drivers, what, poll_s=0.25)


def line(driver: Driver, pattern: str) -> re.Match[str] | None:
    return re.search(pattern, driver.stderr(), re.MULTILINE)


def search_args(tiny_args: list[str], study: str, trials: int, concurrency: int) -> list[str]:
    """The same command on every host: the tiny search, one CPU per trial."""
    counts = ["--trials", str(trials), "--concurrency", str(concurrency)]
    return [*tiny_args, "--device", "cpu", "--study", study, *counts]


def test_a_worker_node_lost_mid_trial(two_host_bed: TwoHostBed, tiny_args: list[str]) -> None:
    """Host B's Ray node dies mid-trial: that trial is one FAIL line ("node died: ...") and the
    search finishes on host A. Host A's driver runs two trials at once, one per node."""
    bed, study, trials = two_host_bed, "node-lost", 4
    started = time.monotonic()
    driver = bed.driver(bed.a, search_args(tiny_args, study, trials, concurrency=2), "a")
    try:
        wait_for(lambda: freeze_training_worker(bed.b), "a trial training on host B", [driver])
        killed_at = time.monotonic()
        assert bed.b.kill_processes() > 0  # the raylet, its agents and workers; host B stays up
        failed = wait_for(
            lambda: line(driver, r"^trial (\d+) failed: (node died: .*?) \|"),
            "the lost trial's FAIL line",
            [driver],
        )
        noticed_s = time.monotonic() - killed_at
        assert driver.wait(WAIT_S) == 0, driver.stderr()[-3000:]
        finished_s = time.monotonic() - killed_at
    finally:
        driver.process.kill()
    trial_rows = rows(bed, study)
    tally = counts(trial_rows)
    report = "\n".join([*map(str, trial_rows), driver.stderr()])
    print(f"\nnode lost: FAIL after {noticed_s:.0f} s, search done {finished_s:.0f} s after the")
    print(f"kill ({time.monotonic() - started:.0f} s in all); counts {tally}")
    print(f"line: {failed.group(0)}")

    number, reason = int(failed.group(1)), failed.group(2)
    assert bed.b.address in reason, reason
    lost = trial_rows[number]
    assert (lost["state"], lost["reason"]) == ("FAIL", reason)
    assert tally == {
        "trained": trials - 1,
        "failed": 1,
        "interrupted": 0,
        "unfinished": 0,
        "networks": trials - 1,
    }, report
    err = driver.stderr()
    assert len(re.findall(r"^trial \d+ failed: ", err, re.MULTILINE)) == 1
    assert f"study '{study}': {trials}/{trials} trials done" in err
    assert "Traceback" not in err and foreign_lines(err) == [], err[-3000:]


def test_a_lost_host_is_recovered_then_rejoins(
    two_host_bed: TwoHostBed, tiny_args: list[str]
) -> None:
    """Every process of host B (its node and its driver) dies mid-trial: host A's driver
    finishes the study and re-runs B's trial once its lease expires; nothing finished is lost
    and no network is trained twice. Host B restarts and runs the same command: it joins the
    cluster and stops at the study's total.

    Each node has one CPU, and Ray may place a trial on either node. So host A's first trial
    starts while host B's CPU is taken, and it is frozen while host B's driver starts (B's trial
    can only go to B's node); B's trial is frozen before A's is let go (A's trials can only go
    to A's node from then on)."""
    bed, study, trials = two_host_bed, "host-lost", 16  # A still has work when the lease expires
    args = search_args(tiny_args, study, trials, concurrency=1)
    lease = {"EFFNAS_LEASE_S": str(LEASE_S)}
    drivers: list[Driver] = []
    try:
        with bed.cpu_taken(bed.b):
            drivers.append(a := bed.driver(bed.a, args, "a", lease))
            held = wait_for(lambda: freeze_training_worker(bed.a), "a trial on host A", drivers)
        drivers.append(b := bed.driver(bed.b, args, "b", lease))
        wait_for(lambda: freeze_training_worker(bed.b), "a trial training on host B", drivers)
        os.kill(held, signal.SIGCONT)
        wait_for(lambda: line(a, r"^trial \d+ complete: "), "a trial done on host A", drivers)
        before = rows(bed, study)
        (number,) = [
            t["number"] for t in before if t["state"] == "RUNNING" and t["host"] == bed.b.hostname
        ]
        killed_at = time.monotonic()
        bed.b.power_off()  # the node, its workers and the driver: host B is gone
        recovered = wait_for(
            lambda: line(a, rf"^trial {number} re-queued: (.*?) \|"),
            f"host A re-queueing trial {number}",
            [a],
        )
        recovered_s = time.monotonic() - killed_at
        assert a.wait(WAIT_S) == 0, a.stderr()[-3000:]
        finished_s = time.monotonic() - killed_at
        after = rows(bed, study)

        # host B restarts and runs the same command: nothing is left to do
        restarted_at = time.monotonic()
        bed.b.boot()
        bed.start_node(bed.b, nodes=2)
        drivers.append(again_b := bed.driver(bed.b, args, "b-again", lease))
        assert again_b.wait(WAIT_S) == 0, again_b.stderr()[-3000:]
        rejoined_s = time.monotonic() - restarted_at
        again = rows(bed, study)
    finally:
        for driver in drivers:
            driver.process.kill()

    tally = counts(after)
    report = "\n".join([*map(str, after), a.stderr(), b.stderr()])
    print(f"\nhost lost: trial {number} re-queued {recovered_s:.0f} s after the kill (lease")
    print(f"{LEASE_S} s), study done {finished_s:.0f} s after it; counts {tally}")
    print(f"host B back: ran the same command in {rejoined_s:.0f} s (boot, node, driver)")

    assert recovered.group(1) == "left running by a driver that is gone"
    # not at once, as it would for a dead driver on its own machine: only when the lease ran out
    # (renewed every LEASE_S / 3 until the kill, so at the earliest 2/3 of LEASE_S after it)
    assert recovered_s >= LEASE_S * 2 / 3
    # nothing finished before the kill is lost or changed
    finished = {t["number"]: t for t in before if t["state"] in TRAINED}
    assert finished and all(after[n] == t for n, t in finished.items())
    lost = after[number]
    assert (lost["state"], lost["reason"], lost["host"]) == ("FAIL", "interrupted", bed.b.hostname)
    (replay,) = [t for t in after if t["requeued_from"] == number]
    assert replay["status"] in TRAINED_STATUS and replay["host"] == bed.a.hostname
    assert tally == {
        "trained": trials,
        "failed": 0,
        "interrupted": 1,
        "unfinished": 0,
        "networks": trials,  # no network trained twice
    }, report
    err = a.stderr()
    assert f"study '{study}': {trials}/{trials} trials done" in err
    assert "Traceback" not in err and foreign_lines(err) == [], err[-3000:]

    assert again == after  # the restarted host trained nothing more
    rejoined = again_b.stderr()
    assert f"study '{study}': {trials}/{trials} trials done" in rejoined
    assert "started:" not in rejoined and foreign_lines(rejoined) == [], rejoined[-3000:]
