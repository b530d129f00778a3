"""Device selection, reproducibility switches and memory/clock helpers for CPU and CUDA.

Everything device-specific in the trainer goes through here, so the loop reads the same on both:
which settings a trial uses on which device is decided in ``trainers.speed``. Deterministic
algorithms follow PyTorch's reproducibility notes
(https://pytorch.org/docs/stable/notes/randomness.html).
``available_memory_bytes`` says how much memory a trial may plan for (``space.memory``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from common.errors import UserError


def resolve_device(name: str) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' (CUDA when available) -> a usable ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise UserError(
            f"unknown device {name!r}; choose device from cpu, cuda, cuda:N or auto"
        ) from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(
            f"device {name!r} is not supported; choose device from cpu, cuda, cuda:N or auto"
        )
    if not torch.cuda.is_available():
        raise UserError(
            f"device {name} was requested but CUDA is not available (torch {torch.__version__}); "
            "use device cpu or auto"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"device {name}: only {torch.cuda.device_count()} CUDA device(s); "
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


# Fractions of the measured figure a trial plans for; the rest is the safety margin.
# CPU: 35 % of what is available. glibc keeps freed heap memory, so a trial worker's peak RSS
# runs above its planned bytes (most at small batches, runtime included), and the host also runs
# the driver, Ray's daemons and object store and the OS's page cache; a CPU trial gains next to
# nothing from micro-batches past a few dozen images, so the margin costs little speed. The
# headline search (README, "Search, storage, resume") must stay under 12 GB on a 24 GB host: a
# 50 % share overshot that, 35 % does not (the figures are in benchmarks/RESULTS.md).
# CUDA: cuDNN workspaces and the caching allocator's rounding are not in the estimate.
CPU_PLANNED_FRACTION = 0.35
CUDA_PLANNED_FRACTION = 0.9
_NO_LIMIT = 1 << 60  # cgroup v1 writes ~2**63 for "no limit"


def available_memory_bytes(
    device: torch.device | str, share: float = 1.0, cuda_memory: tuple[int, int] | None = None
) -> int:
    """Bytes a trial on ``device`` may plan for, when ``share`` of the device is its own (e.g.
    ``1 / trials`` when trials run side by side).

    CUDA: the device's total memory times ``share`` (an equal, start-order-independent share for
    trials that share the GPU), capped at what is free right now (other processes, and this
    process's CUDA context, hold the rest), times ``CUDA_PLANNED_FRACTION``. ``cuda_memory`` is
    ``(free, total)`` bytes as ``torch.cuda.mem_get_info`` returns them (None: asks the device),
    so the CUDA plan can be computed, and tested, for a given figure without a GPU.
    CPU: ``MemAvailable`` of ``/proc/meminfo`` (memory the kernel can hand out without swapping,
    page cache included), or the cgroup memory limit less its usage when that is lower (a
    container's limit is what its OOM killer enforces), times ``share`` and
    ``CPU_PLANNED_FRACTION``. Without ``/proc`` (macOS), the physical memory.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share!r} must lie in (0, 1]")
    device = torch.device(device)
    if device.type == "cuda":
        free, total = cuda_memory or torch.cuda.mem_get_info(device)
        return planned_bytes(device, min(total * share, free))
    return planned_bytes(device, _host_available_bytes() * share)


def planned_bytes(device: torch.device | str, memory: float) -> int:
    """What a trial may plan for out of ``memory`` bytes of ``device``: the safety margin
    (``CPU_PLANNED_FRACTION`` / ``CUDA_PLANNED_FRACTION``) taken off."""
    cuda = torch.device(device).type == "cuda"
    return int(memory * (CUDA_PLANNED_FRACTION if cuda else CPU_PLANNED_FRACTION))


def _host_available_bytes(
    meminfo: Path = Path("/proc/meminfo"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
) -> int:
    try:
        available = meminfo_available(meminfo.read_text())
    except OSError:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    headroom = cgroup_headroom(proc_cgroup, cgroup_root)
    return available if headroom is None else min(available, headroom)


def meminfo_available(text: str) -> int:
    """``MemAvailable`` (kB) of a ``/proc/meminfo`` text, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError("no MemAvailable in /proc/meminfo")


def cgroup_headroom(proc_cgroup: Path, cgroup_root: Path) -> int | None:
    """The least ``limit - usage + inactive file cache`` over this process's memory cgroup and
    its ancestors (v2 ``memory.max``/``memory.current``, v1 ``memory.limit_in_bytes``/
    ``memory.usage_in_bytes``); None without a limit. Inactive file cache is reclaimable."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    candidates: list[tuple[Path, str, str]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2 unified hierarchy
            candidates.append((cgroup_root / path.lstrip("/"), "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):
            directory = cgroup_root / "memory" / path.lstrip("/")
            candidates.append((directory, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    best: int | None = None
    for directory, limit_name, usage_name in candidates:
        for level in (directory, *directory.parents):
            if not level.is_relative_to(cgroup_root):
                break
            headroom = _headroom(level, limit_name, usage_name)
            if headroom is not None:
                best = headroom if best is None else min(best, headroom)
    return best


def _headroom(directory: Path, limit_name: str, usage_name: str) -> int | None:
    try:
        raw = (directory / limit_name).read_text().strip()
        if raw == "max" or int(raw) >= _NO_LIMIT:
            return None
        usage = int((directory / usage_name).read_text().strip())
    except (OSError, ValueError):
        return None
    inactive = 0
    with contextlib.suppress(OSError, ValueError):
        for line in (directory / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                inactive = int(value)
    return max(0, int(raw) - usage + inactive)
