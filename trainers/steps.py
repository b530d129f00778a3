"""One optimisation step, one training epoch and one evaluation pass over on-device uint8 data.

The data set lives on the training device as uint8 tensors; batches are index gathers from it and
are augmented there (``trainers.augment``), so there is no DataLoader and no worker process: on
a GPU the whole epoch is kernel launches. Losses are accumulated on the device and read once per
epoch, so the host never waits for the GPU inside the loop. Shared by ``trainers.loop`` and the
throughput benchmark.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainers.augment import BatchTransform
from trainers.device import autocast


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    amp: bool,
) -> torch.Tensor:
    """Forward (bf16 autocast on CUDA when ``amp``), backward, update; returns the detached loss."""
    with autocast(inputs.device, amp):
        loss = loss_fn(model(inputs), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


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
) -> tuple[float, int]:
    """One shuffled pass; the last partial batch is dropped (as DataLoader's ``drop_last``) unless
    it is the only one. Returns (mean training loss, images trained on)."""
    model.train()
    count = images.shape[0]
    order = torch.randperm(count, generator=generator, device=images.device)
    steps = max(1, count // batch_size)
    loss_sum = torch.zeros((), device=images.device)
    seen = 0
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        inputs = transform.train(images[index], generator)
        for group in optimizer.param_groups:
            group["lr"] = rate_of_step(first_step + step)
        loss = train_step(model, optimizer, loss_fn, inputs, labels[index], amp)
        loss_sum += loss.float() * index.numel()
        seen += index.numel()
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
    count = max(1, images.shape[0])
    return int(correct) / count, float(loss_sum) / count
