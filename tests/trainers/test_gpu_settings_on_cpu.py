"""A CUDA trial's settings, run on the CPU; then, marked ``gpu``, what only a real GPU can check.

``trainers.speed.plan_speed`` decides every device setting from ``device.type`` alone, so the plan
it makes for ``cuda`` (bf16 autocast, channels_last, no determinism, cuDNN autotuning, a loss read
every ``CUDA_LOSS_CHECK_EVERY`` steps, torch.compile for long runs) can be moved to the CPU with
``SpeedPlan.on`` and trained there: PyTorch runs bf16 autocast, channels_last and the inductor
backend on the CPU too. The memory plan takes the GPU's ``(free, total)`` figure as an argument.
What the CPU cannot stand in for (the device's own memory figure and allocator, CUDA kernels and
cuDNN, bf16 under torch.compile) is checked by the ``gpu`` tests at the end of this file; the
README's "What only a GPU can check" lists them.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

from common.errors import Diverged
from space import ArchSpec, build_model, resolve
from space.blocks import make_block
from tests.trainers.random_data import random_data
from trainers import TrainConfig, train_trial
from trainers.augment import InputContract, channel_stats
from trainers.device import CUDA_PLANNED_FRACTION, autocast, available_memory_bytes, reproducible
from trainers.planning import data_bytes, plan_memory
from trainers.speed import CUDA_LOSS_CHECK_EVERY, SpeedPlan, plan_speed

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
TINY = ArchSpec(expansion=1, resolution=8, classes=3)
CONFIG = TrainConfig(epochs=1, warmup_epochs=0, batch_size=8, threads=1)
GIB = 2**30
needs_cuda = pytest.mark.gpu


def cuda_plan(config: TrainConfig = CONFIG, train_images: int = 54_000) -> SpeedPlan:
    """What a CUDA trial with ``config`` runs with, moved to the CPU."""
    return plan_speed(CUDA, config, train_images).on(CPU)


def test_the_cuda_plan_moved_to_the_cpu_keeps_every_gpu_setting() -> None:
    plan = cuda_plan()
    assert plan.device == CPU
    assert (plan.bf16, plan.channels_last, plan.deterministic, plan.compile) == (
        True,
        True,
        False,
        False,
    )
    assert plan.loss_check_every == CUDA_LOSS_CHECK_EVERY == 25
    assert plan_speed(CPU, CONFIG, 54_000).loss_check_every == 1
    assert cuda_plan(dataclasses.replace(CONFIG, epochs=1000)).compile  # long enough to pay back


def test_cuda_settings_run_bf16_in_channels_last_on_the_cpu() -> None:
    """The GPU path's forward on the CPU: channels_last weights and input, bf16 activations
    under autocast (convolutions are on autocast's bf16 list), logits in bf16."""
    plan = cuda_plan()
    data = random_data(4, 0)
    model, runner = plan.prepare(build_model(TINY))
    assert runner is model  # a short trial does not compile
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    contract = InputContract.of(resolve(TINY).resolution, channel_stats(data.images), 3)
    inputs = contract.transform(plan.device, plan.channels_last).eval(data.images)
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    stem: list[torch.Tensor] = []
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first_conv.register_forward_hook(lambda _m, _i, out: stem.append(out))
    with autocast(plan.device, plan.bf16):
        logits = runner(inputs)
    assert logits.dtype == torch.bfloat16 and logits.shape == (4, 3)
    assert stem[0].dtype == torch.bfloat16
    assert stem[0].is_contiguous(memory_format=torch.channels_last)


def test_a_trial_trains_with_cuda_settings_on_the_cpu() -> None:
    """``train_trial`` with the CUDA plan: determinism off while it trains (restored after), the
    memory estimate at bf16, and a first-epoch loss within 5 % of the float32 CPU trial's."""
    train, val = random_data(32, 0), random_data(8, 1)
    plan = cuda_plan()
    seen: list[tuple[bool, int]] = []

    def on_epoch(_report: object) -> bool:
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()))
        return False

    before = torch.are_deterministic_algorithms_enabled()
    gpu = train_trial(TINY, train, val, CONFIG, on_epoch, speed=plan)
    cpu = train_trial(TINY, train, val, CONFIG)
    assert seen == [(False, 1)] and torch.are_deterministic_algorithms_enabled() == before
    assert gpu.epochs_run == 1 and all(math.isfinite(v) for v in gpu.loss_per_epoch)
    assert gpu.memory_estimate_bytes == plan_memory(TINY, train, val, CONFIG, plan).estimate_bytes
    assert plan_memory(TINY, train, val, CONFIG, plan).estimate.precision == "bf16"
    assert gpu.loss_per_epoch[0] == pytest.approx(cpu.loss_per_epoch[0], rel=0.05)


