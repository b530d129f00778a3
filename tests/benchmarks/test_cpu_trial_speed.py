"""benchmarks/cpu_trial_speed.py: levers side by side in warm workers (a tiny CPU run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "cpu_trial_speed.py"


def test_levers_side_by_side_against_a_before_checkout() -> None:
    # this checkout doubles as the "before" one: the run must still time both side by side
    argv = ["--subset", "64", "--specs", "block=standard,e=1,res=16,classes=10", "--rounds", "1"]
    argv += ["--threads", "1", "--only", "before", "fp32-det", "default", "--json"]
    argv += ["--before-root", str(ROOT)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    table = report["trial"]
    assert list(table) == ["before", "fp32-det", "default"]
    assert table["before"]["speedup"] == 1.0
    for row in table.values():
        assert row["seconds_per_trial"] > 0 and row["cpu_seconds_per_trial"] > 0
        assert row["seconds_per_trial"] >= row["train_seconds"] > 0
    assert report["torch"].startswith("2.")
