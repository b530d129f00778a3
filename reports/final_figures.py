"""Plotly figures of the final trainings (``reports.finals.FinalData``), no Optuna here.

Two figures, keyed by their HTML div id (and PNG file name):

* ``final_fronts``: test accuracy vs MACs of the retrained networks with the final front, beside
  the proxy accuracy vs MACs of the *same* networks with the proxy front, so a reader sees which
  networks change places once they are fully trained;
* ``proxy_vs_final``: proxy accuracy (x) against the final test accuracy (y), each point labelled
  by its trial number, with Kendall's tau and Spearman's rho in the title.

Error bars span the repeats' minimum to maximum rather than a standard deviation: with two or
three repeats per network a standard deviation says little, the range shows every repeat.
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
SPREAD_NOTE = "error bars: min to max of the repeats"

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
    """Asymmetric error bars from each network's mean to its lowest and highest repeat."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [(n.high or 0.0) - (n.mean or 0.0) for n in networks],
        "arrayminus": [(n.mean or 0.0) - (n.low or 0.0) for n in networks],
        "thickness": 1.2,
        "width": 4,
    }


def final_fronts_figure(data: FinalData) -> go.Figure:
    """The final front (test accuracy vs MACs, log x) beside the proxy front of those networks."""
    measured = list(data.measured)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_xaxes=True,
        subplot_titles=(
            f"final training: test accuracy (mean; {SPREAD_NOTE})",
            "search: proxy accuracy (short trials)",
        ),
    )
    fig.add_trace(
        go.Scatter(
            x=[n.macs for n in measured],
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
    fig.add_trace(_front_trace(data.final_front, "final front", final=True), row=1, col=1)
    proxied = [n for n in measured if n.proxy_point is not None]
    fig.add_trace(
        go.Scatter(
            x=[n.macs for n in proxied],
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
    fig.add_trace(_front_trace(data.proxy_front, "proxy front", final=False), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text="MACs (log scale)", row=1, col=col)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_yaxes(title_text="proxy validation accuracy", row=1, col=2)
    fig.update_layout(
        title=f"Final front vs proxy front ({len(measured)} retrained networks)",
        template="plotly_white",
        height=480,
    )
    return fig


def _front_trace(networks: Sequence[FinalNetwork], name: str, final: bool) -> go.Scatter:
    return go.Scatter(
        x=[n.macs for n in networks],
        y=[n.mean if final else n.proxy_accuracy for n in networks],
        mode="lines+markers",
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
