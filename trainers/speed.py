"""How one trial uses its device: bf16 autocast, memory format, determinism, compile, threads.

``plan_speed`` turns a :class:`~trainers.loop.TrainConfig` into the settings one trial runs with;
``None`` in the config means "the measured default for this device". The CPU levers were measured
side by side on the quick preset's trial (``benchmarks/cpu_trial_speed.py``); the CUDA ones follow
reference figures for plain PyTorch on an H100, which ``benchmarks/trial_throughput.py``
re-measures. Every figure behind the choices below is in ``benchmarks/RESULTS.md``.

- bf16 autocast (no loss scaling needed, unlike fp16; the PyTorch AMP notes): on CUDA, where it
  is the largest single gain. Not by default on the CPU, even one with AVX512-BF16 (oneDNN then
  runs the convolutions in bf16): on top of channels_last it was within run-to-run noise,
  slower in one run and faster in another (the conversions around every op cost about what the
  narrower arithmetic saves at batch 16), too little to give up float32's accuracy and
  bit-for-bit reproducibility. ``amp=True`` turns it on anyway.
- channels_last (NHWC): on CUDA (cuDNN's fast kernels for depthwise and 1x1 convs under bf16)
  and on the CPU, where oneDNN's NHWC convolutions and batch norm make it the largest single
  gain for the quick trial.
- determinism: ``torch.use_deterministic_algorithms`` stays on for CPU trials (same seed, same
  thread count, same accuracy): it measured no slower than off. Its fill of every new tensor with
  NaN (a guard against reading uninitialised memory, which changes no result) is switched off in
  ``trainers.device.reproducible``. CUDA autotunes cuDNN instead and is not bit-reproducible.
- torch.compile: only when the trial trains enough images to pay its compile time back
  (``COMPILE_MIN_IMAGES``; explicit ``compile=True`` always compiles, ``False`` never). On a GPU
  it saves a modest fraction of a step against a long compile of the forward and backward
  graphs, and every trial is a new architecture, so no compiled graph is reused; a search trial
  never wins it back, only long `search train` runs on a GPU can. On the CPU compiling took
  longer than the whole quick trial, so the CPU never compiles by default.
- loss checks: reading the loss on CUDA waits for the GPU, so a CUDA trial reads its running
  loss sum every ``CUDA_LOSS_CHECK_EVERY`` steps (``trainers.steps.Watchdog``); the CPU every step.
- threads: ``TrainConfig.threads``; a search trial gets as many as Ray gave it CPUs
  (``search.driver.overhead``). OpenMP's waiting policy is libgomp's default (spin, then sleep):
  ``OMP_WAIT_POLICY=PASSIVE`` made the quick preset's search much slower on quiet cores (a step
  runs about a thousand short parallel regions and a sleeping thread is woken for each); on
  cores busy with other jobs it is the better choice, and a value the user exports reaches Ray's
  workers.

Each default above is chosen from ``device.type`` here, once, and the loop reads only the plan,
so a plan made for CUDA can run on the CPU (``SpeedPlan.on``): the default tests train with a
CUDA trial's settings (bf16 autocast, channels_last, no determinism, the loss-check cadence,
torch.compile) on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainers.device import cpu_threads, reproducible

if TYPE_CHECKING:
    from trainers.loop import TrainConfig

# images trained before torch.compile pays for itself: compile time x eager throughput / the
# fraction of step time saved, with the H100 reference figures of benchmarks/RESULTS.md
COMPILE_MIN_IMAGES = 8_000_000
# on CUDA reading the loss waits for the GPU: the running loss is checked every this many steps
CUDA_LOSS_CHECK_EVERY = 25
# the CPU defaults, from the quick preset's trial on 2 cores (benchmarks/RESULTS.md)
CPU_CHANNELS_LAST = True
CPU_BF16 = False


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
    loss_check_every: int = 1  # steps between reads of the running loss (trainers.steps)

    def on(self, device: torch.device) -> SpeedPlan:
        """The same settings on another device: a CUDA trial's plan run on the CPU, which is how
        the default tests reach the code only a GPU's defaults choose."""
        return dataclasses.replace(self, device=device)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Determinism and CPU threads for the trial; the caller's settings come back after."""
        with reproducible(self.device, self.deterministic), cpu_threads(self.threads):
            yield

    def prepare(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(model, runner): the model in the chosen memory format (its state dict is what gets
        saved) and what the loop calls, the compiled wrapper when compiling."""
        if self.channels_last:
            to_channels_last(model)
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


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store every 4-D weight in channels_last (NHWC), in place.

    ``Module.to(memory_format=torch.channels_last)`` converts 4-D and 5-D tensors alike and fails
    on CondConv's 5-D expert bank (experts, out, in, k, k), which has no 2-D memory format; the
    bank is mixed into 4-D per-sample kernels in every forward anyway, so it stays as it is.
    """
    for parameter in model.parameters():
        if parameter.dim() == 4:
            parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
    return model


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
    loss_check_every = CUDA_LOSS_CHECK_EVERY if cuda else 1
    return SpeedPlan(
        device, bf16, channels_last, deterministic, compile_, config.threads, loss_check_every
    )
