"""One self-contained HTML report: header, figures, final training, sortable trial table.

The file must open offline (a search may run on a machine without internet), so plotly.js is
embedded once, inline (``plotly.offline.get_plotlyjs``, what ``include_plotlyjs=True`` embeds),
each figure is written with ``include_plotlyjs=False`` into its own ``div`` and the table is
sorted by a few lines of inline JavaScript: no CDN, no external asset.

The section "Final training (test split)" puts the truth next to the proxy: the agreement line
of ``reports.finals``, the final figures and one row per retrained network; without a final
training it says how to make one.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from reports.final_figures import FINAL_FIGURE_IDS, SPREAD_NOTE
from reports.finals import FinalData, final_rows, no_final_message
from reports.records import StudyData
from reports.table import to_dataframe

# plotly.js carries a CDN URL as the default topojson location of geo maps (never used here).
# It is pointed at a relative path so the report holds no network address at all.
_TOPOJSON_DEFAULT = 'dflt:"https://cdn.plot.ly/un/"'

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; }
.banner { background: #fff3cd; border: 1px solid #e0b400; padding: 10px 14px; font-weight: bold;
  margin: 12px 0; border-radius: 4px; }
.meta td { padding: 2px 12px 2px 0; vertical-align: top; }
.counts span { display: inline-block; margin-right: 14px; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table.trials { border-collapse: collapse; font-size: 13px; }
table.trials th { background: #eee; cursor: pointer;
  user-select: none; white-space: nowrap; }
table.trials th, table.trials td { border: 1px solid #ccc; padding: 3px 6px; }
table.trials td { white-space: nowrap; }
table.trials tr.pareto td { background: #fdecea; }
.agree { background: #e6f4ea; border: 1px solid #34a853; padding: 10px 14px; margin: 12px 0;
  border-radius: 4px; }
.disagree { background: #fff3cd; border: 1px solid #e0b400; padding: 10px 14px; margin: 12px 0;
  font-weight: bold; border-radius: 4px; }
table.trials tr.final-front td { background: #fdecea; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
"""

_SORT_JS = """
(function () {
  var table = document.getElementById("trials");
  var body = table.tBodies[0];
  Array.prototype.forEach.call(body.rows, function (row) {
    if (row.cells[1].textContent.trim() === "yes") { row.className = "pareto"; }
  });
  var PAGE = 100, page = 0, pager = null;  // rows per page: 10,000 trials stay quick to browse
  function show(wanted) {
    if (pager === null) { return; }
    var rows = body.rows, pages = Math.ceil(rows.length / PAGE);
    page = Math.min(Math.max(wanted, 0), pages - 1);
    for (var i = 0; i < rows.length; i++) {
      rows[i].style.display = (i >= page * PAGE && i < (page + 1) * PAGE) ? "" : "none";
    }
    pager.querySelector("span").textContent = "rows " + (page * PAGE + 1) + "-" +
      Math.min(rows.length, (page + 1) * PAGE) + " of " + rows.length;
  }
  if (body.rows.length > PAGE) {
    pager = document.createElement("div");
    pager.id = "pager";
    pager.innerHTML = '<button data-step="-1">&lsaquo; previous</button> <span></span> ' +
      '<button data-step="1">next &rsaquo;</button>';
    Array.prototype.forEach.call(pager.querySelectorAll("button"), function (button) {
      button.addEventListener("click", function () {
        show(page + parseInt(button.getAttribute("data-step"), 10));
      });
    });
    table.parentNode.insertBefore(pager, table);
    show(0);
  }
  function key(cell) {
    var text = cell.textContent.trim(), number = parseFloat(text.replace(/,/g, ""));
    return text === "" ? null : (/^-?[\\d,.]+(e[-+]?\\d+)?$/i.test(text) ? number : text);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var up = !th.classList.contains("asc");
      Array.prototype.forEach.call(th.parentNode.cells, function (c) {
        c.classList.remove("asc", "desc");
      });
      th.classList.add(up ? "asc" : "desc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
        var order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                            : (typeof x === "number" ? -1 : 1);
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      show(0);
    });
  });
})();
"""

_FORMATS: dict[str, str] = {
    "accuracy": "{:.4f}",
    "last_accuracy": "{:.4f}",
    "macs": "{:,}",
    "params": "{:,}",
    "peak_memory_bytes": "{:,}",
    "seconds": "{:.1f}",
    "images_per_second": "{:.1f}",
}


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if column in _FORMATS:
        return _FORMATS[column].format(value)
    return str(value)


def table_html(rows: list[dict[str, Any]]) -> str:
    """The trial table (pandas ``to_html``, escaped) with display formatting."""
    frame = to_dataframe(rows)
    for column in frame.columns:
        frame[column] = [_cell(column, v) for v in frame[column]]
    return frame.to_html(index=False, table_id="trials", classes="trials", border=0, escape=True)


def plotly_js() -> str:
    """plotly.js, inline, with its one (unused) CDN default replaced."""
    return get_plotlyjs().replace(_TOPOJSON_DEFAULT, 'dflt:"topojson/"')


def _config_rows(config: dict[str, Any]) -> str:
    lines = []
    for key, value in config.items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        if key == "budget_macs" and isinstance(value, (int, float)):
            text = f"{value:,.0f} MACs"
        lines.append(f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(text)}</td></tr>")
    return "\n".join(lines)


