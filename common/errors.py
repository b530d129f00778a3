"""The project's exceptions, and the typed fault protocol between a trial's worker and the driver.

- :class:`UserError`: a mistake a user can fix. Every message names the bad value and says what
  to do instead; the CLI prints it as a single line on stderr and exits with code 2
  (see ``search.cli``).
- :class:`TrialError` and its subclasses: the faults the trainer itself detects. Each message is
  one line that a search stores as the trial's failure reason as it is; it names settings
  (``lr``), not command-line flags, because the trainer is also used without the CLI.
- :class:`FaultKind` says what kind of fault ended a trial. The search decides by kind, never by
  the wording of a reason: only :attr:`FaultKind.INFEASIBLE_MEMORY` is stored PRUNED
  ("infeasible"), every other kind is FAIL.
- :class:`TrialFailed` carries a fault's kind and one-line reason out of a Ray worker;
  :class:`Fault` is the same pair as a plain value on the driver's side.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from common.units import format_bytes

# the note TrialFailed adds to its traceback: the kind survives where only Ray's error text does
KIND_NOTE = "effnas fault kind: "


class EffnasError(Exception):
    """The base of every exception this project raises on purpose."""


class UserError(EffnasError):
    """A bad value from the user (flag, config file, storage URL, data path)."""


class FaultKind(enum.StrEnum):
    """Why a trial ended early, as a value that pickles as a plain string."""

    MEMORY = "memory"
    """Ran out of memory while training: the CUDA or host allocator, or Ray's memory monitor."""
    INFEASIBLE_MEMORY = "infeasible-memory"
    """The memory plan says not even micro-batch 1 fits: the candidate is infeasible."""
    TIMEOUT = "timeout"
    """Ran past the trial's time limit (the trainer's own, or the driver's kill)."""
    DIVERGED = "diverged"
    """The training loss became NaN or infinite."""
    WORKER_DIED = "worker-died"
    """The trial's worker process vanished (a signal, ``ray.kill``, the kernel's OOM killer)."""
    NODE_DIED = "node-died"
    """The Ray node the trial ran on was lost (its raylet died, or its host is unreachable)."""
    ERROR = "error"
    """Any other exception."""


@dataclass(frozen=True)
class Fault:
    """A trial's fault as the driver stores it: its kind and its one-line reason."""

    kind: FaultKind
    reason: str


class TrialError(EffnasError):
    """A trial that cannot train to the end; the search records it and goes on."""

    kind: ClassVar[FaultKind] = FaultKind.ERROR


class InsufficientMemory(TrialError):
    """Not even micro-batch 1 fits the memory the trial may use; raised before training."""

    kind = FaultKind.INFEASIBLE_MEMORY

    def __init__(self, needed_bytes: int, available_bytes: int, detail: str = "") -> None:
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        self.detail = detail
        super().__init__(
            f"memory: needs {format_bytes(needed_bytes)} at micro-batch 1, "
            f"{format_bytes(available_bytes)} available{detail}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.needed_bytes, self.available_bytes, self.detail), self.__dict__)


class Diverged(TrialError):
    """The training loss became NaN or infinite."""

    kind = FaultKind.DIVERGED

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        self.epoch, self.step, self.loss = epoch, step, loss
        value = "nan" if loss != loss else "inf"
        super().__init__(
            f"diverged: loss is {value} at epoch {epoch} step {step}; "
            "a lower learning rate (lr) or a smaller network may train"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.epoch, self.step, self.loss), self.__dict__)


class TrialTimeout(TrialError):
    """The trial ran past ``TrainConfig.time_limit_s`` (checked between steps)."""

    kind = FaultKind.TIMEOUT

    def __init__(self, limit_s: float, elapsed_s: float, epoch: int, step: int) -> None:
        self.limit_s, self.elapsed_s, self.epoch, self.step = limit_s, elapsed_s, epoch, step
        super().__init__(
            f"timeout: {elapsed_s:.1f} s exceeds the trial limit of {limit_s:g} s "
            f"(at epoch {epoch} step {step})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.limit_s, self.elapsed_s, self.epoch, self.step), self.__dict__)


class TrialFailed(EffnasError):
    """Raised by a trial's worker with the fault's one-line reason and kind; ``str()`` is the
    reason. Ray pickles it to the driver; its args are plain strings, so it unpickles anywhere
    this module imports. A note on its traceback names the kind (:data:`KIND_NOTE`), so the kind
    is recoverable even from Ray's error text alone."""

    def __init__(self, reason: str, kind: FaultKind | str = FaultKind.ERROR) -> None:
        self.reason = reason
        self.kind = FaultKind(kind)
        super().__init__(reason, self.kind.value)
        self.add_note(f"{KIND_NOTE}{self.kind.value}")

    def __str__(self) -> str:
        return self.reason

    @property
    def fault(self) -> Fault:
        return Fault(self.kind, self.reason)
