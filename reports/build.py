"""From study records to the report's parts: Pareto set, references, figures, table rows.

The Pareto set is the study's own (``reports.pareto`` over each record's point, which is the
trial's stored values in the study's objectives): every figure rings it, the table marks and
lists it first, and `search best` prints it, for 2 and 3 objectives alike.

The one place that wires the data functions to the drawing functions, so the CLI only chooses
an output format. The final trainings of the study (``reports.finals``), when there are any,
add their own figures (``reports.final_figures``) to the same dict, drawn in the report's
"Final training" section and written as PNGs like the others.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from reports.figures import (
    coefficients_figure,
    curves_figure,
    latency_front_figure,
    macs_latency_figure,
    pareto_figure,
)
from reports.final_figures import final_figures
from reports.finals import FinalData
from reports.latency import latency_data
from reports.pareto import pareto_front
from reports.records import StudyData
from reports.references import paper_references
from reports.table import trial_rows

# Figure keys: the HTML div ids and the PNG file names.
FIGURE_IDS: tuple[str, ...] = ("pareto", "curves", "coefficients")
LATENCY_FIGURE_IDS: tuple[str, ...] = ("latency_front", "macs_latency")  # studies that timed


def report_figures(study: StudyData, final: FinalData | None = None) -> dict[str, go.Figure]:
    """The report's figures keyed by :data:`FIGURE_IDS`, then :data:`LATENCY_FIGURE_IDS` when
    the study timed its candidates, then the final section's figures
    (``reports.final_figures.FINAL_FIGURE_IDS``) when ``final`` holds any final training."""
    completed = [t for t in study.trials if t.measured]
    front = pareto_front(study.trials)
    classes = study.classes
    references = paper_references(classes, study.trials) if classes is not None else []
    budget = study.config.get("budget_macs")
    budget_macs = float(budget) if isinstance(budget, (int, float)) else None
    figures = {
        "pareto": pareto_figure(completed, front, references, budget_macs, study.objectives),
        "curves": curves_figure(front),
        "coefficients": coefficients_figure(completed),
    }
    latency = latency_data(study.trials, study.objectives)
    if latency is not None:
        figures["latency_front"] = latency_front_figure(latency)
        figures["macs_latency"] = macs_latency_figure(latency)
    if final is not None:
        figures.update(final_figures(final))
    return figures


def report_rows(study: StudyData) -> list[dict[str, Any]]:
    """The trial table; without a timed trial, no latency columns (nothing was measured)."""
    return trial_rows(study.trials, latency=study.timed)
