"""Export one trial of a study: its spec, its record and (if saved) its weights.

``DIR/spec.json`` is ``ArchSpec.to_json`` and is read back by ``--spec FILE`` of every command
that takes a spec (e.g. ``search train --spec DIR/spec.json``); ``DIR/trial.json`` keeps
everything Optuna stored about the trial; ``DIR/weights.pt`` is copied when the trial saved one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from common.errors import UserError
from reports.records import trial_record
from search.study import METRIC_NAMES, schema

WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class Exported:
    """What was written; ``weights`` is None when the trial saved none (``note`` says why)."""

    spec: Path
    trial: Path
    weights: Path | None
    note: str | None = None


def find_trial(study: optuna.Study, number: int) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.number == number:
            return trial
    last = max((t.number for t in trials), default=None)
    known = f"trials 0..{last}" if last is not None else "no trials yet"
    raise UserError(f"study {study.study_name!r} has no trial {number}; it has {known}")


def trial_document(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """Everything stored about ``trial`` as plain JSON-ready data."""
    return {
        "study": study.study_name,
        "number": trial.number,
        "state": trial.state.name,
        "status": trial_record(trial).status,
        "values": list(trial.values) if trial.values is not None else None,
        "metric_names": list(study.metric_names or METRIC_NAMES),
        "params": trial.params,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items()},
        "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "datetime_complete": (
            trial.datetime_complete.isoformat() if trial.datetime_complete else None
        ),
        "study_config": study.user_attrs.get(schema.CONFIG),
    }


def export_trial(study: optuna.Study, number: int, out_dir: Path) -> Exported:
    """Write spec.json, trial.json and weights.pt (when saved) of trial ``number``."""
    trial = find_trial(study, number)
    record = trial_record(trial)
    if record.spec is None:
        raise UserError(
            f"trial {number} of study {study.study_name!r} stored no valid spec "
            f"(status {record.status}); export another trial"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        spec_path = out_dir / "spec.json"
        spec_path.write_text(record.spec.to_json() + "\n")
        trial_path = out_dir / "trial.json"
        document = trial_document(study, trial)
        trial_path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write to --out {out_dir}: {exc.strerror}") from exc
    weights, note = _copy_weights(record.weights_dir, out_dir)
    return Exported(spec_path, trial_path, weights, note)


def _copy_weights(weights_dir: str | None, out_dir: Path) -> tuple[Path | None, str | None]:
    if weights_dir is None:
        return None, "the trial saved no weights"
    source = Path(weights_dir) / WEIGHTS_FILE
    if not source.is_file():
        return None, f"the trial's weights file {source} no longer exists"
    target = out_dir / WEIGHTS_FILE
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise UserError(f"cannot copy {source} to {target}: {exc.strerror}") from exc
    return target, None