def test_a_cuda_trial_reads_its_loss_every_25_steps() -> None:
    """A learning rate of 1e6 gives NaN at step 2. The CPU reads the loss every step and names
    step 2; a CUDA trial reads the running sum every 25 steps, so it names step 25 (NaN survives
    the sum: the divergence is reported late, never missed)."""
    config = dataclasses.replace(CONFIG, lr=1e6, final_lr=1e6)
    train, val = random_data(30 * config.batch_size, 0), random_data(8, 1)
    for speed, step in ((None, 2), (cuda_plan(), 25)):
        with pytest.raises(Diverged) as caught:
            train_trial(TINY, train, val, config, speed=speed)
        assert (caught.value.epoch, caught.value.step) == (1, step)


def test_cudnn_autotunes_only_for_a_nondeterministic_cuda_trial() -> None:
    """cuDNN's benchmark flag is only a switch, so the CUDA branch of ``reproducible`` runs on
    the CPU; it is on inside a CUDA trial and the caller's value comes back after."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        with reproducible(CUDA, deterministic=False):
            assert torch.backends.cudnn.benchmark
        assert not torch.backends.cudnn.benchmark
        with reproducible(CPU, deterministic=False):
            assert not torch.backends.cudnn.benchmark
        with reproducible(CUDA, deterministic=True):
            assert not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = saved


def test_cuda_memory_plan_for_a_given_free_figure() -> None:
    """The paper preset (standard block, e = 4, 56 px here) at batch 256 on a quarter of an
    80 GiB GPU. With 2 GiB free the free figure binds: 90 % of it is the limit, and the bf16
    plan needs three micro-batches (86 + 85 + 85 images; two of 128 do not fit), where the
    float32 plan of the same figure needs five of at most 52; with the GPU free the share binds
    and the whole batch fits."""
    spec = ArchSpec(classes=3)
    train, val = random_data(512, 0, size=32), random_data(64, 1, size=32)
    tight = available_memory_bytes("cuda", 0.25, cuda_memory=(2 * GIB, 80 * GIB))
    assert tight == int(2 * GIB * CUDA_PLANNED_FRACTION) == 1_932_735_283
    config = TrainConfig(batch_size=256, memory_limit_bytes=tight)
    bf16 = plan_memory(spec, train, val, config, cuda_plan(config))
    fp32 = plan_memory(spec, train, val, config, plan_speed(CPU, config, len(train)))
    assert (bf16.micro_batch, bf16.accumulation_steps, bf16.eval_batch) == (86, 3, 512)
    assert (fp32.micro_batch, fp32.accumulation_steps) == (52, 5)
    # the fewest micro-batches: two of 128 would not fit
    assert bf16.estimate_bytes <= tight < data_bytes(train, val) + bf16.estimate.bytes_at(128)
    roomy = available_memory_bytes("cuda", 0.25, cuda_memory=(80 * GIB, 80 * GIB))
    assert roomy == int(20 * GIB * CUDA_PLANNED_FRACTION)
    config = dataclasses.replace(config, memory_limit_bytes=roomy)
    whole = plan_memory(spec, train, val, config, cuda_plan(config))
    assert (whole.micro_batch, whole.accumulation_steps) == (256, 1)


def _train_step(model: nn.Module, inputs: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Forward under the plan's autocast and backward of a fixed weighted sum of the output (a
    loss whose gradient reaches every weight; a squared mean after BatchNorm would have almost
    none, and compare rounding noise); returns the output."""
    with autocast(inputs.device, bf16):
        output = model(inputs)
    weights = torch.linspace(-1.0, 1.0, output.numel(), device=output.device).view_as(output)
    (output.float() * weights).sum().backward()
    return output


