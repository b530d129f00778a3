"""The report's latency part: records, the latency front, MACs-latency rank correlation, figures."""

from __future__ import annotations

from dataclasses import replace

import pytest
from optuna.trial import TrialState, create_trial

from reports.build import LATENCY_FIGURE_IDS, report_figures
from reports.latency import latency_data
from reports.ranks import rank_correlation
from reports.records import StudyData, TrialRecord, trial_record
from reports.table import trial_rows
from space import ArchSpec


def _record(
    number: int, block: str, macs: int, ms: float | None, accuracy: float | None
) -> TrialRecord:
    """A trial of an ``accuracy,latency`` study (its stored cost: the latency)."""
    spec = ArchSpec(block=block, expansion=1 + number % 6, classes=10)
    timed = accuracy is not None and ms is not None
    return TrialRecord(
        number=number,
        state="COMPLETE" if accuracy is not None else "PRUNED",
        status="complete" if accuracy is not None else "infeasible",
        spec=spec,
        accuracy=accuracy,
        macs=macs,
        params=1000,
        latency_ms=ms,
        latency_cv=0.05 if ms is not None else None,
        latency_host="host-a" if ms is not None else None,
        costs=(ms,) if timed else None,
    )


TRIALS = [
    _record(0, "standard", 10_000_000, 1.0, 0.70),
    _record(1, "se", 20_000_000, 3.0, 0.80),  # slower than 2 and less accurate: off the front
    _record(2, "condconv", 30_000_000, 2.0, 0.85),
    _record(3, "standard", 40_000_000, 4.0, 0.90),
    _record(4, "se", 50_000_000, 6.0, None),  # timed, then refused by the latency budget
    _record(5, "standard", 60_000_000, None, 0.95),  # never timed (an older trial)
]
OBJECTIVES = ("accuracy", "latency")


def test_latency_front_and_the_rank_correlation_of_macs_and_latency() -> None:
    data = latency_data(TRIALS[:5], OBJECTIVES)
    assert data is not None
    assert [t.number for t in data.completed] == [0, 1, 2, 3]
    assert [t.number for t in data.front] == [0, 2, 3]  # fastest first
    assert data.where == "timed on host-a"
    assert [n.number for n in data.networks] == [0, 1, 2, 3, 4]  # the refused one was timed
    # MACs order 0<1<2<3<4, latency order 0<2<1<3<4: one discordant pair of ten
    assert data.correlation.n == 5
    assert data.correlation.kendall_tau == pytest.approx(0.8)
    assert data.correlation.spearman_rho == pytest.approx(0.9)
    assert latency_data([replace(t, latency_ms=None) for t in TRIALS]) is None


def test_the_same_network_is_counted_once() -> None:
    twin = replace(TRIALS[0], number=9, latency_ms=1.1)  # same spec: the same network
    data = latency_data([*TRIALS, twin])
    assert data is not None and len(data.networks) == 5 and data.networks[0].latency_ms == 1.0


def test_rank_correlation_is_undefined_for_too_few_or_constant_values() -> None:
    assert rank_correlation([1, 2], [1, 2]).kendall_tau is None
    assert rank_correlation([1, 1, 1], [1, 2, 3]).spearman_rho is None
    assert rank_correlation([1, 2, 3], [3, 2, 1]).kendall_tau == pytest.approx(-1.0)


def test_records_table_and_figures_carry_the_latency() -> None:
    stored = create_trial(
        state=TrialState.COMPLETE,
        values=[0.8, 2.5],  # an accuracy,latency study: the second value is the latency
        user_attrs={
            "status": "complete",
            "spec": ArchSpec(classes=10).canonical(),
            "macs": 193_783_104,
            "latency_ms": 2.5,
            "latency": {"median_ms": 2.5, "cv": 0.04},
        },
    )
    record = trial_record(stored)
    assert (record.macs, record.latency_ms, record.latency_cv) == (193_783_104, 2.5, 0.04)
    rows = {row["trial"]: row for row in trial_rows(TRIALS)}
    assert rows[1]["latency_ms"] == 3.0 and rows[1]["latency_cv"] == 0.05
    assert rows[5]["latency_ms"] is None
    study = StudyData(
        "s", "sqlite:///x.db", {"budget_macs": 1e8}, "0.1.0", tuple(TRIALS[:5]), OBJECTIVES
    )
    figures = report_figures(study)
    assert tuple(figures)[-2:] == LATENCY_FIGURE_IDS
    front = figures["latency_front"]
    assert [trace.name for trace in front.data][-1] == "Pareto front"  # the study's own plane
    assert list(front.data[-1].x) == [1.0, 2.0, 4.0]
    assert "timed on host-a" in front.layout.xaxis.title.text
    scatter = figures["macs_latency"]
    assert "5 timed networks (Kendall tau 0.80, Spearman rho 0.90)" in scatter.layout.title.text
    assert {trace.name for trace in scatter.data} == {
        "standard block",
        "se block",
        "condconv block",
    }
    untimed = StudyData("s", "x", {}, None, tuple(replace(t, latency_ms=None) for t in TRIALS))
    assert not set(LATENCY_FIGURE_IDS) & set(report_figures(untimed))
