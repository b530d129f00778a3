"""Evaluate a trained network on a whole split, exactly as it was fed in training, and count.

The one evaluation of a test split: ``search train --test`` runs it on the weights it has just
saved, ``search evaluate`` on weights saved earlier (``search final`` likewise), so the figure a
training prints and a later evaluation of the same files agree to the image. The input is the
saved input contract's transform (``trainers.augment.InputContract``: the trainer's own
resize, centre crop and normalisation statistics) and the pass is the trainer's
(``trainers.steps.count_correct``), in float32 with deterministic algorithms and a fixed batch
size, so evaluating twice on one device gives the same count.

A saved network is a directory written by ``trainers.loop.save_trial``: ``spec.json`` (the spec
and its ``"input"`` contract), ``weights.pt`` (the state dict) and ``result.json``. Every problem
with those files, or a data set that does not fit them, is one ``UserError`` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.errors import UserError
from space import ArchSpec, build_model
from trainers.augment import InputContract
from trainers.data import ImageData
from trainers.device import reproducible
from trainers.steps import count_correct

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.pt"
RESULT_FILE = "result.json"
# images per forward pass; fixed, so that every evaluation of a network batches it alike
EVAL_BATCH = 256


@dataclass(frozen=True)
class Evaluation:
    """``correct`` of ``images`` classified right (top-1) and the mean cross-entropy ``loss``."""

    correct: int
    images: int
    loss: float

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.images)

    def to_dict(self, prefix: str = "test_") -> dict[str, Any]:
        """The record's keys: ``test_accuracy``, ``test_correct``, ``test_images``."""
        return {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}correct": self.correct,
            f"{prefix}images": self.images,
        }


@dataclass(frozen=True)
class SavedNetwork:
    """A saved directory read back: the spec, its input contract and the model with its weights
    (on the CPU, in evaluation-ready form)."""

    directory: Path
    spec: ArchSpec
    contract: InputContract
    model: nn.Module


def evaluate_on(
    model: nn.Module,
    data: ImageData,
    contract: InputContract,
    device: torch.device,
    batch_size: int = EVAL_BATCH,
) -> Evaluation:
    """Top-1 count of ``model`` on every image of ``data``, fed through ``contract``'s transform.

    The data must be what the contract was written for (its class count and stored channels);
    otherwise a ``UserError``. The model is moved to ``device`` and left in training mode.
    """
    if data.classes != contract.classes:
        raise UserError(
            f"{data.name} has {data.classes} classes but the network was built for "
            f"classes={contract.classes}; evaluate it on the data set it was trained on"
            + (f" ({contract.dataset})" if contract.dataset else "")
        )
    if data.images.shape[1] != contract.channels:
        raise UserError(
            f"{data.name} has {data.images.shape[1]}-channel images but the network's input "
            f"statistics are for {contract.channels}; evaluate it on the data set it was "
            "trained on"
        )
    model = model.to(device)
    with reproducible(device, True):
        correct, loss = count_correct(
            model,
            data.images.to(device),
            data.labels.to(device),
            contract.transform(device),
            batch_size,
            amp=False,
        )
    return Evaluation(correct=correct, images=len(data), loss=loss)


def load_saved(directory: Path, flag: str = "weights directory") -> SavedNetwork:
    """Read ``spec.json`` and ``weights.pt`` of a saved directory and build the model.

    ``flag`` is what messages call the directory (the CLI passes ``--weights``). A missing
    directory or file, a spec file without an input contract, and weights that do not fit the
    spec are each one ``UserError``.
    """
    directory = Path(directory).expanduser()
    shown = f"{flag} {str(directory)!r}"
    if not directory.is_dir():
        raise UserError(
            f"{shown} is not a directory; pass a directory written by `search train --save`, "
            "`search final` or `search export`"
        )
    spec_path, weights_path = directory / SPEC_FILE, directory / WEIGHTS_FILE
    for path in (spec_path, weights_path):
        if not path.is_file():
            raise UserError(f"{shown} has no {path.name}; it must hold spec.json and weights.pt")
    try:
        text = spec_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {spec_path}: {exc}") from exc
    try:
        spec = ArchSpec.from_json(text)
    except UserError as exc:
        raise UserError(f"{spec_path}: {exc}") from exc
    document = json.loads(text)  # an object: from_json has checked it
    if "input" not in document:
        raise UserError(
            f'{spec_path} has no input contract ("input"), so the normalisation the network '
            "was trained with is unknown; retrain it with `search train --save`"
        )
    contract = InputContract.from_dict(document["input"], str(spec_path))
    if contract.classes != spec.classes:
        raise UserError(
            f"{spec_path}: the input contract has {contract.classes} classes, "
            f"the spec {spec.classes}"
        )
    model = build_model(spec)
    _load_weights(model, weights_path, spec_path)
    return SavedNetwork(directory, spec, contract, model)


def _load_weights(model: nn.Module, weights_path: Path, spec_path: Path) -> None:
    """The state dict of ``weights_path`` into ``model``; one line when they do not match."""
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure means the same: not a saved state dict
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{weights_path} is not a saved state dict ({reason})") from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UserError(f"{weights_path} is not a saved state dict of named tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or reshaped:
        example = (
            f"{reshaped[0]!r} is {list(state[reshaped[0]].shape)}, the spec builds "
            f"{list(expected[reshaped[0]].shape)}"
            if reshaped
            else f"{(missing or unexpected)[0]!r} is {'missing' if missing else 'unexpected'}"
        )
        raise UserError(
            f"{weights_path} does not match {spec_path}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected and {len(reshaped)} differently shaped tensors "
            f"(e.g. {example}); keep the weights with the spec.json they were saved with"
        )
    model.load_state_dict(state)


def evaluate_saved(
    directory: Path, data: ImageData, device: torch.device, flag: str = "weights directory"
) -> tuple[SavedNetwork, Evaluation]:
    """``load_saved`` then ``evaluate_on`` every image of ``data`` (a test split)."""
    saved = load_saved(directory, flag)
    return saved, evaluate_on(saved.model, data, saved.contract, device)


def record_evaluation(directory: Path, evaluation: Evaluation) -> None:
    """Add the evaluation's ``test_*`` figures to the directory's ``result.json``."""
    path = Path(directory) / RESULT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        record = record if isinstance(record, dict) else {}
        record.update(evaluation.to_dict())
        path.write_text(json.dumps(record, indent=2) + "\n")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot update {path}: {exc}") from exc
