"""The trial table: one plain dict per trial, Pareto set first; CSV and JSON exports.

Rows are plain ``dict``s with a fixed column order (:data:`COLUMNS`) so the same data feeds the
HTML table (through pandas), ``--format csv`` and ``--format json`` without any drawing code.
Every trial is listed, including pruned, infeasible, failed and running ones. The ``pareto``
column is the study's own front (its objectives, as `search best` computes it). A study that
timed nothing has no latency columns (:data:`LATENCY_COLUMNS`): an empty column would suggest a
measurement that was never made.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from reports.pareto import pareto_front
from reports.records import TrialRecord

COLUMNS: tuple[str, ...] = (
    "trial",
    "pareto",
    "status",
    "state",
    "accuracy",
    "macs",
    "params",
    "latency_ms",
    "latency_cv",
    "latency_host",
    "block",
    "expansion",
    "se_ratio",
    "experts",
    "mid_conv",
    "kernel",
    "alpha",
    "beta",
    "gamma",
    "phi",
    "resolution",
    "epochs_run",
    "last_accuracy",
    "seconds",
    "images_per_second",
    "peak_memory_bytes",
    "stage",
    "spec",
    "spec_id",
    "fail_reason",
)

LATENCY_COLUMNS: tuple[str, ...] = ("latency_ms", "latency_cv", "latency_host")

_SPEC_COLUMNS = ("expansion", "se_ratio", "experts", "mid_conv", "kernel", "alpha", "beta")
_SPEC_COLUMNS += ("gamma", "phi", "resolution")


def trial_row(trial: TrialRecord, on_front: bool, latency: bool = True) -> dict[str, Any]:
    """One table row; absent values are ``None``; ``latency`` False leaves out the latency
    columns."""
    spec = trial.spec
    row: dict[str, Any] = {
        "trial": trial.number,
        "pareto": on_front,
        "status": trial.status,
        "state": trial.state,
        "accuracy": trial.accuracy,
        "macs": trial.macs,
        "params": trial.params,
        "latency_ms": trial.latency_ms,
        "latency_cv": trial.latency_cv,
        "latency_host": trial.latency_host,
        "block": spec.block if spec is not None else None,
    }
    for name in _SPEC_COLUMNS:
        row[name] = getattr(spec, name) if spec is not None else None
    row.update(
        epochs_run=trial.epochs_run,
        last_accuracy=trial.last_accuracy,
        seconds=trial.seconds,
        images_per_second=trial.images_per_second,
        peak_memory_bytes=trial.peak_memory_bytes,
        stage=trial.stage,
        spec=spec.canonical() if spec is not None else None,
        spec_id=spec.spec_id if spec is not None else None,
        fail_reason=trial.fail_reason,
    )
    return {column: row[column] for column in columns(latency)}


def columns(latency: bool = True) -> tuple[str, ...]:
    """The table's columns, without :data:`LATENCY_COLUMNS` when ``latency`` is False."""
    return COLUMNS if latency else tuple(c for c in COLUMNS if c not in LATENCY_COLUMNS)


def trial_rows(trials: Iterable[TrialRecord], latency: bool | None = None) -> list[dict[str, Any]]:
    """All trials: the study's Pareto set first (by its costs), then the rest by trial number.
    ``latency``: whether to keep the latency columns (default: when a trial was timed)."""
    trials = list(trials)
    if latency is None:
        latency = any(t.latency_ms is not None for t in trials)
    front = pareto_front(trials)
    on_front = {t.number for t in front}
    rest = sorted((t for t in trials if t.number not in on_front), key=lambda t: t.number)
    return [trial_row(t, True, latency) for t in front] + [
        trial_row(t, False, latency) for t in rest
    ]


def to_dataframe(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a DataFrame in their column order (object dtype keeps ints exact); no rows:
    the columns of a study that timed nothing."""
    names = list(rows[0]) if rows else list(columns(latency=False))
    return pd.DataFrame(rows, columns=names, dtype=object)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header row; absent values are empty cells, booleans ``True``/``False``."""
    buffer = io.StringIO()
    to_dataframe(rows).to_csv(buffer, index=False, na_rep="", lineterminator="\n")
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(rows: list[dict[str, Any]]) -> str:
    """A JSON array of row objects (strict JSON: no NaN)."""
    clean = [{k: _json_value(v) for k, v in row.items()} for row in rows]
    return json.dumps(clean, indent=1, allow_nan=False) + "\n"
