"""Plotly figures drawn from the plain records (no Optuna, no storage here).

Three figures, each keyed by the HTML div id it gets in the report (and the PNG file name):
``pareto`` (accuracy vs MACs, coloured by block, the front as a step line, the paper
references), ``curves`` (accuracy per epoch of the Pareto trials) and ``coefficients``
(alpha / beta / gamma against accuracy); for a study that timed its candidates two more
(``reports.latency``): ``latency_front`` (accuracy vs latency and its front) and
``macs_latency`` (MACs vs latency of every timed network, with their rank correlation).
Plotly's own figure API is used, as in the Optuna dashboard's Pareto plot, so the HTML and the
static images come from the same objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.latency import LatencyData
from reports.records import TrialRecord
from reports.references import Reference

BLOCK_COLOURS: dict[str, str] = {
    "standard": "#1f77b4",
    "se": "#ff7f0e",
    "condconv": "#2ca02c",
    "unknown": "#7f7f7f",
}
FRONT_COLOUR = "#d62728"
REFERENCE_COLOUR = "#9467bd"
# above this many completed trials the clouds are drawn with WebGL (plotly's Scattergl): SVG
# markers make a figure of 10,000 points slow to pan and zoom; the front stays on top of them
GL_POINTS = 1000

_HOVER = (
    "trial %{customdata[0]}<br>accuracy %{y:.4f}<br>MACs %{x:,}<br>params %{customdata[1]}"
    "<br>%{customdata[2]}<extra>%{fullData.name}</extra>"
)


def _customdata(trials: Sequence[TrialRecord]) -> list[list[object]]:
    return [
        [
            t.number,
            f"{t.params:,}" if t.params is not None else "?",
            t.spec.canonical() if t.spec is not None else "spec unknown",
        ]
        for t in trials
    ]


class _HasBlock(Protocol):
    @property
    def block(self) -> str: ...


_Item = TypeVar("_Item", bound=_HasBlock)


def _by_block(items: Sequence[_Item]) -> dict[str, list[_Item]]:
    """Trials (or timed networks) grouped by block type, in the legend's block order."""
    groups: dict[str, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.block, []).append(item)
    order = list(BLOCK_COLOURS)
    return dict(sorted(groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))


def _accuracy_range(trials: Sequence[TrialRecord]) -> tuple[float, float]:
    values = [t.accuracy for t in trials if t.accuracy is not None]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = max(0.02, (high - low) * 0.1)
    return max(0.0, low - pad), min(1.0, high + pad)


def _accuracy_front(
    completed: Sequence[TrialRecord],
    front: Sequence[TrialRecord],
    cost: Callable[[TrialRecord], float | None],
    front_name: str,
    hover: str,
    staircase: bool = True,
) -> go.Figure:
    """Accuracy against a cost (MACs or latency): the completed trials coloured by block, and
    the study's Pareto set ringed. ``staircase``: the figure's plane is the study's objective
    plane, so the set is a front there and is joined as a step line; otherwise (a plane the
    study did not optimise, or one of three objectives) its points are only ringed, since in
    that plane some of them look dominated."""
    fig = go.Figure()
    scatter = go.Scattergl if len(completed) > GL_POINTS else go.Scatter
    for block, trials in _by_block(completed).items():
        fig.add_trace(
            scatter(
                x=[cost(t) for t in trials],
                y=[t.accuracy for t in trials],
                mode="markers",
                name=f"{block} block",
                marker={"color": BLOCK_COLOURS.get(block, "#7f7f7f"), "size": 9},
                customdata=_customdata(trials),
                hovertemplate=hover,
            )
        )
    if front:
        ordered = sorted(front, key=lambda t: (cost(t) or 0.0, -(t.accuracy or 0.0), t.number))
        fig.add_trace(
            scatter(  # the same kind as the cloud, added last: drawn on top of it
                x=[cost(t) for t in ordered],
                y=[t.accuracy for t in ordered],
                mode="lines+markers" if staircase else "markers",
                line={"shape": "hv", "color": FRONT_COLOUR, "width": 2},
                marker={"symbol": "circle-open", "size": 14, "color": FRONT_COLOUR},
                name=front_name,
                customdata=_customdata(ordered),
                hovertemplate=hover,
            )
        )
    return fig


def front_label(objectives: Sequence[str], plane: tuple[str, str]) -> tuple[str, bool]:
    """The legend name of the study's Pareto set in a figure of ``plane`` and whether it is a
    step line there (only when the plane is the study's own objective plane)."""
    if tuple(objectives) == plane:
        return "Pareto front", True
    return f"Pareto set of the study ({', '.join(objectives)})", False


def log_range(values: Sequence[float], pad: float = 1.35) -> tuple[float, float] | None:
    """A log axis's range (in log10 units, as plotly takes it) spanning ``values`` with a
    margin of ``pad`` times either side; None without a positive value."""
    positive = [v for v in values if v > 0]
    if not positive:
        return None
    return math.log10(min(positive) / pad), math.log10(max(positive) * pad)


