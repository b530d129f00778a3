"""A trial's failure, in the worker: one line that says why (the traceback stays in the log).

Any exception of the training becomes :class:`TrialFailed` with a one-line reason; a trainer
exception whose message already starts with a reason prefix ("diverged:", "timeout:",
"memory:", "out of memory:") keeps its message as is.
"""

from __future__ import annotations

# reasons a trainer (trainers/errors.py) or this module already phrases itself
REASON_PREFIXES = ("diverged:", "timeout:", "memory:", "out of memory:", "worker died:")
MAX_REASON = 300
# faulthandler's names for the fatal signals (CPython Python/faulthandler.c)


class TrialFailed(Exception):
    """Raised by the trainable with the one-line reason (one ``str`` argument: picklable)."""


def one_line(text: str, limit: int = MAX_REASON) -> str:
    return " ".join(str(text).split())[:limit]


def failure_reason(exc: BaseException) -> str:
    """One line for an exception of the training: prefixed messages as is, "out of memory: ..."
    for CUDA / CPU allocator OOM, else "ExceptionType: message"."""
    import torch

    message = one_line(str(exc))
    if message.startswith(REASON_PREFIXES):
        return message
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in message.lower():
        return f"out of memory: {message}"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
