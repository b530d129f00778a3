"""Plan a trial's memory before it trains: the micro-batch, the gradient-accumulation steps and
the evaluation batch that fit ``TrainConfig.memory_limit_bytes``.

The estimate is ``space.memory``'s, counted from the same plan as the model and its MACs, at
the precision and in the memory format the trial runs with (``trainers.speed``). The limit
covers the data set too, which the trainer keeps on the device, so what is left for training is
the limit less the splits' bytes. The batch is split into as few micro-batches as fit, of sizes
as equal as possible (``trainers.steps``); a network that does not fit at micro-batch 1 is
``InsufficientMemory``, raised before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.errors import InsufficientMemory
from common.units import format_bytes
from space import ArchSpec
from space.memory import MemoryEstimate, choose_micro_batch, estimate_memory, largest_batch
from trainers.data import ImageData
from trainers.device import resolve_device
from trainers.speed import SpeedPlan, plan_speed
from trainers.steps import micro_batches

if TYPE_CHECKING:  # trainers.loop imports this module
    from trainers.loop import TrainConfig


@dataclass(frozen=True)
class MemoryPlan:
    """``micro_batch`` x ``accumulation_steps`` covers the batch; ``estimate_bytes`` is the
    planned peak on the device, data set included."""

    micro_batch: int
    accumulation_steps: int
    eval_batch: int
    estimate_bytes: int
    estimate: MemoryEstimate


def plan_memory(
    spec: ArchSpec,
    train: ImageData,
    val: ImageData,
    config: TrainConfig,
    speed: SpeedPlan | None = None,
) -> MemoryPlan:
    """The plan for training ``spec`` on these splits with ``config`` under ``speed``'s precision
    and memory format (None: the device's defaults for ``config``, ``trainers.speed``)."""
    if speed is None:
        speed = plan_speed(resolve_device(config.device), config, len(train))
    limit = config.memory_limit_bytes
    batch = min(config.batch_size, len(train))
    estimate = estimate_memory(spec, "bf16" if speed.bf16 else "fp32", speed.channels_last)
    data = data_bytes(train, val)
    eval_batch = config.eval_batch_size or 2 * config.batch_size
    micro_batch = batch
    if limit is not None:
        available = limit - data
        fits = choose_micro_batch(estimate, batch, available)
        if fits is None:
            raise InsufficientMemory(
                estimate.bytes_at(1),
                available,
                f" ({format_bytes(limit)} limit less {format_bytes(data)} of data, "
                f"{estimate.precision})",
            )
        micro_batch = -(-batch // micro_batches(batch, fits))  # equal parts, none above fits
        eval_batch = largest_batch(
            estimate.eval_per_image_bytes, estimate.fixed_bytes, eval_batch, available
        )
    return MemoryPlan(
        micro_batch=micro_batch,
        accumulation_steps=micro_batches(batch, micro_batch),
        eval_batch=eval_batch,
        estimate_bytes=data + estimate.bytes_at(micro_batch),
        estimate=estimate,
    )


def data_bytes(train: ImageData, val: ImageData) -> int:
    """What the two splits occupy on the training device (images and labels)."""
    tensors = (train.images, train.labels, val.images, val.labels)
    return sum(t.numel() * t.element_size() for t in tensors)
