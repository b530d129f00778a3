"""`search report` and `search export`: read a study written by `search run` (never create one)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from common.bounds import MAX_LATENCY_BATCH, check_int
from common.errors import UserError
from reports.build import report_figures, report_rows
from reports.export import export_trial, load_final
from reports.finals import final_data
from reports.html import render_report
from reports.onnx_export import export_onnx
from reports.png import write_pngs
from reports.records import study_data
from reports.table import to_csv, to_json
from search.study.database import DEFAULT_STORAGE, load_study, open_existing
from search.study.urls import mask_url
from space.onnx import INPUT_NAME, check_onnx_packages

_STUDY_HELP = "Study name (may be left out when the storage holds exactly one study)."
_STORAGE_HELP = f"Optuna storage URL (default {DEFAULT_STORAGE})."


def _write_text(text: str, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --out {out}: {exc.strerror}") from exc


@click.command("report")
@click.option("--study", "study_name", default=None, help=_STUDY_HELP)
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help=_STORAGE_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "csv", "json"]),
    default="html",
    show_default=True,
    help="html: the self-contained report; csv / json: the trial table only.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Output file (default report.html for html, stdout for csv/json).",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write the figures as PNG files into this directory (needs kaleido + Chromium).",
)
def report_command(
    study_name: str | None, storage: str, fmt: str, out: Path | None, png_dir: Path | None
) -> None:
    """Pareto report of a study: accuracy vs MACs, curves, coefficients, its final training
    (test split, from the companion study NAME:final) and the trial table."""
    backend = open_existing(storage)
    study = load_study(backend, study_name, storage)
    data = study_data(study, mask_url(storage))
    rows = report_rows(data)
    drawn = fmt == "html" or png_dir is not None
    final = final_data(study, backend) if drawn else None
    figures = report_figures(data, final) if drawn else {}
    if fmt == "html":
        target = out or Path("report.html")
        _write_text(render_report(data, figures, rows, final), target)
        counts = ", ".join(f"{n} {s}" for s, n in data.counts().items() if n)
        click.echo(f"wrote {target} ({len(data.trials)} trials: {counts or 'none'})", err=True)
        if final is not None:
            click.echo(f"final training: {final.agreement.message}", err=True)
        if data.running:
            click.echo(f"note: search still running ({data.running} running)", err=True)
    else:
        text = to_csv(rows) if fmt == "csv" else to_json(rows)
        if out is None:
            sys.stdout.write(text)
        else:
            _write_text(text, out)
            click.echo(f"wrote {out} ({len(rows)} trials)", err=True)
    if png_dir is not None:
        for path in write_pngs(figures, png_dir):
            click.echo(f"wrote {path}", err=True)


@click.command("export")
@click.option("--study", "study_name", default=None, help=_STUDY_HELP)
@click.option("--trial", "number", type=int, required=True, help="Trial number to export.")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help=_STORAGE_HELP)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for spec.json, trial.json, weights.pt (and result.json of a final training).",
)
@click.option(
    "--onnx",
    "onnx",
    is_flag=True,
    help="Also write model.onnx (runs with onnxruntime alone), checked against PyTorch on real "
    "test images.",
)
@click.option(
    "--onnx-batch", "onnx_batch", type=int, default=1, show_default=True, help="model.onnx's batch."
)
@click.option("--data-dir", "data_dir", default=None, help="Data set directory for the check.")
def export_command(
    study_name: str | None,
    number: int,
    storage: str,
    out: Path,
    onnx: bool,
    onnx_batch: int,
    data_dir: str | None,
) -> None:
    """Export one trial's spec (for `search train --spec`), record and weights.

    The weights of the trial's final training (study S:final, repeat 0 first) when there is
    one, else the trial's own weights when the search saved them. With --onnx, also
    model.onnx and onnx.json (opset, batch, the check's largest difference)."""
    check_int("onnx_batch", onnx_batch, 1, MAX_LATENCY_BATCH, "--onnx-batch")
    if onnx:
        check_onnx_packages("--onnx")
    opened = open_existing(storage)
    study = load_study(opened, study_name, storage)
    exported = export_trial(study, number, out, load_final(opened, study.study_name))
    click.echo(f"wrote {exported.spec}")
    click.echo(f"wrote {exported.trial}")
    if exported.result is not None:
        click.echo(f"wrote {exported.result}")
    if exported.weights is not None:
        click.echo(f"wrote {exported.weights}: {exported.weights_from}")
    else:
        click.echo(f"no weights.pt: {exported.note}")
    click.echo(f"retrain with: search train --spec {exported.spec}")
    if exported.evaluable:
        click.echo(f"evaluate with: search evaluate --weights {out}")
    if not onnx:
        return
    if not exported.evaluable:
        why = exported.note or "no input contract saved with them"
        raise UserError(
            f"--onnx needs the trial's weights with their input contract ({why}); save weights "
            "with search run --weights-dir or search final"
        )
    check = export_onnx(out, onnx_batch, data_dir)
    click.echo(
        f"wrote {check.path}: opset {check.opset}, input {INPUT_NAME} {list(check.input_shape)} "
        f"float32; onnxruntime = PyTorch on {check.images} {check.dataset} test images (largest "
        f"logit difference {check.max_abs_diff:.2g}, {check.tolerance}; same class "
        f"{check.same_class}/{check.images})"
    )