def header_html(study: StudyData) -> str:
    """Study name, storage, config, counts per status and the still-running banner."""
    counts = " ".join(
        f"<span>{html.escape(status)}: <b>{count}</b></span>"
        for status, count in study.counts().items()
    )
    running = study.running
    banner = ""
    if running:
        noun = "trial" if running == 1 else "trials"
        banner = (
            f'<div class="banner" id="running-banner">search still running ({running} {noun} '
            "running): this report shows the trials finished so far; run `search report` "
            "again to update it</div>"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = html.escape(study.version or "unknown")
    return f"""<h1>Study {html.escape(study.name)}</h1>
<div>storage {html.escape(study.storage)} &middot; effnas {version} &middot; read {stamp}
&middot; {len(study.trials)} trials</div>
{banner}
<div class="counts" id="status-counts">{counts}</div>
<h2>Configuration</h2>
<table class="meta" id="config">{_config_rows(study.config)}</table>"""


def _figures_html(figures: dict[str, go.Figure]) -> str:
    return "\n".join(
        '<div class="figure">'
        f"{fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)}</div>"
        for div_id, fig in figures.items()
    )


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _final_table(final: FinalData) -> str:
    """One row per retrained network, the final front first (highlighted): the figure that
    chose, then the test score with its standard error, the repeats' spread and count."""
    head = ("trial", "final front", "spec", "MACs", "latency ms", "proxy acc", "val acc (chooses)")
    head += ("test acc ± SE", "repeats: std", "test min - max", "repeats")
    lines = ["<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>"]
    for row in final_rows(final):
        mean = _accuracy(row["test_mean"])
        if mean and row["test_se"] is not None:
            mean += f" ± {row['test_se']:.4f}"
        spread = ""
        if row["test_min"] is not None:
            spread = f"{row['test_min']:.4f} - {row['test_max']:.4f}"
        cells = (
            str(row["trial"]),
            "yes" if row["final_front"] else "",
            row["spec"] or "",
            "" if row["macs"] is None else f"{row['macs']:,}",
            "" if row["latency_ms"] is None else f"{row['latency_ms']:.3g}",
            _accuracy(row["proxy_accuracy"]),
            _accuracy(row["val_mean"]),
            mean,
            "" if row["test_std"] is None else f"{row['test_std']:.4f}",
            spread,
            str(row["repeats"]),
        )
        css = ' class="final-front"' if row["final_front"] else ' class="final-row"'
        lines.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    body = "\n".join(lines)
    return f'<table class="trials" id="final-table">\n{body}\n</table>'


def _choice_html(final: FinalData) -> str:
    """Which figure chose, which measured, the final best and the pairs the data cannot order."""
    best = final.best
    lines = [
        f"chosen by: {final.chooser}",
        f"measured by: {final.measure}",
    ]
    if best is not None and best.mean is not None:
        lines.append(
            f"final best (chosen by {final.chosen_by}): trial {best.number}, test "
            f"{best.mean:.4f} ± {best.test_se or 0.0:.4f}"
        )
    lines += [u.message for u in final.unordered]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<ul id="final-choice">{items}</ul>'


def final_section_html(
    study_name: str, final: FinalData | None, figures: dict[str, go.Figure]
) -> str:
    """The "Final training (test split)" section; without finals, how to make one."""
    title = '<h2 id="final">Final training (test split)</h2>'
    if final is None:
        hint = html.escape(no_final_message(study_name))
        return f'{title}\n<p id="final-none">{hint}</p>'
    a = final.agreement
    counts = ", ".join(f"{n} {s}" for s, n in final.counts.items() if n)
    retrained = len(final.networks)
    css = "agree" if a.agrees else "disagree"
    return f"""{title}
<div>study {html.escape(final.name)}: {retrained} retrained networks, final trials
{html.escape(counts)}; each evaluated once on the test split ({html.escape(SPREAD_NOTE)})</div>
{_choice_html(final)}
<div class="{css}" id="final-agreement">{html.escape(a.message)}</div>
{_figures_html(figures)}
<div class="table-wrap">{_final_table(final)}</div>"""


def render_report(
    study: StudyData,
    figures: dict[str, go.Figure],
    rows: list[dict[str, Any]],
    final: FinalData | None = None,
) -> str:
    """The whole HTML document; ``figures`` maps div id to figure, drawn in that order (the
    final figures, :data:`FINAL_FIGURE_IDS`, inside the final section with ``final``)."""
    title = f"effnas study {html.escape(study.name)}"
    figures_html = _figures_html({k: f for k, f in figures.items() if k not in FINAL_FIGURE_IDS})
    final_figures = {k: f for k, f in figures.items() if k in FINAL_FIGURE_IDS}
    final_html = final_section_html(study.name, final, final_figures)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{_STYLE}</style>
<script type="text/javascript">{plotly_js()}</script>
</head>
<body>
{header_html(study)}
<h2>Figures</h2>
{figures_html}
{final_html}
<h2>All trials (Pareto set of {html.escape(", ".join(study.objectives))} first; click a column
header to sort)</h2>
<div class="table-wrap">{table_html(rows)}</div>
<script type="text/javascript">{_SORT_JS}</script>
</body>
</html>
"""