def pareto_figure(
    completed: Sequence[TrialRecord],
    front: Sequence[TrialRecord],
    references: Sequence[Reference] = (),
    budget_macs: float | None = None,
    objectives: Sequence[str] = ("accuracy", "macs"),
) -> go.Figure:
    """Accuracy vs MACs of every completed trial, the study's Pareto set (a step line when the
    study optimised accuracy and MACs alone), the references and the budget.

    The MAC axis spans the study: its completed trials and its budget. A paper preset the study
    did not measure and whose MACs lie beyond that range is not allowed to stretch the axis (the
    quick preset's 1e8 budget against the presets' 1.9e8): it is named at the axis's edge, with
    an arrow and its MACs, instead of drawn as a line."""
    name, staircase = front_label(objectives, ("accuracy", "macs"))
    fig = _accuracy_front(completed, front, lambda t: t.macs, name, _HOVER, staircase)
    low, high = _accuracy_range([*completed, *(r.measured_by for r in references if r.measured_by)])
    spanned = [float(t.macs) for t in completed if t.macs is not None]
    spanned += [
        float(r.measured_by.macs) for r in references if r.measured_by and r.measured_by.macs
    ]
    if budget_macs is not None:
        spanned.append(budget_macs)
    if not spanned:
        spanned = [float(r.macs) for r in references]
    x_range = log_range(spanned)
    unmeasured = 0
    for ref in references:
        if ref.measured_by is not None:
            trial = ref.measured_by
            fig.add_trace(
                go.Scatter(
                    x=[trial.macs],
                    y=[trial.accuracy],
                    mode="markers+text",
                    text=[f"{ref.label} (trial {trial.number})"],
                    textposition="top center",
                    marker={"symbol": "star", "size": 18, "color": REFERENCE_COLOUR},
                    name=f"{ref.label} (measured)",
                    customdata=_customdata([trial]),
                    hovertemplate=_HOVER,
                )
            )
            continue
        # a vertical dotted line; its label sits at a staggered height so that the two
        # references (about 1 % apart in MACs) do not print over each other
        unmeasured += 1
        label_y = high - (high - low) * 0.07 * unmeasured
        side = _outside(ref.macs, x_range)
        if side is not None:
            _edge_mark(fig, ref, label_y, side)
            continue
        fig.add_trace(
            go.Scatter(
                x=[ref.macs, ref.macs, ref.macs],
                y=[low, label_y, high],
                mode="lines+text",
                text=["", f" paper preset {ref.block} (not measured)", ""],
                textposition="middle right",
                textfont={"color": REFERENCE_COLOUR},
                line={"dash": "dot", "color": REFERENCE_COLOUR, "width": 1.5},
                name=f"paper preset (not measured): {ref.block} block",
                hovertemplate=f"{ref.label}<br>MACs {ref.macs:,}<br>not measured<extra></extra>",
            )
        )
    if budget_macs is not None:
        fig.add_trace(
            go.Scatter(
                x=[budget_macs, budget_macs],
                y=[low, high],
                mode="lines",
                line={"dash": "dash", "color": "#444444", "width": 1},
                name=f"budget ({budget_macs:,.0f} MACs)",
                hovertemplate=f"budget {budget_macs:,.0f} MACs<extra></extra>",
            )
        )
    title = "Validation accuracy vs MACs (completed trials)"
    if not staircase:
        title += f"; ringed: the Pareto set of the study's objectives ({', '.join(objectives)})"
    fig.update_layout(
        title=title,
        xaxis_title="MACs (multiply-accumulates, log scale)",
        yaxis_title="validation accuracy",
        xaxis_type="log",
        yaxis_range=[low, high],
        template="plotly_white",
        height=560,
        legend={"orientation": "v"},
    )
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    if not completed:
        _note(fig, "no completed trials yet")
    return fig


def _outside(macs: float, x_range: tuple[float, float] | None) -> str | None:
    """ "right" / "left" when ``macs`` lies beyond the axis range, else None."""
    if x_range is None:
        return None
    if math.log10(macs) > x_range[1]:
        return "right"
    if math.log10(macs) < x_range[0]:
        return "left"
    return None


def _edge_mark(fig: go.Figure, ref: Reference, y: float, side: str) -> None:
    """A reference beyond the axis: its name and MACs at that edge, pointing outwards."""
    arrow = "→" if side == "right" else "←"
    text = f"paper preset {ref.block} (not measured): {ref.macs / 1e6:,.1f} M MACs"
    fig.add_annotation(
        text=f"{text} {arrow}" if side == "right" else f"{arrow} {text}",
        xref="paper",
        x=1.0 if side == "right" else 0.0,
        xanchor="right" if side == "right" else "left",
        yref="y",
        y=y,
        showarrow=False,
        font={"color": REFERENCE_COLOUR},
        name=f"paper preset beyond the axis: {ref.block} block",
    )


