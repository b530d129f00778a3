"""The self-contained HTML report built from a real SQLite study."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from reports.build import report_figures, report_rows
from reports.html import render_report
from reports.records import study_data
from reports.references import paper_references, same_network
from search.study.database import load_study, open_existing
from space import ArchSpec


def build(url: str) -> tuple[str, dict]:
    data = study_data(load_study(open_existing(url), "pareto-test", url), url)
    figures = report_figures(data)
    return render_report(data, figures, report_rows(data)), figures


def test_figures_hold_the_expected_traces(make_study: Callable[..., str]) -> None:
    _, figures = build(make_study())
    assert list(figures) == ["pareto", "curves", "coefficients"]
    pareto = {t.name: t for t in figures["pareto"].data}
    assert set(pareto) == {
        "standard block",
        "se block",
        "condconv block",
        "Pareto front",
        "paper preset, standard block (measured)",
        "paper preset (not measured): se block",
        "budget (400,000,000 MACs)",
    }
    front = pareto["Pareto front"]
    assert front.line.shape == "hv"
    assert list(front.x) == [107_610_528, 193_783_104, 282_836_832, 282_836_832]
    assert list(front.y) == [0.80, 0.85, 0.88, 0.88]
    assert [c[0] for c in front.customdata] == [0, 1, 3, 4]
    # completed trials only, coloured per block
    assert sorted(pareto["standard block"].customdata[i][0] for i in range(4)) == [0, 1, 5, 9]
    assert pareto["se block"].marker.color != pareto["standard block"].marker.color
    assert list(pareto["paper preset, standard block (measured)"].x) == [193_783_104]
    assert set(pareto["paper preset (not measured): se block"].x) == {195_063_616}
    curves = [t.name for t in figures["curves"].data]
    assert curves == [
        "trial 0 (standard, 107.6 M MACs)",
        "trial 1 (standard, 193.8 M MACs)",
        "trial 3 (se, 282.8 M MACs)",
        "trial 4 (se, 282.8 M MACs)",
    ]
    assert len(figures["coefficients"].data) == 9  # 3 blocks x 3 panels


def test_html_is_self_contained(make_study: Callable[..., str]) -> None:
    html, _ = build(make_study())
    for div_id in ("pareto", "curves", "coefficients"):
        assert f'<div id="{div_id}"' in html
    assert "Pareto front" in html and "paper preset (not measured)" in html
    assert "Plotly.newPlot" in html
    assert len(html) > 3_000_000  # plotly.js (about 4.8 MB) is embedded inline
    assert "cdn.plot.ly" not in html
    assert re.search(r"<script[^>]*\ssrc=", html) is None
    assert re.search(r"<link[^>]*\shref=", html) is None
    assert re.search(r'<table[^>]*class="dataframe trials" id="trials">', html)
    assert 'addEventListener("click"' in html  # click-to-sort
    assert "search still running" not in html
    assert "complete: <b>7</b>" in html and "infeasible: <b>1</b>" in html
    assert "400,000,000 MACs" in html and "fashion-mnist" in html
    # the table lists every trial, Pareto set first
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", html)
    assert rows == ["0", "1", "3", "4", "2", "5", "6", "7", "8", "9"]


def test_running_study_says_so(make_study: Callable[..., str]) -> None:
    html, _ = build(make_study(running=True))
    assert "search still running (2 trials running)" in html
    assert "running: <b>2</b>" in html
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", html)
    assert rows[-2:] == ["10", "11"]


def test_reference_normal_form() -> None:
    a = ArchSpec(classes=10, se_ratio=8, experts=2, alpha=1.3, beta=1.2, gamma=1.1)
    assert same_network(a) == same_network(ArchSpec(classes=10, resolution=56))
    assert same_network(ArchSpec(block="se", se_ratio=8)) != same_network(ArchSpec(block="se"))
    assert same_network(ArchSpec(phi=1.0, alpha=1.2)) != same_network(ArchSpec(phi=1.0))
    refs = paper_references(10, [])
    assert [(r.block, r.macs, r.measured_by) for r in refs] == [
        ("standard", 193_783_104, None),
        ("se", 195_063_616, None),
    ]


def test_study_without_completed_trials(tmp_path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(storage=url, study_name="e", directions=["maximize", "minimize"])
    study.set_user_attr("config", {"budget_macs": 1e8, "dataset": "fashion-mnist"})
    study.ask()  # one RUNNING trial with no attributes yet
    data = study_data(load_study(open_existing(url), "e", url), url)
    figures = report_figures(data)
    html = render_report(data, figures, report_rows(data))
    assert "search still running (1 trial running)" in html
    assert "no completed trials yet" in html
    assert [t.name for t in figures["pareto"].data] == ["budget (100,000,000 MACs)"]


def test_the_mac_axis_stays_on_the_study_and_names_what_lies_beyond() -> None:
    """A quick-preset study (budget 1e8, networks of 5-60 M MACs): the paper presets (1.9e8 MACs,
    not measured) would stretch the axis past the budget with their labels cut off; instead the
    axis spans the study and the presets are named at its right edge."""
    import math

    from reports.records import StudyData, TrialRecord

    trials = tuple(
        TrialRecord(n, "COMPLETE", "complete", ArchSpec(expansion=e, classes=10, resolution=32),
                    accuracy=acc, macs=macs, costs=(float(macs),))
        for n, (e, acc, macs) in enumerate([(1, 0.70, 5_000_000), (2, 0.74, 60_000_000)])
    )  # fmt: skip
    study = StudyData("quick", "x", {"budget_macs": 1e8}, "0.1.0", trials)
    figure = report_figures(study)["pareto"]
    low, high = figure.layout.xaxis.range
    assert 10**low == pytest.approx(5e6 / 1.35) and 10**high == pytest.approx(1e8 * 1.35)
    assert not [t for t in figure.data if t.name and t.name.startswith("paper preset")]
    marks = [a.text for a in figure.layout.annotations]
    assert marks == [
        "paper preset standard (not measured): 193.8 M MACs \u2192",
        "paper preset se (not measured): 195.1 M MACs \u2192",
    ]
    assert all(a.x == 1.0 and a.xanchor == "right" for a in figure.layout.annotations)
    assert math.log10(193_783_104) > high  # beyond the axis, hence the marks
    html = render_report(study, {"pareto": figure}, report_rows(study))
    assert "latency_ms" not in html  # nothing timed, no latency columns
