"""trainers.speed picks the intended settings per device; the CPU fast path stays deterministic."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from space import ArchSpec, build_model
from tests.trainers.random_data import random_data
from trainers import ImageData, TrainConfig, train_trial
from trainers.device import autocast, reproducible
from trainers.speed import (
    COMPILE_MIN_IMAGES,
    CPU_BF16,
    CPU_CHANNELS_LAST,
    cpu_has_native_bf16,
    plan_speed,
    to_channels_last,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU


def test_cpu_defaults_are_the_measured_ones() -> None:
    plan = plan_speed(CPU, TrainConfig(threads=2), train_images=900)
    assert plan.bf16 == (CPU_BF16 and cpu_has_native_bf16())
    assert (plan.channels_last, plan.deterministic, plan.compile, plan.threads) == (
        CPU_CHANNELS_LAST,
        True,
        False,
        2,
    )
    assert plan_speed(CPU, TrainConfig(amp=True), 900).bf16  # asked for: on any CPU


def test_cuda_defaults_and_compile_only_when_it_pays_back() -> None:
    config = TrainConfig(epochs=2, compile=None)
    short = plan_speed(CUDA, config, train_images=54_000)
    assert (short.bf16, short.channels_last, short.deterministic, short.compile) == (
        True,
        True,
        False,
        False,
    )
    assert plan_speed(CUDA, config, train_images=COMPILE_MIN_IMAGES // 2).compile
    assert plan_speed(CUDA, TrainConfig(epochs=1000), 54_000).compile  # long: pays back
    assert not plan_speed(CUDA, TrainConfig(epochs=1000, compile=False), 54_000).compile
    assert plan_speed(CPU, TrainConfig(compile=True), 10).compile
    assert not plan_speed(CPU, TrainConfig(epochs=1000, compile=None), 10**6).compile


def test_explicit_settings_win() -> None:
    config = TrainConfig(amp=False, channels_last=False, deterministic=True)
    plan = plan_speed(CUDA, config, 54_000)
    assert (plan.bf16, plan.channels_last, plan.deterministic) == (False, False, True)
    assert plan.describe() == "fp32 NCHW deterministic"


def test_determinism_without_the_nan_fill_and_restored() -> None:
    before = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    with reproducible(CPU, deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    assert torch.utils.deterministic.fill_uninitialized_memory == before  # type: ignore[attr-defined]


def test_cpu_autocast_runs_bf16() -> None:
    layer = torch.nn.Linear(8, 4)
    with autocast(CPU, enabled=True):
        assert layer(torch.ones(2, 8)).dtype == torch.bfloat16
    with autocast(CPU, enabled=False):
        assert layer(torch.ones(2, 8)).dtype == torch.float32


def _data(count: int, seed: int) -> ImageData:
    return random_data(count, seed, channels=1, size=10)


@pytest.mark.parametrize("amp", [False, True])
def test_same_seed_same_losses_in_both_precisions(amp: bool) -> None:
    spec = ArchSpec(expansion=1, resolution=8, classes=3)
    config = TrainConfig(epochs=2, warmup_epochs=1, batch_size=8, threads=1, amp=amp)
    first = train_trial(spec, _data(32, 0), _data(8, 1), config)
    second = train_trial(spec, _data(32, 0), _data(8, 1), config)
    assert first.loss_per_epoch == second.loss_per_epoch
    assert 0.0 < first.setup_seconds < first.seconds
    cl = train_trial(
        spec, _data(32, 0), _data(8, 1), dataclasses.replace(config, channels_last=True)
    )
    assert cl.epochs_run == 2 and cl.loss_per_epoch[0] == pytest.approx(
        first.loss_per_epoch[0], rel=0.05
    )


@pytest.mark.parametrize("block", ["standard", "se", "condconv"])
def test_every_block_trains_in_channels_last(block: str) -> None:
    """channels_last is the CPU default, so it must hold for CondConv's 5-D expert bank too (the
    headline search failed its CondConv trials with "required rank 4 tensor" before)."""
    spec = ArchSpec(block=block, expansion=2, experts=2, resolution=8, classes=3)
    config = TrainConfig(epochs=1, warmup_epochs=0, batch_size=8, threads=1, channels_last=True)
    result = train_trial(spec, _data(16, 0), _data(8, 1), config)
    assert result.epochs_run == 1 and all(math.isfinite(v) for v in result.loss_per_epoch)
    model = build_model(spec)
    to_channels_last(model)
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    banks = [p for p in model.parameters() if p.dim() == 5]
    assert bool(banks) == (block == "condconv")
