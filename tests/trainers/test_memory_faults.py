"""Memory planning (micro-batches + accumulation), and the trainer's own fault signals:
InsufficientMemory before training, Diverged on a non-finite loss, TrialTimeout between steps."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from common.errors import Diverged, InsufficientMemory, TrialTimeout, UserError
from space import ArchSpec, build_model
from space.memory import estimate_memory
from tests.trainers.random_data import random_data
from trainers import TrainConfig, train_trial
from trainers.device import (
    CPU_PLANNED_FRACTION,
    _host_available_bytes,
    available_memory_bytes,
    cgroup_headroom,
    meminfo_available,
)
from trainers.steps import train_step

TINY = ArchSpec(expansion=1, resolution=8, classes=3)
CONFIG = TrainConfig(epochs=1, warmup_epochs=0, batch_size=16, threads=1)
# 48 + 8 images of 3 x 9 x 9 uint8 and their int64 labels
DATA_BYTES = (48 + 8) * (3 * 9 * 9 + 8)


TRAIN, VAL = random_data(48, 0), random_data(8, 1)


def test_accumulated_micro_batches_give_the_full_batch_update() -> None:
    """10 images as micro-batches of at most 4 (4 + 3 + 3), each loss scaled by its share: the
    same step as one batch of 10. BatchNorm is in eval mode here because in training mode it
    normalises each micro-batch with its own statistics (the documented difference)."""
    torch.manual_seed(0)
    model = build_model(ArchSpec(expansion=1, resolution=16, classes=3)).eval()
    twin, before = copy.deepcopy(model), copy.deepcopy(model)
    inputs, targets = torch.randn(10, 3, 16, 16), torch.randint(0, 3, (10,))
    loss_fn = nn.CrossEntropyLoss()

    def sgd(module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(module.parameters(), lr=0.5, momentum=0.9, nesterov=True)

    full = train_step(model, sgd(model), loss_fn, inputs, targets, amp=False)
    accumulated = train_step(twin, sgd(twin), loss_fn, inputs, targets, amp=False, micro_batch=4)
    assert float(accumulated) == pytest.approx(float(full), rel=1e-6)
    moved = 0
    for (name, a), b, c in zip(
        model.named_parameters(), twin.parameters(), before.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        moved += int(not torch.equal(a, c))
    assert moved > 10  # the step did change the weights


def test_memory_limit_trains_in_micro_batches() -> None:
    estimate = estimate_memory(TINY)
    limit = DATA_BYTES + estimate.bytes_at(5)
    planned = train_trial(TINY, TRAIN, VAL, dataclasses.replace(CONFIG, memory_limit_bytes=limit))
    # 5 fit; 16 images take 4 micro-batches, split evenly (never a lone image for BatchNorm)
    assert (planned.micro_batch, planned.accumulation_steps) == (4, 4)
    assert planned.memory_estimate_bytes == DATA_BYTES + estimate.bytes_at(4) < limit
    assert planned.epochs_run == 1 and planned.loss_per_epoch[0] > 0

    roomy = dataclasses.replace(CONFIG, memory_limit_bytes=100 * limit)
    whole = train_trial(TINY, TRAIN, VAL, roomy)
    unplanned = train_trial(TINY, TRAIN, VAL, CONFIG)
    assert (whole.micro_batch, whole.accumulation_steps) == (16, 1)
    assert (unplanned.micro_batch, unplanned.accumulation_steps) == (16, 1)
    # when the batch fits, planning changes nothing, to the last bit
    assert whole.loss_per_epoch == unplanned.loss_per_epoch
    assert whole.accuracy_per_epoch == unplanned.accuracy_per_epoch
    assert unplanned.memory_estimate_bytes == DATA_BYTES + estimate.bytes_at(16)


def test_nothing_fits_raises_before_training() -> None:
    estimate = estimate_memory(TINY)
    limit = DATA_BYTES + estimate.bytes_at(1) - 1
    epochs: list[object] = []
    with pytest.raises(InsufficientMemory) as caught:
        train_trial(
            TINY,
            TRAIN,
            VAL,
            dataclasses.replace(CONFIG, memory_limit_bytes=limit),
            on_epoch=epochs.append,
        )
    assert epochs == []
    assert caught.value.needed_bytes == estimate.bytes_at(1)
    assert caught.value.available_bytes == limit - DATA_BYTES
    assert str(caught.value).startswith("memory: needs ")
    assert " at micro-batch 1, " in str(caught.value) and " available" in str(caught.value)


def test_absurd_learning_rate_diverges_at_the_exact_step() -> None:
    config = dataclasses.replace(CONFIG, epochs=3, batch_size=8, lr=1e6, final_lr=1e6)
    with pytest.raises(Diverged) as caught:
        train_trial(TINY, TRAIN, VAL, config)
    assert (caught.value.epoch, caught.value.step) == (1, 2)
    assert str(caught.value).startswith("diverged: loss is nan at epoch 1 step 2")


def test_time_limit() -> None:
    config = dataclasses.replace(CONFIG, epochs=3, time_limit_s=1e-9)
    with pytest.raises(TrialTimeout) as caught:
        train_trial(TINY, TRAIN, VAL, config)
    assert (caught.value.epoch, caught.value.step, caught.value.limit_s) == (1, 1, 1e-9)
    assert str(caught.value).startswith("timeout: ")
    relaxed = train_trial(TINY, TRAIN, VAL, dataclasses.replace(config, time_limit_s=3600.0))
    assert relaxed.epochs_run == 3


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("memory_limit_bytes", 0, "memory_limit_bytes=0"),
        ("memory_limit_bytes", 1.5, "memory_limit_bytes=1.5"),
        ("time_limit_s", 0.0, "time_limit_s=0.0"),
        ("time_limit_s", float("nan"), "time_limit_s=nan"),
    ],
)
def test_limit_config_errors(field: str, value: float, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        TrainConfig(**{field: value})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_available_memory_reads_meminfo_and_cgroups(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    _write(meminfo, "MemTotal:  8000000 kB\nMemAvailable:    1000000 kB\n")
    assert meminfo_available(meminfo.read_text()) == 1_024_000_000
    # cgroup v2: 512 MiB limit, 300 MiB used of which 20 MiB inactive page cache
    root, proc = tmp_path / "cgroup", tmp_path / "proc_cgroup"
    _write(proc, "0::/job/trial\n")
    _write(root / "job" / "memory.max", "max\n")
    _write(root / "job" / "trial" / "memory.max", f"{512 * 2**20}\n")
    _write(root / "job" / "trial" / "memory.current", f"{300 * 2**20}\n")
    _write(root / "job" / "trial" / "memory.stat", f"anon 1\ninactive_file {20 * 2**20}\n")
    assert cgroup_headroom(proc, root) == 232 * 2**20
    assert _host_available_bytes(meminfo, proc, root) == 232 * 2**20
    # cgroup v1: the parent's limit is the tighter one; no limit = ~2**63
    _write(proc, "4:memory:/a/b\n0::/\n")
    _write(root / "memory" / "a" / "b" / "memory.limit_in_bytes", "9223372036854771712\n")
    _write(root / "memory" / "a" / "b" / "memory.usage_in_bytes", "1")
    _write(root / "memory" / "a" / "memory.limit_in_bytes", f"{2 * 2**30}\n")
    _write(root / "memory" / "a" / "memory.usage_in_bytes", f"{2**30}\n")
    assert cgroup_headroom(proc, root) == 2**30
    assert _host_available_bytes(meminfo, proc, root) == 1_024_000_000  # MemAvailable is lower
    _write(proc, "0::/\n")
    assert cgroup_headroom(proc, root) is None


def test_available_memory_on_this_machine() -> None:
    total = meminfo_available(Path("/proc/meminfo").read_text().replace("MemTotal", "MemAvailable"))
    planned = available_memory_bytes("cpu")
    assert 0 < planned <= total * CPU_PLANNED_FRACTION
    assert 0 < available_memory_bytes(torch.device("cpu"), share=0.25) < planned
    with pytest.raises(ValueError, match="share=0"):
        available_memory_bytes("cpu", share=0)
