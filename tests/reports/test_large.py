"""A report of a large study stays usable: its clouds in WebGL with the front on top, and a
table that pages (reports/figures.py, reports/html.py)."""

from __future__ import annotations

import random

import plotly.graph_objects as go

from reports.figures import GL_POINTS, coefficients_figure, pareto_figure
from reports.html import _SORT_JS
from reports.pareto import pareto_front
from reports.records import TrialRecord
from space import ArchSpec

SPECS = [ArchSpec(block=b, expansion=2, classes=10) for b in ("standard", "se", "condconv")]


def _records(count: int) -> list[TrialRecord]:
    rng = random.Random(0)
    return [
        TrialRecord(
            n,
            "COMPLETE",
            "complete",
            SPECS[n % 3],
            accuracy=rng.random(),
            macs=rng.randint(1, 9) * 10**6,
        )
        for n in range(count)
    ]


def test_a_large_cloud_is_webgl_with_the_front_drawn_last() -> None:
    big, small = _records(GL_POINTS + 1), _records(50)
    figure = pareto_figure(big, pareto_front(big))
    assert all(isinstance(trace, go.Scattergl) for trace in figure.data)
    assert figure.data[-1].name == "Pareto front" and len(figure.data) == 4
    assert all(isinstance(t, go.Scattergl) for t in coefficients_figure(big).data)
    assert all(isinstance(t, go.Scatter) for t in pareto_figure(small, pareto_front(small)).data)


def test_the_table_pages_by_a_hundred_rows() -> None:
    assert "var PAGE = 100" in _SORT_JS and 'pager.id = "pager"' in _SORT_JS
    assert _SORT_JS.count("show(0)") == 2  # on load and after every sort
