"""benchmarks/cpu_trial_speed.py: levers side by side in warm workers (a tiny CPU run)."""

from __future__ import annotations

from tests.benchmarks.scripts import ROOT, run_json


def test_levers_side_by_side_against_a_before_checkout() -> None:
    # this checkout doubles as the "before" one: the run must still time both side by side
    argv = ["--subset", "64", "--specs", "block=standard,e=1,res=16,classes=10", "--rounds", "1"]
    argv += ["--threads", "1", "--only", "before", "fp32-det", "default", "--json"]
    argv += ["--before-root", str(ROOT)]
    report = run_json("cpu_trial_speed", argv)
    table = report["trial"]
    assert list(table) == ["before", "fp32-det", "default"]
    assert table["before"]["speedup"] == 1.0
    for row in table.values():
        assert row["seconds_per_trial"] > 0 and row["cpu_seconds_per_trial"] > 0
        assert row["seconds_per_trial"] >= row["train_seconds"] > 0
    assert report["torch"].startswith("2.")
