"""From study records to the report's parts: Pareto set, references, figures, table rows.

The one place that wires the data functions to the drawing functions, so the CLI only chooses
an output format.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from reports.figures import coefficients_figure, curves_figure, pareto_figure
from reports.pareto import pareto_front
from reports.records import StudyData
from reports.references import paper_references
from reports.table import trial_rows

# Figure keys: the HTML div ids and the PNG file names.
FIGURE_IDS: tuple[str, ...] = ("pareto", "curves", "coefficients")


def report_figures(study: StudyData) -> dict[str, go.Figure]:
    """The report's figures keyed by :data:`FIGURE_IDS`."""
    completed = [t for t in study.trials if t.measured]
    front = pareto_front(study.trials)
    classes = study.classes
    references = paper_references(classes, study.trials) if classes is not None else []
    budget = study.config.get("budget_macs")
    budget_macs = float(budget) if isinstance(budget, (int, float)) else None
    return {
        "pareto": pareto_figure(completed, front, references, budget_macs),
        "curves": curves_figure(front),
        "coefficients": coefficients_figure(completed),
    }


def report_rows(study: StudyData) -> list[dict[str, Any]]:
    return trial_rows(study.trials)
