"""benchmarks/scale.py at toy sizes: padded studies grow, each method's cost per trial is split
into the driver's parts, and the growth table reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.scripts import load, run_json

pytestmark = [pytest.mark.slow]


def test_growth_on_sqlite_beside_plain_optuna(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = ["--sections", "growth", "--backends", "sqlite", "--sizes", "20", "40"]
    argv += ["--window", "3", "--no-tune", "--json", str(out)]
    assert run_json("scale", argv, timeout=900)["done"]
    rows = json.loads(out.read_text())["growth"]
    assert {(r["method"], r["size"] >= 20) for r in rows} == {
        ("this search", True),
        ("plain Optuna", True),
    }
    ours = [r for r in rows if r["method"] == "this search"]
    assert len(ours) == 2 and ours[1]["size"] >= 40 and all(r["trials"] >= 3 for r in ours)
    assert set(ours[0]["parts"]) == {"sample", "schedule", "read", "write", "lease", "other"}
    assert all(r["per_trial_s"] > 0 for r in rows)
    table = load("scale").growth_table(rows)
    assert table.count("| SQLite |") == 2 and "x |" in table
