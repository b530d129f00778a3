"""The trial table: one plain dict per trial, Pareto set first; CSV and JSON exports.

Rows are plain ``dict``s with a fixed column order (:data:`COLUMNS`) so the same data feeds the
HTML table (through pandas), ``--format csv`` and ``--format json`` without any drawing code.
Every trial is listed, including pruned, infeasible, failed and running ones.
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

_SPEC_COLUMNS = ("expansion", "se_ratio", "experts", "mid_conv", "kernel", "alpha", "beta")
_SPEC_COLUMNS += ("gamma", "phi", "resolution")


def trial_row(trial: TrialRecord, on_front: bool) -> dict[str, Any]:
    """One table row; absent values are ``None``."""
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
    return {column: row[column] for column in COLUMNS}


def trial_rows(trials: Iterable[TrialRecord]) -> list[dict[str, Any]]:
    """All trials: the Pareto set first (by MACs), then the rest by trial number."""
    trials = list(trials)
    front = pareto_front(trials)
    on_front = {t.number for t in front}
    rest = sorted((t for t in trials if t.number not in on_front), key=lambda t: t.number)
    return [trial_row(t, True) for t in front] + [trial_row(t, False) for t in rest]


def to_dataframe(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a DataFrame with the fixed column order (object dtype keeps ints exact)."""
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)


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
