"""How one trial uses its device: bf16 autocast, memory format, determinism, compile, threads.

``plan_speed`` turns a :class:`~trainers.loop.TrainConfig` into the settings one trial runs with;
``None`` in the config means "the measured default for this device". Every lever was measured
side by side on the quick preset's trial (``benchmarks/cpu_trial_speed.py``) and on the paper
preset (``benchmarks/trial_throughput.py``); the figures are in ``benchmarks/RESULTS.md``.

- bf16 autocast: on CUDA always (bf16 needs no loss scaling, unlike fp16; Micikevicius et al.
  2018 for mixed precision, the PyTorch AMP notes for bf16), and on a CPU only where it has
  native bf16 dot products (AVX512-BF16 or AMX, e.g. AMD Zen 4, Intel Sapphire Rapids): oneDNN
  then runs the convolutions in bf16 with float32 accumulation. Elsewhere bf16 is emulated and
  slower, so the CPU stays in float32.
- channels_last (NHWC): on CUDA (cuDNN's NHWC kernels are the fast ones for depthwise and 1x1
  convs under bf16); not on the CPU, where it measured slower for these small 28-64 px networks
  (oneDNN reorders between the layouts around ops that have no NHWC kernel).
- determinism: ``torch.use_deterministic_algorithms`` on the CPU (same seed, same accuracy), but
  without filling new memory with NaN (``torch.utils.deterministic.fill_uninitialized_memory``,
  done in ``trainers.device.reproducible``): the fill only catches reads of uninitialised memory,
  changes no result, and cost about a quarter of a CPU trial. CUDA autotunes cuDNN instead.
- torch.compile: only when the trial trains enough images to pay its compile time back
  (``COMPILE_MIN_IMAGES``; explicit ``compile=True`` always compiles, ``False`` never). Compiling
  the network's forward and backward takes about a minute on a GPU host and several on a 2-core
  CPU, while it saves about 10 % of a step (reference: 13,305 -> 14,781 img/s on an H100), so a
  short search trial never wins it back; only long runs (`search train` for hundreds of epochs)
  do. Each trial is a different architecture, so nothing compiled can be reused between trials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainers.device import cpu_threads, reproducible

if TYPE_CHECKING:
    from trainers.loop import TrainConfig

# images trained before torch.compile pays for itself: compile time (~60 s) x eager throughput
# (~13,000 img/s) / the fraction of step time saved (~0.1); see the module docstring
COMPILE_MIN_IMAGES = 8_000_000
# the CPU defaults, from the quick preset's trial on 2 cores (benchmarks/RESULTS.md)
CPU_CHANNELS_LAST = True  # 1.24-1.40x on its own
CPU_BF16 = False  # +13 % at 1 thread, -8 % at 2 threads, and with channels_last -22 % at 2


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@dataclass(frozen=True)
class SpeedPlan:
    """The settings one trial runs with (see the module docstring for why each is chosen)."""

    device: torch.device
    bf16: bool
    channels_last: bool
    deterministic: bool
    compile: bool
    threads: int | None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Determinism and CPU threads for the trial; the caller's settings come back after."""
        with reproducible(self.device, self.deterministic), cpu_threads(self.threads):
            yield

    def prepare(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(model, runner): the model in the chosen memory format (its state dict is what gets
        saved) and what the loop calls, the compiled wrapper when compiling."""
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        runner: nn.Module = torch.compile(model) if self.compile else model  # type: ignore[assignment]
        return model, runner

    def describe(self) -> str:
        """One line for logs and benchmark tables, e.g. "bf16 NCHW deterministic 2 threads"."""
        parts = [
            "bf16" if self.bf16 else "fp32",
            "channels_last" if self.channels_last else "NCHW",
            "deterministic" if self.deterministic else "nondeterministic",
        ]
        if self.compile:
            parts.append("compiled")
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'' if self.threads == 1 else 's'}")
        return " ".join(parts)


def plan_speed(device: torch.device, config: TrainConfig, train_images: int) -> SpeedPlan:
    """The device's defaults, overridden by what ``config`` sets (``None`` = default)."""
    cuda = device.type == "cuda"
    bf16 = cuda or (CPU_BF16 and cpu_has_native_bf16())
    if config.amp is not None:
        bf16 = config.amp
    channels_last = cuda or CPU_CHANNELS_LAST
    if config.channels_last is not None:
        channels_last = config.channels_last
    deterministic = (not cuda) if config.deterministic is None else config.deterministic
    compile_ = config.compile
    if compile_ is None:
        compile_ = cuda and train_images * config.epochs >= COMPILE_MIN_IMAGES
    return SpeedPlan(device, bf16, channels_last, deterministic, compile_, config.threads)
