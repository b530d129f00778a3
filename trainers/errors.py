"""The trial faults the trainer itself detects, as exceptions a searcher can map to a reason.

Each message is one line that starts with the reason's keyword ("memory:", "diverged:",
"timeout:"), so a caller may store ``str(exc)`` as the trial's failure reason as it is. The
fields carry the same facts for callers that want them. CUDA running out of memory despite the
plan is not wrapped: it stays ``torch.OutOfMemoryError``.
"""

from __future__ import annotations


class TrialError(Exception):
    """A trial that cannot train to the end; the search records it and goes on."""


class InsufficientMemory(TrialError):
    """Not even micro-batch 1 fits the memory the trial may use; raised before training."""

    def __init__(self, needed_bytes: int, available_bytes: int, detail: str = "") -> None:
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        super().__init__(
            f"memory: needs {format_bytes(needed_bytes)} at micro-batch 1, "
            f"{format_bytes(available_bytes)} available{detail}"
        )


class Diverged(TrialError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        self.epoch, self.step, self.loss = epoch, step, loss
        kind = "nan" if loss != loss else "inf"
        super().__init__(
            f"diverged: loss is {kind} at epoch {epoch} step {step}; "
            "a lower --lr or a smaller network may train"
        )


class TrialTimeout(TrialError):
    """The trial ran past ``TrainConfig.time_limit_s`` (checked between steps)."""

    def __init__(self, limit_s: float, elapsed_s: float, epoch: int, step: int) -> None:
        self.limit_s, self.elapsed_s, self.epoch, self.step = limit_s, elapsed_s, epoch, step
        super().__init__(
            f"timeout: {elapsed_s:.1f} s exceeds the trial limit of {limit_s:g} s "
            f"(at epoch {epoch} step {step})"
        )


def format_bytes(count: float) -> str:
    """``1536 -> '1.5 KiB'``: binary units, one decimal."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
