"""One optimisation step, one training epoch and one evaluation pass over on-device uint8 data.

The data set lives on the training device as uint8 tensors; batches are index gathers from it and
are augmented there (``trainers.augment``), so there is no DataLoader and no worker process: on
a GPU the whole epoch is kernel launches. Losses are accumulated on the device and read once per
epoch (or every ``Watchdog.loss_every`` steps), so the host rarely waits for the GPU inside the
loop. Shared by ``trainers.loop`` and the throughput benchmark. ``recalibrate_batchnorm``
re-estimates the BatchNorm running statistics of trained weights before an evaluation.

Gradient accumulation: a step may run as several micro-batches of at most ``micro_batch`` images
(sizes as equal as possible, so no micro-batch is a lone image), each loss scaled by its share of
the batch, ``n_i / N``, so the summed gradient is the full batch's mean-loss gradient and the
update is the recipe's. As in timm's and Hugging Face's accumulation,
BatchNorm then normalises with micro-batch statistics (and updates its running statistics once
per micro-batch), the one way in which the step differs from a full batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import Diverged, TrialTimeout
from trainers.augment import BatchTransform
from trainers.device import autocast


@dataclass(frozen=True)
class Watchdog:
    """The trial faults checked between steps: the wall-clock limit and a non-finite loss.

    ``started`` is the trial's ``time.perf_counter()`` at its start. ``loss_every``: 1 checks
    every step (exact; reading the loss is free on the CPU); on CUDA each read waits for the GPU,
    so the epoch's running loss sum is read every ``loss_every`` steps and at the epoch's end
    (NaN and inf survive the sum, so a divergence is never missed, only reported a few steps
    late).
    """

    started: float
    time_limit_s: float | None = None
    loss_every: int = 1

    def check_time(self, epoch: int, step: int) -> None:
        if self.time_limit_s is None:
            return
        elapsed = time.perf_counter() - self.started
        if elapsed > self.time_limit_s:
            raise TrialTimeout(self.time_limit_s, elapsed, epoch, step)

    def check_loss(self, loss_sum: torch.Tensor, epoch: int, step: int) -> None:
        value = float(loss_sum)
        if not math.isfinite(value):
            raise Diverged(epoch, step, value)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    amp: bool,
    micro_batch: int | None = None,
) -> torch.Tensor:
    """Forward (bf16 autocast on CUDA when ``amp``), backward, update; returns the detached mean
    loss. With ``micro_batch`` < batch, the gradient is accumulated over micro-batches."""
    optimizer.zero_grad(set_to_none=True)
    batch = inputs.shape[0]
    loss_sum = torch.zeros((), device=inputs.device)
    parts = micro_batches(batch, micro_batch)
    for part, labels in zip(inputs.tensor_split(parts), targets.tensor_split(parts), strict=True):
        loss_sum += accumulate(model, loss_fn, part, labels, batch, amp)
    optimizer.step()
    return loss_sum / batch


def micro_batches(batch: int, micro_batch: int | None) -> int:
    """How many micro-batches of at most ``micro_batch`` images a ``batch`` is split into."""
    return 1 if micro_batch is None else -(-batch // micro_batch)


def accumulate(
    model: nn.Module,
    loss_fn: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch: int,
    amp: bool,
) -> torch.Tensor:
    """Forward and backward of one micro-batch of a ``batch``-image step, its loss scaled by
    ``len(inputs) / batch``; returns the detached loss summed over the micro-batch's images."""
    with autocast(inputs.device, amp):
        loss = loss_fn(model(inputs), targets)
    share = inputs.shape[0] / batch
    (loss * share if share != 1.0 else loss).backward()
    return loss.detach().float() * inputs.shape[0]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    transform: BatchTransform,
    generator: torch.Generator,
    batch_size: int,
    rate_of_step: Callable[[int], float],
    first_step: int,
    amp: bool,
    micro_batch: int | None = None,
    epoch: int = 1,
    watchdog: Watchdog | None = None,
) -> tuple[float, int]:
    """One shuffled pass; the last partial batch is dropped (as DataLoader's ``drop_last``) unless
    it is the only one. Each micro-batch is gathered and augmented on its own, so memory follows
    the micro-batch; with one micro-batch per step the random draws are those of a whole batch.
    Raises ``TrialTimeout`` / ``Diverged`` through ``watchdog``. Returns (mean training loss,
    images trained on)."""
    model.train()
    count = images.shape[0]
    order = torch.randperm(count, generator=generator, device=images.device)
    steps = max(1, count // batch_size)
    loss_sum = torch.zeros((), device=images.device)
    seen = 0
    for step in range(steps):
        if watchdog is not None:
            watchdog.check_time(epoch, step + 1)
        index = order[step * batch_size : (step + 1) * batch_size]
        for group in optimizer.param_groups:
            group["lr"] = rate_of_step(first_step + step)
        optimizer.zero_grad(set_to_none=True)
        for chunk in index.tensor_split(micro_batches(index.numel(), micro_batch)):
            inputs = transform.train(images[chunk], generator)
            loss_sum += accumulate(model, loss_fn, inputs, labels[chunk], index.numel(), amp)
        optimizer.step()
        seen += index.numel()
        if watchdog is not None and (step + 1) % watchdog.loss_every == 0:
            watchdog.check_loss(loss_sum, epoch, step + 1)
    if watchdog is not None:
        watchdog.check_loss(loss_sum, epoch, steps)
    return float(loss_sum) / seen, seen


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    transform: BatchTransform,
    batch_size: int,
    amp: bool,
) -> tuple[float, float]:
    """(top-1 accuracy as a fraction, mean cross-entropy without label smoothing) on the centre
    crops; the model is left in training mode."""
    correct, loss = count_correct(model, images, labels, transform, batch_size, amp)
    return correct / max(1, images.shape[0]), loss


