"""Device selection, reproducibility switches and memory/clock helpers for CPU and CUDA.

Everything device-specific in the trainer goes through here, so the loop reads the same on both:
which settings a trial uses on which device is decided in ``trainers.speed``. Deterministic
algorithms follow PyTorch's reproducibility notes
(https://pytorch.org/docs/stable/notes/randomness.html).
"""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Iterator

import torch

from space import UserError


def resolve_device(name: str) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' (CUDA when available) -> a usable ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise UserError(
            f"unknown device {name!r}; pass --device cpu, cuda, cuda:N or auto"
        ) from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(
            f"device {name!r} is not supported; pass --device cpu, cuda, cuda:N or auto"
        )
    if not torch.cuda.is_available():
        raise UserError(
            f"--device {name} was requested but CUDA is not available (torch {torch.__version__}); "
            "pass --device cpu or --device auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: only {torch.cuda.device_count()} CUDA device(s); "
            f"pass cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
    return device


@contextlib.contextmanager
def reproducible(device: torch.device, deterministic: bool) -> Iterator[None]:
    """Deterministic algorithms while training (restored afterwards, so callers are unaffected);
    otherwise, on CUDA, cuDNN autotuning for speed.

    Deterministic mode normally also fills every new tensor with NaN (a guard against reading
    uninitialised memory); that fill changes no result and cost about a quarter of a CPU trial
    (``benchmarks/cpu_trial_speed.py``), so it is switched off here."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
    )
    try:
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark = saved[2]
        torch.utils.deterministic.fill_uninitialized_memory = saved[3]  # type: ignore[attr-defined]


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the duration (None: unchanged). Trials that share
    a machine (Ray runs several at once) should each take few threads: OpenMP workers that
    outnumber the cores spin against each other and can run ten times slower."""
    saved = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(saved)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA or the CPU when ``enabled`` (no loss scaling needed, unlike fp16);
    ``trainers.speed`` enables it on a CPU only where bf16 is native."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a clock read after it measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: the allocator's peak since the last reset. CPU: the process's peak resident set size
    (an upper bound for the trial; the OS reports no finer figure)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
