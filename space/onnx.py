"""ONNX form of a built network: for onnxruntime timing and for a standalone export.

Exported with PyTorch's ONNX exporter (``torch.onnx.export(dynamo=True)``, which needs the
``onnx`` and ``onnxscript`` packages, the ``onnx`` extra) at opset :data:`OPSET`, input
``images`` (float32 ``N, 3, H, W``), output ``logits`` (``N, classes``). The batch size is fixed
at export: CondConv mixes one kernel per image and runs them as one grouped convolution whose
group count is the batch, which the exporter cannot leave symbolic, so one rule for every block
type. onnxruntime (``onnxruntime``, also in the extra) is needed only to run the file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import torch

from common.errors import UserError

OPSET = 18  # the opset torch's dynamo exporter targets natively (no version conversion)
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
INSTALL_HINT = "pip install 'effnas[onnx]' (onnx, onnxscript, onnxruntime)"


def check_onnx_packages(flag: str) -> None:
    """``UserError`` naming ``flag`` unless the exporter's packages and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        missing = f"{exc.name} is missing"
        raise UserError(f"{flag} needs the ONNX packages ({missing}): {INSTALL_HINT}") from exc


def onnx_bytes(model: torch.nn.Module, images: torch.Tensor) -> bytes:
    """The ONNX model of ``model`` in eval mode for inputs shaped like ``images`` (CPU)."""
    check_onnx_packages("ONNX export")
    model = model.to("cpu").eval()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            torch.inference_mode(False),
            torch.no_grad(),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (images.to("cpu"),),
                dynamo=True,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    return bytes(program.model_proto.SerializeToString())


def onnxruntime_session(model: bytes | str, device: str = "cpu", threads: int = 1) -> Any:
    """An onnxruntime ``InferenceSession`` for an ONNX model (bytes or a file path), its
    intra-op threads pinned to ``threads``; CUDA needs the onnxruntime-gpu build."""
    check_onnx_packages("onnxruntime")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if provider not in onnxruntime.get_available_providers():
        raise UserError(
            f"this onnxruntime has no {provider}; install onnxruntime-gpu or pass "
            "--latency-device cpu"
        )
    return onnxruntime.InferenceSession(model, sess_options=options, providers=[provider])
