"""Export one trial of a study: its spec, its record and the best weights there are of it.

``DIR/spec.json`` is the spec's fields, read back by ``--spec FILE`` of every command that takes a
spec (e.g. ``search train --spec DIR/spec.json``), with the input contract of the exported weights
under ``"input"`` when they were saved with one (``ArchSpec.from_json`` skips it; ``search
evaluate --weights DIR`` applies it); ``DIR/trial.json`` keeps everything Optuna stored about the
trial. The weights: when the companion study ``S:final`` (``schema.final_study_name``) holds a
COMPLETE final training of the trial whose weights directory still has its files, that final's
``weights.pt`` and ``spec.json`` (repeat 0 when there is one, else the lowest repeat), its record
under ``"final"`` in ``trial.json`` and its result (the test accuracy) in ``DIR/result.json``;
otherwise the searched trial's own ``weights.pt``, when it saved one.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from common.errors import UserError
from reports.records import trial_record
from search.study import METRIC_NAMES, schema, study_names
from space import ArchSpec

WEIGHTS_FILE = "weights.pt"
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
INPUT_KEY = "input"  # the input contract beside the spec's fields in a spec.json


@dataclass(frozen=True)
class Exported:
    """What was written; ``weights`` is None when the trial saved none (``note`` says why).

    ``weights_from`` says whose weights ``weights`` are (a final training or the searched
    trial); ``result`` is the final's ``result.json``, written only when a final was exported.
    """

    spec: Path
    trial: Path
    weights: Path | None
    note: str | None = None
    weights_from: str | None = None
    result: Path | None = None
    evaluable: bool = False  # the weights came with an input contract: `search evaluate` runs


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


def load_final(storage: optuna.storages.BaseStorage, study_name: str) -> optuna.Study | None:
    """The companion study of final trainings of ``study_name``, when ``storage`` holds one."""
    name = schema.final_study_name(study_name)
    if name not in study_names(storage):
        return None
    return optuna.load_study(study_name=name, storage=storage)


def find_final(final: optuna.Study, number: int) -> FrozenTrial | None:
    """The final training of searched trial ``number`` to export: COMPLETE, its weights
    directory still holding ``weights.pt`` and ``spec.json``; repeat 0 first, then the lowest
    repeat (then the lowest trial number). None when there is none."""
    found = []
    for trial in final.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        weights_dir = attrs.get(schema.WEIGHTS_DIR)
        if attrs.get(schema.SOURCE_TRIAL) != number or not isinstance(weights_dir, str):
            continue
        if (Path(weights_dir) / WEIGHTS_FILE).is_file() and (
            Path(weights_dir) / SPEC_FILE
        ).is_file():
            repeat = attrs.get(schema.REPEAT)
            found.append((repeat if isinstance(repeat, int) else math.inf, trial.number, trial))
    return min(found, key=lambda item: item[:2])[2] if found else None


def final_result(final: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """A final training's result: the test figures from its attrs and values, and which final
    it is (study, trial, repeat, the searched trial it retrains)."""
    attrs = trial.user_attrs
    return {
        "final_study": final.study_name,
        "final_trial": trial.number,
        schema.SOURCE_TRIAL: attrs.get(schema.SOURCE_TRIAL),
        schema.REPEAT: attrs.get(schema.REPEAT),
        schema.FINAL_METRIC_NAMES[0]: trial.values[0] if trial.values else None,
        schema.TEST_CORRECT: attrs.get(schema.TEST_CORRECT),
        schema.TEST_IMAGES: attrs.get(schema.TEST_IMAGES),
        schema.TRAIN_IMAGES: attrs.get(schema.TRAIN_IMAGES),
        schema.WEIGHTS_DIR: attrs.get(schema.WEIGHTS_DIR),
    }


def describe_final(result: dict[str, Any]) -> str:
    """One phrase naming an exported final and its test accuracy."""
    accuracy = result.get(schema.FINAL_METRIC_NAMES[0])
    shown = f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else "unknown"
    correct, images = result.get(schema.TEST_CORRECT), result.get(schema.TEST_IMAGES)
    if correct is not None and images is not None:
        shown += f" ({correct}/{images} test images)"
    return (
        f"the final training of trial {result[schema.SOURCE_TRIAL]}: "
        f"{result['final_study']} trial {result['final_trial']}, repeat {result[schema.REPEAT]}, "
        f"test accuracy {shown}"
    )


def export_trial(
    study: optuna.Study, number: int, out_dir: Path, final: optuna.Study | None = None
) -> Exported:
    """Write spec.json, trial.json and the weights of trial ``number``: those of its final
    training in ``final`` (``S:final``) when there is one to export (``find_final``), with its
    result.json; otherwise the trial's own weights.pt, when it saved one."""
    trial = find_trial(study, number)
    record = trial_record(trial)
    document = trial_document(study, trial)
    chosen = find_final(final, number) if final is not None else None
    result: dict[str, Any] | None = None
    if chosen is not None and final is not None:
        source = Path(chosen.user_attrs[schema.WEIGHTS_DIR])
        spec_document = _spec_document(source / SPEC_FILE)
        result = {**_json_object(source / RESULT_FILE), **final_result(final, chosen)}
        document["final"] = trial_document(final, chosen)
        weights_dir: str | None = str(source)
        weights_from = describe_final(result)
    elif record.spec is not None:
        weights_dir = record.weights_dir
        spec_document = record.spec.to_dict()
        contract = _input_of(weights_dir)
        if contract is not None:
            spec_document[INPUT_KEY] = contract
        weights_from = f"the searched trial's own weights (trial {number}, no final training)"
    else:
        raise UserError(
            f"trial {number} of study {study.study_name!r} stored no valid spec "
            f"(status {record.status}); export another trial"
        )
    result_path = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        spec_path = out_dir / SPEC_FILE
        spec_path.write_text(json.dumps(spec_document, sort_keys=True) + "\n")
        trial_path = out_dir / "trial.json"
        trial_path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
        if result is not None:
            result_path = out_dir / RESULT_FILE
            result_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write to --out {out_dir}: {exc.strerror}") from exc
    weights, note = _copy_weights(weights_dir, out_dir)
    return Exported(
        spec_path,
        trial_path,
        weights,
        note,
        weights_from if weights else None,
        result_path,
        evaluable=weights is not None and isinstance(spec_document.get(INPUT_KEY), dict),
    )


def _json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when the file is missing or holds something else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _spec_document(path: Path) -> dict[str, Any]:
    """A saved ``spec.json`` as written (spec fields and input contract), checked to be a spec."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    try:
        ArchSpec.from_json(text)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc
    return dict(json.loads(text))


def _input_of(weights_dir: str | None) -> dict[str, Any] | None:
    """The input contract saved beside a trial's weights, if its spec.json has one."""
    if weights_dir is None:
        return None
    contract = _json_object(Path(weights_dir) / SPEC_FILE).get(INPUT_KEY)
    return contract if isinstance(contract, dict) else None


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