@torch.inference_mode()
def count_correct(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    transform: BatchTransform,
    batch_size: int,
    amp: bool,
) -> tuple[int, float]:
    """(images classified correctly, mean cross-entropy without label smoothing) on the centre
    crops, in batches of ``batch_size``; the model is left in training mode. The one evaluation
    pass: the epoch's validation and the test-split evaluation (``trainers.evaluation``) both
    run it, so a count is exact, not recovered from a fraction."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    for start in range(0, images.shape[0], batch_size):
        targets = labels[start : start + batch_size]
        with autocast(images.device, amp):
            logits = model(transform.eval(images[start : start + batch_size]))
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
        correct += (logits.argmax(1) == targets).sum()
    model.train()
    return int(correct), float(loss_sum) / max(1, images.shape[0])


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    images: torch.Tensor,
    transform: BatchTransform,
    batches: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    amp: bool = False,
) -> int:
    """Recompute every BatchNorm's running statistics from ``batches`` training batches.

    "Precise BN" (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; pycls's
    ``compute_precise_bn_stats``, from Radosavovic et al., "Designing Network Design Spaces",
    2020) and Once-for-All's BN recalibration (Cai et al., ICLR 2020). Evaluation normalises with
    running averages (momentum 0.1: mostly the last few dozen steps) taken while the weights
    were still moving fast, and, after a few dozen steps, still partly the initial ones; so a
    short trial can score far below what its weights can do, even below chance. Here the
    running statistics are reset and re-estimated for the final weights as an equal-weight
    average over the batches (``momentum=None``, PyTorch's cumulative average): the running
    mean is the mean of the batch means and the running variance the mean of the (unbiased)
    batch variances, the statistics the layers normalise with in training.

    The batches are ``batch_size`` images of ``images`` (uint8, on the model's device). With a
    ``generator`` they are drawn in a shuffled order (reshuffled when the batches need more
    images than there are) and augmented as in training (``transform.train``), as pycls draws
    them from the training loader; without one they are taken in order (repeated when needed)
    through the evaluation transform. The forward passes run without gradients, with only the
    BatchNorm layers in training mode (dropout and the like stay off); weights are not touched.
    The momenta come back as they were and the model is left in training mode. Returns the
    number of images used (0, and nothing changed, when the model has no BatchNorm).
    """
    norms = [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    if not norms or batches < 1 or images.shape[0] == 0:
        return 0
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.eval()
    for norm in norms:
        norm.train()
    count = images.shape[0]
    size = max(1, min(batch_size, count))
    needed = batches * size
    passes = -(-needed // count)
    if generator is None:
        order = torch.arange(count, device=images.device).repeat(passes)
    else:
        shuffles = [
            torch.randperm(count, generator=generator, device=images.device) for _ in range(passes)
        ]
        order = torch.cat(shuffles)
    try:
        for start in range(0, needed, size):
            batch = images[order[start : start + size]]
            if generator is None:
                inputs = transform.eval(batch)
            else:
                inputs = transform.train(batch, generator)
            with autocast(images.device, amp):
                model(inputs)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train()
    return needed
