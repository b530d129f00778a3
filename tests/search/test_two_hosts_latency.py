"""Two hosts, one latency study: where each network was timed, and the one-machine rule.

The two-host test bed (tests/fixtures_hosts.py): host A runs PostgreSQL, the Ray head and a
driver; host B a Ray worker node offering the custom resource ``timer`` and a second driver.
Both drivers run the real `search run` with ``--objectives accuracy,latency``.

1. Each driver times on its own machine (no ``--latency-resource``): host A's driver creates the
   study and times its candidates on host A; host B's driver is refused in one line, exit 2,
   before it writes anything, since one objective cannot compare figures from two machines.
2. Both drivers name the timing node (``--latency-resource timer``): every measurement runs on
   host B's node whichever driver meets the network, and every record says so.

The records are read from the study in PostgreSQL (by a snippet on host A) and printed (``-s``)
for the README.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_driver import foreign_lines
from tests.fixtures_hosts import TIMER, TwoHostBed, two_host_timing_bed

__all__ = ["two_host_timing_bed"]  # fixture used by name

pytestmark = [pytest.mark.slow, pytest.mark.hosts, pytest.mark.ray, pytest.mark.postgres]
pytestmark.append(pytest.mark.timeout(1500))

WAIT_S = 600

# every trial's driver host and latency record, and the study's timing machine
_RECORDS = """
import json, sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print(json.dumps({
    "machine": study.user_attrs.get("latency_machine"),
    "trials": [
        {"number": t.number, "state": t.state.name, "status": t.user_attrs.get("status"),
         "driver": (t.user_attrs.get("driver") or {}).get("host"),
         "latency": t.user_attrs.get("latency")}
        for t in study.trials
    ],
}))
"""


def records(bed: TwoHostBed, study: str) -> dict[str, Any]:
    return dict(json.loads(bed.python(bed.a, _RECORDS, bed.url, study).strip().splitlines()[-1]))


def latency_args(tiny_args: list[str], study: str, trials: int, *more: str) -> list[str]:
    return [
        *tiny_args, "--device", "cpu", "--study", study, "--trials", str(trials),
        "--concurrency", "1", "--objectives", "accuracy,latency", *more,
    ]  # fmt: skip


def test_one_latency_study_two_hosts(two_host_timing_bed: TwoHostBed, tiny_args: list[str]) -> None:
    bed = two_host_timing_bed
    a_host, b_host = bed.a.hostname, bed.b.hostname

    # 1. each driver would time on its own machine: host B is refused
    local = latency_args(tiny_args, "lat-local", 2)
    first = bed.driver(bed.a, local, "a-local")
    assert first.wait(WAIT_S) == 0, first.stderr()[-3000:]
    before = records(bed, "lat-local")
    second = bed.driver(bed.b, local, "b-local")
    assert second.wait(WAIT_S) == 2, second.stderr()[-3000:]
    refusal = second.stderr().strip()
    print(f"\nhost A, local timing: {first.stderr().splitlines()[0]}")
    print(f"host B refused: {refusal}")
    assert refusal.count("\n") == 0 and refusal.startswith(
        f"error: study 'lat-local' measures latency on {a_host} ("
    )
    assert f"but this driver would time on {b_host} (" in refusal
    assert "--latency-resource NAME" in refusal
    assert records(bed, "lat-local") == before  # nothing written
    assert before["machine"]["host"] == a_host and before["machine"]["resource"] is None
    for trial in before["trials"]:
        if trial["latency"] is not None:
            assert trial["latency"]["host"] == a_host

    # 2. both drivers time on the one node that offers the resource: host B's
    one = latency_args(tiny_args, "lat-one", 6, "--latency-resource", TIMER)
    drivers = [bed.driver(bed.a, one, "a-one"), bed.driver(bed.b, one, "b-one")]
    try:
        codes = [driver.wait(WAIT_S) for driver in drivers]
    finally:
        for driver in drivers:
            driver.process.kill()
    assert codes == [0, 0], [d.stderr()[-3000:] for d in drivers]
    shared = records(bed, "lat-one")
    timed = [t for t in shared["trials"] if t["latency"] is not None]
    print(f"timing line (host A's driver): {_line(drivers[0].stderr(), 'latency: ')}")
    print(f"timing line (host B's driver): {_line(drivers[1].stderr(), 'latency: ')}")
    print("trial  driver      timed on    ms      cv      attempts  loaded")
    for t in timed:
        record = t["latency"]
        print(
            f"{t['number']:>5}  {t['driver']:<10}  {record['host']:<10}  "
            f"{record['median_ms']:<6.3g}  {record['cv']:<6.3f}  {record['attempts']:>8}  "
            f"{record['loaded']}"
        )
    assert shared["machine"] == {**shared["machine"], "host": b_host, "resource": TIMER}
    done = [t for t in shared["trials"] if t["status"] in ("complete", "pruned")]
    assert len(done) == 6
    assert {t["driver"] for t in timed} == {a_host, b_host}  # both drivers met networks
    assert {t["latency"]["host"] for t in timed} == {b_host}  # all timed on host B's node
    assert all(t["latency"]["processor"] not in ("", "unknown") for t in timed)
    for driver in drivers:
        err = driver.stderr()
        assert (
            f"latency: every candidate is timed on the Ray node offering '{TIMER}': {b_host} ("
            in err
        )
        assert "study 'lat-one': " in err and "/6 trials done" in err
        assert "Traceback" not in err and foreign_lines(err) == [], err[-3000:]


def _line(text: str, prefix: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(prefix)), "")
