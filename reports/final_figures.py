"""Plotly figures of the final trainings (``reports.finals.FinalData``), no Optuna here.

Two figures, keyed by their HTML div id (and PNG file name):

* ``final_fronts``: test accuracy vs cost (MACs, or latency in an ``accuracy,latency`` study) of
  the retrained networks with the final front ringed (chosen by the finals' validation split,
  or the proxy, never by the test score: ``reports.finals``), beside the proxy accuracy vs cost
  of the *same* networks with the proxy front, so a reader sees which networks change places
  once they are fully trained;
* ``proxy_vs_final``: proxy accuracy (x) against the final test accuracy (y), each point labelled
  by its trial number, with Kendall's tau and Spearman's rho in the title.

Error bars are one standard error of each test score (``reports.final_stats``: the test images'
binomial error plus the spread of the repeats), the precision with which the test split measures
the network; two scores whose bars nearly touch are not ordered by the data. The final front is
ringed, not joined: its points are placed by their test score, not by the figure that chose
them, so a step line through them would draw a front that was never computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.figures import FRONT_COLOUR
from reports.finals import FinalData, FinalNetwork

# Figure keys: the HTML div ids (inside the report's final section) and the PNG file names.
FINAL_FIGURE_IDS: tuple[str, ...] = ("final_fronts", "proxy_vs_final")
POINT_COLOUR = "#1f77b4"
SPREAD_NOTE = "error bars: ± one standard error of the test score"

_HOVER = (
    "trial %{customdata[0]}<br>%{y:.4f}<br>MACs %{x:,}<br>%{customdata[1]} complete repeat(s)"
    "<br>%{customdata[2]}<extra>%{fullData.name}</extra>"
)


def _customdata(networks: Sequence[FinalNetwork]) -> list[list[Any]]:
    return [
        [n.number, n.count, n.spec.canonical() if n.spec is not None else "spec unknown"]
        for n in networks
    ]


def _spread(networks: Sequence[FinalNetwork]) -> dict[str, Any]:
    """Error bars of one standard error of each network's test score."""
    return {
        "type": "data",
        "array": [n.test_se or 0.0 for n in networks],
        "thickness": 1.2,
        "width": 4,
    }


def cost_axis(data: FinalData) -> tuple[str, str]:
    """The cost the figures put on x: MACs when the study optimised them, else latency (its
    attribute on :class:`FinalNetwork` and the axis title)."""
    if "macs" in data.objectives:
        return "macs", "MACs (log scale)"
    return "latency_ms", "measured latency, ms (log scale)"


def final_fronts_figure(data: FinalData) -> go.Figure:
    """The final front (test accuracy vs MACs, log x) beside the proxy front of those networks."""
    measured = list(data.measured)
    cost, title = cost_axis(data)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_xaxes=True,
        subplot_titles=(
            f"final training: test accuracy (mean; {SPREAD_NOTE}); ringed: chosen by "
            f"{data.chosen_by}",
            "search: proxy accuracy (short trials)",
        ),
    )
    fig.add_trace(
        go.Scatter(
            x=[getattr(n, cost) for n in measured],
            y=[n.mean for n in measured],
            error_y=_spread(measured),
            mode="markers",
            name="retrained networks (test)",
            marker={"color": POINT_COLOUR, "size": 9},
            customdata=_customdata(measured),
            hovertemplate=_HOVER,
        ),
        row=1,
        col=1,
    )
    chosen = f"final front (chosen by {data.chosen_by})"
    fig.add_trace(_front_trace(data.final_front, chosen, cost, final=True), row=1, col=1)
    proxied = [n for n in measured if n.proxy_point is not None]
    fig.add_trace(
        go.Scatter(
            x=[getattr(n, cost) for n in proxied],
            y=[n.proxy_accuracy for n in proxied],
            mode="markers",
            name="retrained networks (proxy)",
            marker={"color": "#7f7f7f", "size": 9},
            customdata=_customdata(proxied),
            hovertemplate=_HOVER,
        ),
        row=1,
        col=2,
    )
    fig.add_trace(_front_trace(data.proxy_front, "proxy front", cost, final=False), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text=title, row=1, col=col)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_yaxes(title_text="proxy validation accuracy", row=1, col=2)
    fig.update_layout(
        title=f"Final front vs proxy front ({len(measured)} retrained networks)",
        template="plotly_white",
        height=480,
    )
    return fig


def _front_trace(networks: Sequence[FinalNetwork], name: str, cost: str, final: bool) -> go.Scatter:
    """The proxy front as a step line (its points are placed by the figure that made it, in a
    two-objective study); the final front ringed only (placed by test, chosen by another)."""
    staircase = not final and len(networks) > 0 and len(networks[0].costs or ()) == 1
    return go.Scatter(
        x=[getattr(n, cost) for n in networks],
        y=[n.mean if final else n.proxy_accuracy for n in networks],
        mode="lines+markers" if staircase else "markers",
        line={"shape": "hv", "color": FRONT_COLOUR, "width": 2},
        marker={"symbol": "circle-open", "size": 14, "color": FRONT_COLOUR},
        name=name,
        customdata=_customdata(networks),
        hovertemplate=_HOVER,
    )


def agreement_title(data: FinalData) -> str:
    """Kendall's tau and Spearman's rho as the scatter's title says them."""
    a = data.agreement
    if a.tau is None or a.rho is None:
        return f"Proxy vs final accuracy ({a.note})"
    return f"Proxy vs final accuracy: Kendall tau {a.tau:.2f}, Spearman rho {a.rho:.2f}"


def proxy_scatter_figure(data: FinalData) -> go.Figure:
    """Proxy accuracy (x) vs final test accuracy (y), labelled by trial number."""
    networks = [n for n in data.measured if n.proxy_accuracy is not None]
    fig = go.Figure(
        go.Scatter(
            x=[n.proxy_accuracy for n in networks],
            y=[n.mean for n in networks],
            error_y=_spread(networks),
            mode="markers+text",
            text=[f"trial {n.number}" for n in networks],
            textposition="top center",
            name="retrained networks",
            marker={"color": POINT_COLOUR, "size": 10},
            customdata=_customdata(networks),
            hovertemplate="trial %{customdata[0]}<br>proxy %{x:.4f}<br>test %{y:.4f}"
            "<br>%{customdata[1]} complete repeat(s)<extra></extra>",
        )
    )
    fig.update_layout(
        title=agreement_title(data),
        xaxis_title="proxy accuracy (short-trial validation)",
        yaxis_title=f"final test accuracy (mean; {SPREAD_NOTE})",
        template="plotly_white",
        height=480,
        showlegend=False,
    )
    return fig


def final_figures(data: FinalData) -> dict[str, go.Figure]:
    """The final section's figures keyed by :data:`FINAL_FIGURE_IDS`."""
    return {
        "final_fronts": final_fronts_figure(data),
        "proxy_vs_final": proxy_scatter_figure(data),
    }