def _relative_error(value: torch.Tensor, expected: torch.Tensor) -> float:
    value, expected = value.detach().float(), expected.detach().float()
    return float((value - expected).norm() / expected.norm())


def _compiled_matches_eager(device: torch.device, bf16: bool, tolerance: float) -> None:
    """One MBConv block of the project (expand, depthwise, project, BatchNorm), prepared by a
    compiling plan (the CUDA defaults of a long run, on ``device``) in training mode: the output
    and the gradient of the compiled block are within ``tolerance`` (relative, in norm) of the
    eager twin's."""
    plan = dataclasses.replace(cuda_plan(dataclasses.replace(CONFIG, epochs=1000)), bf16=bf16)
    plan = plan.on(device)
    assert plan.compile and plan.channels_last
    block = (
        resolve(ArchSpec(block="standard", expansion=2, resolution=8, classes=3)).stages[1].block
    )
    torch.manual_seed(0)
    model, runner = plan.prepare(make_block(block).to(device))
    eager = copy.deepcopy(model)
    assert isinstance(runner, torch._dynamo.eval_frame.OptimizedModule)
    assert runner._orig_mod is model
    inputs = torch.randn(4, block.in_ch, block.in_hw, block.in_hw, device=device)
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    compiled = _train_step(runner, inputs, plan.bf16)
    expected = _train_step(eager, inputs, plan.bf16)
    assert compiled.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert _relative_error(compiled, expected) < tolerance
    assert _relative_error(_gradient(model), _gradient(eager)) < tolerance


def _gradient(model: nn.Module) -> torch.Tensor:
    """Every parameter's gradient as one vector (bf16 rounding leaves single small ones, such
    as a BatchNorm scale's, far apart in relative terms; the whole vector is what SGD uses)."""
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_compiled_block_matches_eager_on_the_inductor_cpu_backend() -> None:
    """torch.compile's path (``SpeedPlan.prepare``) with inductor's CPU backend, float32; it
    compiles C++ kernels, so it is the slowest default test here (its duration is in
    benchmarks/RESULTS.md, "Figures behind the code's decisions")."""
    _compiled_matches_eager(CPU, bf16=False, tolerance=1e-4)


# ----- what only a GPU can check (pytest -m gpu; skipped without CUDA) ---------------------------
@needs_cuda
def test_gpu_memory_plan_reads_the_free_figure_of_the_device() -> None:
    """``torch.cuda.mem_get_info`` itself: the plan is 90 % of the smaller of the share and what
    is free now (other processes and this one's CUDA context hold the rest)."""
    free, total = torch.cuda.mem_get_info(CUDA)
    for share in (1.0, 0.25):
        planned = available_memory_bytes("cuda", share)
        assert 0 < planned <= CUDA_PLANNED_FRACTION * min(free, total * share) * 1.01


@needs_cuda
def test_gpu_compiled_bf16_block_matches_eager() -> None:
    """torch.compile of the bf16 autocast training step on CUDA (Triton kernels), what a long
    ``search train`` on a GPU runs; the CPU checks the compiled path in float32 only."""
    _compiled_matches_eager(CUDA, bf16=True, tolerance=5e-2)
