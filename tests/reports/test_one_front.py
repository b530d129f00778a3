"""One front everywhere: `search best`, the report's marks, its CSV/JSON and `search final`'s
default choice are the same trials, in the study's own objectives, for 2 and 3 objectives.

The study holds three networks (accuracy, latency, MACs):
  A (0.80, 5 ms, 10M), B (0.70, 2 ms, 20M), C (0.75, 8 ms, 5M).
In an ``accuracy,latency`` study its front is {A, B} (C is slower and less accurate than A);
on (accuracy, MACs) it would be {A, C}, the set the report used to mark whatever the study
optimised. With ``accuracy,macs,latency`` nothing dominates anything: {A, B, C}.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from reports.build import report_figures, report_rows
from reports.finals import final_data
from reports.records import study_data
from reports.table import to_csv, to_json
from search.cli import main
from search.strategy.finals import select_trials
from search.study.database import load_study, open_existing
from space import ArchSpec
from tests.reports.conftest import write_finals

NETWORKS = {  # name: (accuracy, latency ms, MACs, spec)
    "A": (0.80, 5.0, 10_000_000, ArchSpec(expansion=1, classes=10)),
    "B": (0.70, 2.0, 20_000_000, ArchSpec(expansion=2, classes=10)),
    "C": (0.75, 8.0, 5_000_000, ArchSpec(expansion=3, classes=10)),
}
FRONTS = {  # objectives -> the study's front, by trial number (A = 0, B = 1, C = 2)
    ("accuracy", "latency"): {0, 1},
    ("accuracy", "macs"): {0, 2},
    ("accuracy", "macs", "latency"): {0, 1, 2},
}


def write_abc(path: Path, objectives: tuple[str, ...]) -> str:
    """A study with objectives ``objectives`` holding A, B and C as `search run` stores them."""
    url = f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize", *["minimize"] * (len(objectives) - 1)]
    study = optuna.create_study(storage=url, study_name="abc", directions=directions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    study.set_user_attr("config", {"budget_macs": 30_000_000, "dataset": "fashion-mnist"})
    for accuracy, ms, macs, spec in NETWORKS.values():
        costs = {"macs": float(macs), "latency": ms}
        attrs = {
            "status": "complete",
            "spec": spec.canonical(),
            "spec_json": spec.to_dict(),
            "spec_id": spec.spec_id,
            "block": spec.block,
            "macs": macs,
            "params": 1000,
            "latency_ms": ms,
            "latency": {"median_ms": ms, "cv": 0.02, "host": "host-a"},
        }
        values = [accuracy, *(costs[name] for name in objectives[1:])]
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=values, user_attrs=attrs))
    return url


def best_numbers(url: str, capsys: pytest.CaptureFixture[str]) -> set[int]:
    capsys.readouterr()
    assert main(["best", "--study", "abc", "--storage", url, "--json"]) == 0
    return {row["number"] for row in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize("objectives", list(FRONTS))
def test_best_report_exports_and_final_choice_are_one_set(
    objectives: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = write_abc(tmp_path / "abc.db", objectives)
    expected = FRONTS[objectives]
    storage = open_existing(url)
    loaded = load_study(storage, "abc", url)
    data = study_data(loaded, url)

    assert best_numbers(url, capsys) == expected  # `search best`
    rows = report_rows(data)
    assert {r["trial"] for r in rows if r["pareto"]} == expected  # the table's marks
    assert {r["trial"] for r in rows[: len(expected)]} == expected  # listed first
    marked_csv = {
        int(r["trial"]) for r in csv.DictReader(io.StringIO(to_csv(rows))) if r["pareto"] == "True"
    }
    assert marked_csv == expected  # --format csv
    assert {r["trial"] for r in json.loads(to_json(rows)) if r["pareto"]} == expected
    assert {t.number for t in select_trials(loaded)} == expected  # `search final`'s default
    figures = report_figures(data)  # every figure rings the same trials
    for key in ("pareto", "latency_front"):
        ringed = [t for t in figures[key].data if t.name and t.name.startswith("Pareto")]
        assert len(ringed) == 1, key
        assert {c[0] for c in ringed[0].customdata} == expected, key
    curves = {int(re.match(r"trial (\d+)", t.name).group(1)) for t in figures["curves"].data}
    assert curves == expected


def test_the_step_line_is_drawn_only_in_the_studys_own_plane(tmp_path: Path) -> None:
    url = write_abc(tmp_path / "abc.db", ("accuracy", "latency"))
    data = study_data(load_study(open_existing(url), "abc", url), url)
    figures = report_figures(data)
    (latency_front,) = [t for t in figures["latency_front"].data if t.name == "Pareto front"]
    assert latency_front.mode == "lines+markers" and latency_front.line.shape == "hv"
    assert list(latency_front.x) == [2.0, 5.0]  # B, then A: fastest first
    (ringed,) = [t for t in figures["pareto"].data if t.name.startswith("Pareto set")]
    assert ringed.mode == "markers"  # on (accuracy, MACs) {A, B} is no front: no step line
    assert ringed.name == "Pareto set of the study (accuracy, latency)"
    assert "Pareto set of the study's objectives (accuracy, latency)" in (
        figures["pareto"].layout.title.text
    )


@pytest.mark.parametrize("objectives", list(FRONTS))
def test_the_final_front_follows_the_studys_objectives(
    objectives: tuple[str, ...], tmp_path: Path
) -> None:
    """A, B and C retrained, each scoring (and validating) as its proxy did: the final front is
    the study's front, in its objectives (the latency from the searched trials)."""
    url = write_abc(tmp_path / "abc.db", objectives)
    write_finals(url, {0: [0.80], 1: [0.70], 2: [0.75]}, study="abc")
    storage = open_existing(url)
    data = final_data(load_study(storage, "abc", url), storage)
    assert data is not None and data.objectives == objectives
    assert data.chosen_by == "validation"
    assert {n.number for n in data.final_front} == FRONTS[objectives]
    assert {n.number for n in data.proxy_front} == FRONTS[objectives]
    by = {n.number: n for n in data.networks}
    assert by[1].latency_ms == 2.0 and by[1].macs == 20_000_000
