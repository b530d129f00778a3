"""Trial table rows, CSV and JSON from a real study."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from reports.build import report_rows
from reports.records import study_data
from reports.table import COLUMNS, LATENCY_COLUMNS, to_csv, to_json
from search.study.database import load_study, open_existing


def rows_of(url: str) -> list[dict]:
    return report_rows(study_data(load_study(open_existing(url), None, url), url))


def test_pareto_set_first_then_by_number(make_study: Callable[..., str]) -> None:
    rows = rows_of(make_study(running=True))
    assert [r["trial"] for r in rows] == [0, 1, 3, 4, 2, 5, 6, 7, 8, 9, 10, 11]
    assert [r["pareto"] for r in rows] == [True] * 4 + [False] * 8
    # the study timed nothing: no latency columns, every other column in its order
    assert list(rows[0]) == [c for c in COLUMNS if c not in LATENCY_COLUMNS]
    assert LATENCY_COLUMNS == ("latency_ms", "latency_cv", "latency_host")


def test_csv_content(make_study: Callable[..., str]) -> None:
    text = to_csv(rows_of(make_study()))
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 10
    first = records[0]
    assert first["trial"] == "0" and first["pareto"] == "True"
    assert first["accuracy"] == "0.8" and first["macs"] == "107610528"
    assert first["params"] == "1171482" and first["block"] == "standard"
    assert first["spec"] == (
        "block=standard,e=2,mid=depthwise,k=3,a=1,b=1,g=1,phi=0,res=auto,classes=10"
    )
    assert first["se_ratio"] == first["experts"] == ""  # a standard block has neither
    failed = next(r for r in records if r["trial"] == "8")
    assert failed["status"] == "failed" and failed["state"] == "FAIL"
    assert failed["accuracy"] == ""
    assert failed["fail_reason"] == "torch.OutOfMemoryError: CUDA out of memory"
    infeasible = next(r for r in records if r["trial"] == "7")
    assert infeasible["status"] == "infeasible" and infeasible["macs"] == "705685056"
    assert infeasible["pareto"] == "False"
    assert "latency_ms" not in first  # nothing was timed: nothing to show


def test_json_is_strict_and_exact(make_study: Callable[..., str]) -> None:
    data = json.loads(to_json(rows_of(make_study())))
    assert [d["trial"] for d in data[:4]] == [0, 1, 3, 4]
    assert data[1]["accuracy"] == 0.85 and data[1]["macs"] == 193_783_104
    assert data[1]["alpha"] == 1.0 and data[1]["resolution"] is None
    pruned = next(d for d in data if d["trial"] == 6)
    assert pruned["last_accuracy"] == 0.5 and pruned["accuracy"] is None


def test_front_equals_optunas_best_trials(make_study: Callable[..., str]) -> None:
    import optuna

    url = make_study(running=True)
    best = {t.number for t in optuna.load_study(study_name="pareto-test", storage=url).best_trials}
    assert best == {r["trial"] for r in rows_of(url) if r["pareto"]} == {0, 1, 3, 4}
