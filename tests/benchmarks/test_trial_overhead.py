"""benchmarks/trial_overhead.py on a real (small) search: per-trial overhead, first and rest."""

from __future__ import annotations

import pytest

from tests.benchmarks.scripts import run_json

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_overhead_of_a_real_search() -> None:
    argv = ["--trials", "3", "--threads", "1", "--json", "--", "--subset", "200"]
    report = run_json("trial_overhead", argv, timeout=900)
    rows = report["per_trial"]
    assert len(rows) == 3 and len({r["worker_pid"] for r in rows}) == 1  # one reused actor
    assert [r["trial_in_worker"] for r in rows] == [1, 2, 3]
    assert [r["data_cached"] for r in rows] == [False, True, True]
    summary = report["summary"]
    assert summary["first_in_worker"]["start"] > summary["rest"]["start"]  # the actor's start
    assert report["first_step"]["first"] > 0 and report["search_wall_seconds"] > 0
