"""`search export --onnx`: the exported network as ``model.onnx``, checked against PyTorch.

A found network otherwise leaves the project as ``spec.json`` + ``weights.pt``, which need this
package to rebuild. ``model.onnx`` runs with onnxruntime and numpy alone. It is written from the
exported directory itself (``trainers.evaluation.load_saved``: the spec, its input contract and
the weights), by PyTorch's ONNX exporter at opset ``space.onnx.OPSET`` with a fixed batch size
(``space.onnx`` says why). Its input is the network's evaluation input, the float32 images after
the contract's transform (resize, centre crop, normalise: the ``"input"`` entry of
``spec.json`` states it), its output the logits.

The check, at export: the first :data:`CHECK_IMAGES` images of the contract's data set's test
split go through the contract's transform, then through PyTorch and through onnxruntime in
batches of the export's size; every logit must agree within ``|onnx - torch| <= ATOL + RTOL *
|torch|`` and every image must get the same class. A file that fails is removed and the export
is one error line. ``onnx.json`` records the opset, the batch size, the images checked, the
largest difference, the largest logit and the tolerance.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from space.onnx import INPUT_NAME, OPSET, onnx_bytes, onnxruntime_session
from trainers.data import load_dataset
from trainers.evaluation import load_saved

ONNX_FILE = "model.onnx"
ONNX_RECORD = "onnx.json"
CHECK_IMAGES = 64
ATOL = 1e-4  # float32 logits of the same graph on two runtimes differ by rounding only
RTOL = 1e-4


@dataclass(frozen=True)
class OnnxExport:
    """What ``model.onnx`` is and how it compared with PyTorch at export."""

    path: str
    opset: int
    batch: int
    input_shape: tuple[int, ...]
    images: int  # real test images checked
    dataset: str
    max_abs_diff: float
    max_abs_logit: float  # the scale the difference is relative to
    tolerance: str
    same_class: int  # images both runtimes put in the same class

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "input_shape": list(self.input_shape)}


def export_onnx(
    directory: Path, batch: int = 1, data_dir: str | None = None, images: int = CHECK_IMAGES
) -> OnnxExport:
    """Write and check ``directory/model.onnx`` for the saved network in ``directory``."""
    saved = load_saved(directory, "--out")
    contract = saved.contract
    _train, test = load_dataset(contract.dataset, data_dir)
    count = min(images, len(test)) // batch * batch
    if count == 0:
        raise UserError(
            f"--onnx-batch {batch} is larger than the {len(test)} test images to check it on; "
            "pass a smaller --onnx-batch"
        )
    inputs = contract.transform(torch.device("cpu")).eval(test.images[:count])
    model = saved.model.to("cpu").eval()
    path = Path(directory) / ONNX_FILE
    try:
        path.write_bytes(onnx_bytes(model, inputs[:batch]))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from exc
    session = onnxruntime_session(str(path))
    exported, expected = [], []
    with torch.no_grad():
        for chunk in inputs.split(batch):
            exported.append(session.run(None, {INPUT_NAME: chunk.numpy()})[0])
            expected.append(model(chunk).numpy())
    onnx_logits, torch_logits = np.concatenate(exported), np.concatenate(expected)
    difference = np.abs(onnx_logits - torch_logits)
    same = int((onnx_logits.argmax(1) == torch_logits.argmax(1)).sum())
    tolerance = f"|onnx - torch| <= {ATOL:g} + {RTOL:g} * |torch|"
    if (difference > ATOL + RTOL * np.abs(torch_logits)).any() or same != count:
        path.unlink()
        raise UserError(
            f"the exported model.onnx disagrees with PyTorch on {contract.dataset} test images "
            f"(largest logit difference {difference.max():.3g}, {same}/{count} same class; "
            f"wanted {tolerance}); it was removed: keep spec.json and weights.pt"
        )
    record = OnnxExport(
        path=str(path),
        opset=OPSET,
        batch=batch,
        input_shape=tuple(inputs[:batch].shape),
        images=count,
        dataset=contract.dataset,
        max_abs_diff=float(difference.max()),
        max_abs_logit=float(np.abs(torch_logits).max()),
        tolerance=tolerance,
        same_class=same,
    )
    try:
        (Path(directory) / ONNX_RECORD).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write {directory}/{ONNX_RECORD}: {exc.strerror}") from exc
    return record
