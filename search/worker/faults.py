"""A trial's failure, in the worker: its kind and one line that says why (the traceback stays in
the log).

The kind and the reason come from the exception's type: a trainer fault (a
:class:`~common.errors.TrialError`) gives its own ``kind`` and message; the CUDA or host
allocator running out of memory gives :attr:`~common.errors.FaultKind.MEMORY` with
"out of memory: ..."; anything else gives :attr:`~common.errors.FaultKind.ERROR` with
"ExceptionType: message". The trainable raises :class:`~common.errors.TrialFailed` with both.
"""

from __future__ import annotations

from common.errors import Fault, FaultKind, TrialError

MAX_REASON = 300


def one_line(text: str, limit: int = MAX_REASON) -> str:
    return " ".join(str(text).split())[:limit]


def failure_fault(exc: BaseException) -> Fault:
    """The kind and the one-line reason of an exception of the training."""
    import torch

    message = one_line(str(exc))
    if isinstance(exc, TrialError):
        return Fault(exc.kind, message)
    # the host allocator raises a plain RuntimeError ("DefaultCPUAllocator: ... out of memory")
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in message.lower():
        return Fault(FaultKind.MEMORY, f"out of memory: {message}")
    return Fault(
        FaultKind.ERROR, f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    )


def failure_reason(exc: BaseException) -> str:
    """Just the reason of :func:`failure_fault`."""
    return failure_fault(exc).reason
