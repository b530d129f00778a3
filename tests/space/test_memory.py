"""space.memory against what autograd saves and what training really occupies (CPU RSS, CUDA).

Three layers of checks: the tensors autograd keeps (exact, through saved_tensors_hooks), the
peak resident memory of real training steps in a fresh process (within 30 %), and the planning
arithmetic (micro-batch choice).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from space import ArchSpec, build_model, count_spec, resolve
from space.memory import (
    FP32,
    MemoryEstimate,
    choose_micro_batch,
    estimate_memory,
    largest_batch,
)
from trainers.speed import to_channels_last

ROOT = Path(__file__).resolve().parents[2]
COMBOS = [
    (block, mid) for block in ("standard", "se", "condconv") for mid in ("depthwise", "dense")
]


def _spec(block: str, mid: str, resolution: int) -> ArchSpec:
    # CondConv with a dense middle conv mixes 4 dense kernels per image: expansion 1 keeps the
    # per-image kernels (about 10 MB an image) from dwarfing everything else
    expansion = 1 if (block, mid) == ("condconv", "dense") else 2
    return ArchSpec(
        block=block, mid_conv=mid, expansion=expansion, resolution=resolution, classes=10
    )


def _saved_bytes(spec: ArchSpec, batch: int, device: str = "cpu", amp: bool = False) -> int:
    """Bytes of the distinct non-parameter storages autograd keeps for one forward + loss."""
    model = to_channels_last(build_model(spec).to(device))  # the trainer's default format
    resolution = resolve(spec).resolution
    inputs = torch.randn(batch, 3, resolution, resolution, device=device)
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    targets = torch.zeros(batch, dtype=torch.int64, device=device)
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), cast:
        F.cross_entropy(model(inputs), targets)
    return sum(kept.values())


@pytest.mark.parametrize(("block", "mid"), COMBOS)
def test_saved_activations_are_exactly_what_autograd_keeps(block: str, mid: str) -> None:
    """Per image, the estimate's saved bytes equal the growth of autograd's saved storages
    (fp32, CPU) byte for byte; the per-batch constant (BN statistics) cancels in the slope."""
    spec = _spec(block, mid, 16)
    # batches 2 and 4: at batch 1 a channels_last tensor reshapes as a view, so CondConv's
    # input copy appears only from batch 2 on
    slope = (_saved_bytes(spec, 4) - _saved_bytes(spec, 2)) // 2
    assert slope == estimate_memory(spec).saved_per_image_bytes


def test_paper_preset_numbers() -> None:
    """The paper preset (standard block, e=4, 56 px, 100 classes) at batch 256, fp32 and bf16."""
    spec = ArchSpec()
    fp32, bf16 = estimate_memory(spec, "fp32"), estimate_memory(spec, "bf16")
    params = count_spec(spec).params
    assert fp32.fixed_bytes >= 3 * params * FP32  # weights, gradients, momentum
    assert bf16.fixed_bytes >= fp32.fixed_bytes + 2 * params  # + bf16 weight copies
    # autocast halves every kept activation except the fp32 model input (plus its bf16 cast
    # under autocast), the fp32 log-probabilities (100 classes) and the int64 label
    image, extras = 3 * 56 * 56 * FP32, 100 * FP32 + 8
    halved = (fp32.saved_per_image_bytes - image - extras) // 2
    assert bf16.saved_per_image_bytes == halved + image + image // 2 + extras
    assert fp32.saved_per_image_bytes == 29_910_424
    assert fp32.per_image_bytes == 30_406_656  # + the transient peak of backward
    assert fp32.bytes_at(256) == fp32.fixed_bytes + 256 * 30_406_656
    assert 0 < fp32.eval_per_image_bytes < fp32.per_image_bytes / 5
    assert estimate_memory(resolve(spec)) == fp32  # a plan or a spec
    with pytest.raises(ValueError, match="fp16"):
        estimate_memory(spec, "fp16")


def test_choose_micro_batch() -> None:
    estimate = MemoryEstimate("fp32", 1000, 100, 90, 10)
    assert choose_micro_batch(estimate, 256, 1000 + 256 * 100) == 256
    assert choose_micro_batch(estimate, 256, 1000 + 256 * 100 - 1) == 255
    assert choose_micro_batch(estimate, 256, 1000 + 64 * 100 + 99) == 64
    assert choose_micro_batch(estimate, 256, 1100) == 1
    assert choose_micro_batch(estimate, 256, 1099) is None
    assert choose_micro_batch(estimate, 256, 0) is None
    assert largest_batch(10, 1000, 512, 1000 + 300) == 30
    assert largest_batch(10, 1000, 512, 10) == 1  # evaluation always runs


def _rss_cases(cases: list[tuple[str, str, int, int]]) -> list[dict[str, object]]:
    """Measure in a fresh process (see tests/space/rss_probe.py for the method and why glibc's
    mmap threshold is pinned there)."""
    payload = [
        {"spec": _spec(block, mid, res).canonical(), "batch": batch}
        for block, mid, res, batch in cases
    ]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.space.rss_probe", json.dumps(payload)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _check_within_30_percent(records: list[dict[str, object]]) -> None:
    ratios = {}
    for record in records:
        measured, estimate = int(str(record["measured"])), int(str(record["estimate"]))
        ratios[f"{record['spec']} batch {record['batch']}"] = estimate / measured
        assert measured > 100 * 2**20, record  # activations dominate: a real measurement
    print("\n".join(f"{name}: estimate/measured {ratio:.3f}" for name, ratio in ratios.items()))
    assert all(0.7 <= ratio <= 1.3 for ratio in ratios.values()), ratios


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/self/clear_refs"
)

# block, middle conv, resolution, batch: batches where activations are >= 3x the fixed bytes
SUBSET = [
    ("standard", "depthwise", 16, 83),
    ("standard", "dense", 32, 47),
    ("se", "depthwise", 32, 17),
    ("se", "dense", 16, 167),
    ("condconv", "depthwise", 16, 28),
    ("condconv", "dense", 32, 25),
]
MATRIX = [
    ("standard", "depthwise", 16, 174),
    ("standard", "depthwise", 32, 43),
    ("standard", "dense", 16, 189),
    ("standard", "dense", 32, 47),
    ("se", "depthwise", 16, 147),
    ("se", "depthwise", 32, 37),
    ("se", "dense", 16, 167),
    ("se", "dense", 32, 42),
    ("condconv", "depthwise", 16, 50),
    ("condconv", "depthwise", 32, 25),
    ("condconv", "dense", 16, 25),
    ("condconv", "dense", 32, 25),
]


@needs_proc
def test_estimate_within_30_percent_of_measured_rss() -> None:
    """Every block type and grouping, two resolutions among them, in one fresh process."""
    _check_within_30_percent(_rss_cases(SUBSET))


@needs_proc
@pytest.mark.slow
def test_estimate_within_30_percent_of_measured_rss_full_matrix() -> None:
    """Block types x groupings x {16, 32} px."""
    _check_within_30_percent(_rss_cases(MATRIX))


@pytest.mark.gpu
@pytest.mark.parametrize(("block", "mid"), COMBOS)
def test_bf16_saved_activations_on_cuda(block: str, mid: str) -> None:
    """Under bf16 autocast every kept activation is bf16 (BatchNorm included: it is not on
    autocast's fp32 list); the fp32 model input is alive but not saved, its bf16 cast is."""
    spec = _spec(block, mid, 16)
    slope = (_saved_bytes(spec, 4, "cuda", amp=True) - _saved_bytes(spec, 2, "cuda", amp=True)) // 2
    input_fp32 = 3 * 16 * 16 * FP32
    assert slope == estimate_memory(spec, "bf16").saved_per_image_bytes - input_fp32


@pytest.mark.gpu
@pytest.mark.parametrize(("block", "mid"), COMBOS)
@pytest.mark.parametrize("resolution", [32, 64])
def test_bf16_estimate_within_30_percent_of_cuda_peak(
    block: str, mid: str, resolution: int
) -> None:
    """As the trainer runs on CUDA: channels_last, bf16 autocast, cuDNN autotuning, foreach SGD,
    augmentation on the device; the peak of ``torch.cuda.max_memory_allocated`` over two steps,
    after a warm-up step (cuDNN's algorithm search), less what was allocated before the model."""
    from torch import nn

    from trainers.augment import BatchTransform, channel_stats
    from trainers.device import reproducible
    from trainers.steps import train_epoch

    spec = _spec(block, mid, resolution)
    estimate = estimate_memory(spec, "bf16")
    batch = max(8, min(512, int(4 * 2**30 / estimate.per_image_bytes)))
    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (2 * batch, 1, 28, 28), device=device, generator=generator)
    images = images.to(torch.uint8)
    labels = torch.randint(0, 10, (2 * batch,), device=device, generator=generator)
    transform = BatchTransform(resolution, channel_stats(images), device, channels_last=True)
    with reproducible(device, deterministic=False):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        model = to_channels_last(build_model(spec).to(device))
        optimizer = torch.optim.SGD(
            model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-5
        )
        loss_fn = nn.CrossEntropyLoss()

        def two_steps() -> None:
            train_epoch(
                model, optimizer, loss_fn, images, labels, transform, generator, batch,
                lambda step: 0.01, 0, True,
            )  # fmt: skip
            torch.cuda.synchronize()

        two_steps()  # warm-up: cuDNN benchmarks its algorithms on the first call
        torch.cuda.reset_peak_memory_stats()
        two_steps()
        measured = torch.cuda.max_memory_allocated() - before
    ratio = estimate.bytes_at(batch) / measured
    print(f"{spec.canonical()} batch {batch}: estimate/measured {ratio:.3f}")
    assert 0.7 <= ratio <= 1.3