def curves_figure(front: Sequence[TrialRecord]) -> go.Figure:
    """Validation accuracy after each epoch for the Pareto trials."""
    fig = go.Figure()
    for trial in front:
        curve = trial.accuracy_per_epoch
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(curve) + 1)),
                y=list(curve),
                mode="lines+markers",
                name=f"trial {trial.number} ({trial.block}, {(trial.macs or 0) / 1e6:,.1f} M MACs)",
                line={"color": BLOCK_COLOURS.get(trial.block, "#7f7f7f")},
                hovertemplate="epoch %{x}<br>accuracy %{y:.4f}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title="Accuracy per epoch of the Pareto trials",
        xaxis_title="epoch",
        yaxis_title="validation accuracy",
        xaxis_dtick=1,
        template="plotly_white",
        height=420,
    )
    if not any(t.accuracy_per_epoch for t in front):
        _note(fig, "no per-epoch accuracies recorded for the Pareto trials")
    return fig


def coefficients_figure(completed: Sequence[TrialRecord]) -> go.Figure:
    """Alpha, beta and gamma against accuracy: three panels sharing the accuracy axis."""
    names = ("alpha", "beta", "gamma")
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, subplot_titles=names)
    scatter = go.Scattergl if len(completed) > GL_POINTS else go.Scatter
    for block, trials in _by_block([t for t in completed if t.spec is not None]).items():
        for col, name in enumerate(names, start=1):
            fig.add_trace(
                scatter(
                    x=[getattr(t.spec, name) for t in trials],
                    y=[t.accuracy for t in trials],
                    mode="markers",
                    name=f"{block} block",
                    legendgroup=block,
                    showlegend=col == 1,
                    marker={"color": BLOCK_COLOURS.get(block, "#7f7f7f"), "size": 8},
                    customdata=[[t.number, t.spec.phi if t.spec else 0] for t in trials],
                    hovertemplate=f"trial %{{customdata[0]}}<br>{name} %{{x:.3f}}"
                    "<br>phi %{customdata[1]}<br>accuracy %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            fig.update_xaxes(title_text=name, row=1, col=col)
    fig.update_yaxes(title_text="validation accuracy", row=1, col=1)
    fig.update_layout(
        title="Compound-scaling coefficients vs accuracy (completed trials)",
        template="plotly_white",
        height=420,
    )
    return fig


_LATENCY_HOVER = (
    "trial %{customdata[0]}<br>accuracy %{y:.4f}<br>latency %{x:.3g} ms<br>params "
    "%{customdata[1]}<br>%{customdata[2]}<extra>%{fullData.name}</extra>"
)


def latency_front_figure(data: LatencyData) -> go.Figure:
    """Accuracy vs measured latency of the completed trials, the study's Pareto set ringed (a
    step line when the study optimised accuracy and latency alone)."""
    name, staircase = front_label(data.objectives, ("accuracy", "latency"))
    fig = _accuracy_front(
        data.completed, data.front, lambda t: t.latency_ms, name, _LATENCY_HOVER, staircase
    )
    low, high = _accuracy_range(data.completed)
    title = "Validation accuracy vs measured latency (completed trials)"
    if not staircase:
        title += (
            f"; ringed: the Pareto set of the study's objectives ({', '.join(data.objectives)})"
        )
    fig.update_layout(
        title=title,
        xaxis_title=f"median latency per batch, ms (log scale; {data.where})",
        yaxis_title="validation accuracy",
        xaxis_type="log",
        yaxis_range=[low, high],
        template="plotly_white",
        height=520,
    )
    if not data.completed:
        _note(fig, "no completed timed trials yet")
    return fig


def macs_latency_figure(data: LatencyData) -> go.Figure:
    """MACs vs measured latency of every timed network, coloured by block, with the rank
    correlation of the two in the title."""
    fig = go.Figure()
    for block, networks in _by_block(data.networks).items():
        fig.add_trace(
            go.Scatter(
                x=[n.macs for n in networks],
                y=[n.latency_ms for n in networks],
                mode="markers",
                name=f"{block} block",
                marker={"color": BLOCK_COLOURS.get(block, "#7f7f7f"), "size": 9},
                customdata=[[n.number, n.spec] for n in networks],
                hovertemplate="trial %{customdata[0]}<br>MACs %{x:,}<br>latency %{y:.3g} ms"
                "<br>%{customdata[1]}<extra>%{fullData.name}</extra>",
            )
        )
    ranks = data.correlation
    agreement = (
        f"Kendall tau {ranks.kendall_tau:.2f}, Spearman rho {ranks.spearman_rho:.2f}"
        if ranks.kendall_tau is not None and ranks.spearman_rho is not None
        else "rank correlation undefined"
    )
    fig.update_layout(
        title=f"Measured latency vs MACs, {ranks.n} timed networks ({agreement})",
        xaxis_title="MACs (log scale)",
        yaxis_title="median latency per batch, ms (log scale)",
        xaxis_type="log",
        yaxis_type="log",
        template="plotly_white",
        height=520,
    )
    return fig


def _note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 16}
    )
