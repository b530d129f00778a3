"""Train one architecture with the reference recipe and report validation accuracy every epoch.

The recipe is docs/design.md section 6 (the seeds' Table 2): SGD with momentum 0.9 (Nesterov, as in
timm's ``sgd`` optimiser), batch 256, learning rate 0.01 with linear warm-up and a cosine fall to
0.001 (``trainers.schedule``), optional label smoothing (Szegedy et al., 2016), any number of
epochs. After every epoch the caller's ``on_epoch`` sees the validation top-1 accuracy and loss and
may stop the trial (this is how the searcher prunes weak trials; the loop knows nothing of Ray or
Optuna). MACs and parameters come from ``space.count_spec``, the same count the budget uses.

The data set is moved to the device once, as uint8, and augmented there in batches
(``trainers.augment``). bf16 autocast, channels_last, determinism and torch.compile are chosen per
device by ``trainers.speed``; the CPU keeps deterministic algorithms, so the same seed, device,
thread count and data give the same accuracy.

Memory is planned before anything trains (``trainers.planning``, from ``space.memory``'s estimate
counted from the plan like MACs): with ``TrainConfig.memory_limit_bytes``, the step runs in the
largest micro-batches whose estimated peak fits the limit less the data set, accumulating
gradients to keep the recipe's batch (``trainers.steps``); a network that does not fit at
micro-batch 1 raises ``common.errors.InsufficientMemory`` without training. Between steps the
loop checks for a non-finite loss (``Diverged``) and the optional ``time_limit_s``
(``TrialTimeout``).

``TrainConfig.bn_recalibration_batches`` re-estimates the BatchNorm running statistics from
training batches before every evaluation ("precise BN", ``trainers.steps``); it is off by
default (benchmarks/proxy_fidelity.py measures what it changes in a search's ranking).
``evaluate_weights`` evaluates saved weights as the loop does, so one training can be scored
with and without it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.errors import UserError
from space import ArchSpec, build_model, count_spec, resolve
from trainers.augment import BatchTransform, InputContract, channel_stats
from trainers.data import ImageData
from trainers.device import (
    peak_memory_bytes,
    reset_peak_memory,
    resolve_device,
    synchronize,
)
from trainers.planning import plan_memory
from trainers.schedule import learning_rate, warmup_epochs_used
from trainers.speed import SpeedPlan, plan_speed
from trainers.steps import Watchdog, evaluate, recalibrate_batchnorm, train_epoch

# the BatchNorm recalibration's generator is seeded with the trial's seed plus this
BN_SEED_OFFSET = 7919


@dataclass(frozen=True)
class TrainConfig:
    """The reference recipe's defaults; ``warmup_epochs`` is clipped to ``epochs - 1``.

    ``deterministic=None`` means "on the CPU only" (CUDA then autotunes cuDNN for speed);
    ``amp`` is bf16 autocast and ``channels_last`` the memory format (None: the device's
    measured default, see ``trainers.speed``); ``compile`` wraps the model in ``torch.compile``
    (None: only when the trial is long enough to pay the compile time back); ``threads`` sets
    torch's CPU threads for the trial (None keeps the process setting).
    ``memory_limit_bytes`` is what the trial may use on its device, data set included (None: no
    limit and no micro-batching; ``trainers.device.available_memory_bytes`` gives a safe figure);
    ``time_limit_s`` bounds the trial's wall time, checked between steps and before evaluation.
    ``validate=False`` trains without evaluating at all (accuracy and loss are NaN, the curves
    empty): a final training is scored once afterwards, on the test split, by
    ``trainers.evaluation`` on its saved weights, and must not look at that split before.
    ``bn_recalibration_batches`` > 0 re-estimates the BatchNorm running statistics before every
    evaluation from that many training batches of the step's (micro-)batch size, augmented as in
    training, without gradients (``trainers.steps.recalibrate_batchnorm``, "precise BN"); the
    draws come from a generator of their own, so training itself is the same with or without.
    0 (the default) evaluates with the running statistics training left.
    """

    epochs: int = 55
    warmup_epochs: int = 5
    batch_size: int = 256
    lr: float = 0.01
    final_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-5
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"
    nesterov: bool = True
    eval_batch_size: int | None = None
    deterministic: bool | None = None
    amp: bool | None = None
    compile: bool | None = None
    threads: int | None = None
    channels_last: bool | None = None
    memory_limit_bytes: int | None = None
    time_limit_s: float | None = None
    validate: bool = True
    bn_recalibration_batches: int = 0

    def __post_init__(self) -> None:
        """The recipe's own invariants, named by setting, for every caller of the trainer.

        The CLI has already checked the values a user gave (ranges and maxima of
        ``common.bounds``, with the flags named), so from the command line these never fire.
        """
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name}={value!r} must be a positive integer")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise UserError(f"threads={self.threads!r} must be a positive integer")
        limit = self.memory_limit_bytes
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise UserError(
                f"memory_limit_bytes={limit!r} must be a positive integer number of bytes"
            )
        seconds = self.time_limit_s
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not (math.isfinite(seconds) and seconds > 0)
        ):
            raise UserError(f"time_limit_s={seconds!r} must be a positive number of seconds")
        batches = self.bn_recalibration_batches
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 0:
            raise UserError(f"bn_recalibration_batches={batches!r} must be an integer >= 0")
        if self.warmup_epochs < 0:
            raise UserError(f"warmup_epochs={self.warmup_epochs!r} must be >= 0")
        if not (self.lr > 0 and self.final_lr >= 0):
            raise UserError(
                f"learning rates lr={self.lr!r}, final_lr={self.final_lr!r} must be positive, "
                "e.g. lr=0.01 and final_lr=0.001"
            )
        if not (0.0 <= self.label_smoothing < 1.0):
            raise UserError(
                f"label_smoothing={self.label_smoothing!r} must lie in [0, 1), e.g. 0.1"
            )
        if not (0.0 <= self.momentum < 1.0) or self.weight_decay < 0:
            raise UserError(
                f"momentum={self.momentum!r} must lie in [0, 1) and "
                f"weight_decay={self.weight_decay!r} must be >= 0"
            )


@dataclass(frozen=True)
class EpochReport:
    """Validation figures after one epoch (accuracy is a fraction in [0, 1])."""

    epoch: int
    epochs: int
    accuracy: float
    loss: float
    train_loss: float
    seconds: float


@dataclass(frozen=True)
class TrialResult:
    """The trial's record: the last epoch's validation accuracy and loss, wall ``seconds`` of the
    whole call, ``images_per_second`` over the training steps only (evaluation excluded).
    ``micro_batch`` x ``accumulation_steps`` covers the batch; ``memory_estimate_bytes`` is the
    planned peak on the device at that micro-batch, data set included (``space.memory``).
    ``input`` is the evaluation input contract (``trainers.augment.InputContract``): the resize,
    centre crop and the exact normalisation statistics the network was trained and evaluated
    with, which anyone evaluating the saved weights must apply."""

    accuracy: float
    loss: float
    epochs_run: int
    seconds: float
    images_per_second: float
    peak_memory_bytes: int
    macs: int
    params: int
    accuracy_per_epoch: tuple[float, ...]
    loss_per_epoch: tuple[float, ...]
    stopped_early: bool
    micro_batch: int
    accumulation_steps: int
    memory_estimate_bytes: int
    setup_seconds: float = 0.0  # from the call to the first training step (model build, data)
    input: InputContract | None = None

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["accuracy_per_epoch"] = list(self.accuracy_per_epoch)
        record["loss_per_epoch"] = list(self.loss_per_epoch)
        record["input"] = self.input.to_dict() if self.input is not None else None
        return record


def train_trial(
    spec: ArchSpec,
    train: ImageData,
    val: ImageData,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], bool] | None = None,
    save_dir: Path | None = None,
    speed: SpeedPlan | None = None,
) -> TrialResult:
    """Trains; after each epoch calls on_epoch(report); if it returns True, stops early.

    ``stopped_early`` is True only when epochs were left to run. ``save_dir`` receives
    ``spec.json``, ``weights.pt`` (the state dict, on the CPU) and ``result.json``. ``speed``
    (None: ``plan_speed`` for ``config.device``) is how the trial runs, on ``speed.device``; a
    plan made for CUDA and moved to the CPU (``SpeedPlan.on``) trains with a GPU's settings.
    Raises ``InsufficientMemory`` (before training), ``Diverged`` and ``TrialTimeout``
    (``common.errors``); CUDA out-of-memory propagates as ``torch.OutOfMemoryError``.
    """
    _check_data(spec, train, val)
    started = time.perf_counter()
    if speed is None:
        speed = plan_speed(resolve_device(config.device), config, len(train))
    device = speed.device
    counted = count_spec(spec)
    plan = plan_memory(spec, train, val, config, speed)
    watchdog = Watchdog(started, config.time_limit_s, speed.loss_check_every)
    with speed.active():
        torch.manual_seed(config.seed)
        model, runner = speed.prepare(build_model(spec).to(device))
        images, labels = train.images.to(device), train.labels.to(device)
        val_images, val_labels = val.images.to(device), val.labels.to(device)
        contract = InputContract.of(
            resolve(spec).resolution, channel_stats(images), spec.classes, train.name
        )
        transform = contract.transform(device, channels_last=speed.channels_last)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        # the recalibration's own draws, so that turning it on leaves training's draws alone
        bn_generator = torch.Generator(device=device).manual_seed(config.seed + BN_SEED_OFFSET)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
        loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        steps_per_epoch = max(1, len(train) // config.batch_size)
        rate_of_step = functools.partial(
            learning_rate,
            total_steps=steps_per_epoch * config.epochs,
            warmup_steps=steps_per_epoch * warmup_epochs_used(config.warmup_epochs, config.epochs),
            lr=config.lr,
            final_lr=config.final_lr,
        )
        reset_peak_memory(device)
        accuracies: list[float] = []
        losses: list[float] = []
        train_seconds, trained_images, stopped = 0.0, 0, False
        setup_seconds = time.perf_counter() - started
        for epoch in range(1, config.epochs + 1):
            synchronize(device)
            epoch_start = time.perf_counter()
            train_loss, seen = train_epoch(
                runner, optimizer, loss_fn, images, labels, transform, generator,
                config.batch_size, rate_of_step, (epoch - 1) * steps_per_epoch, speed.bf16,
                plan.micro_batch, epoch, watchdog,
            )  # fmt: skip
            synchronize(device)
            train_seconds += time.perf_counter() - epoch_start
            trained_images += seen
            watchdog.check_time(epoch, steps_per_epoch)
            accuracy = loss = math.nan
            if config.validate:
                if config.bn_recalibration_batches:
                    recalibrate_batchnorm(
                        runner, images, transform, config.bn_recalibration_batches,
                        plan.micro_batch, bn_generator, speed.bf16,
                    )  # fmt: skip
                accuracy, loss = evaluate(
                    runner, val_images, val_labels, transform, plan.eval_batch, speed.bf16
                )
                accuracies.append(accuracy)
                losses.append(loss)
            report = EpochReport(
                epoch, config.epochs, accuracy, loss, train_loss, time.perf_counter() - epoch_start
            )
            if on_epoch is not None and on_epoch(report) and epoch < config.epochs:
                stopped = True
                break
        result = TrialResult(
            accuracy=accuracies[-1] if accuracies else math.nan,
            loss=losses[-1] if losses else math.nan,
            epochs_run=epoch,
            seconds=time.perf_counter() - started,
            images_per_second=trained_images / max(train_seconds, 1e-9),
            peak_memory_bytes=peak_memory_bytes(device),
            macs=counted.macs,
            params=counted.params,
            accuracy_per_epoch=tuple(accuracies),
            loss_per_epoch=tuple(losses),
            stopped_early=stopped,
            micro_batch=plan.micro_batch,
            accumulation_steps=plan.accumulation_steps,
            memory_estimate_bytes=plan.estimate_bytes,
            setup_seconds=setup_seconds,
            input=contract,
        )
    if save_dir is not None:
        save_trial(Path(save_dir), spec, model, result)
    return result


def evaluate_weights(
    spec: ArchSpec,
    state: dict[str, torch.Tensor],
    train: ImageData,
    val: ImageData,
    config: TrainConfig,
) -> tuple[float, float]:
    """(accuracy, loss) on ``val`` of trained weights (a ``weights.pt`` state dict), evaluated
    as ``train_trial`` evaluates after an epoch: the same normalisation (from ``train``),
    precision, memory format and evaluation batch, and, when ``config.bn_recalibration_batches``
    asks for it, the BatchNorm recalibration on ``train`` first (with the recalibration's seed,
    so its draws are those of a trial's first epoch). Compares two evaluations of one training."""
    _check_data(spec, train, val)
    device = resolve_device(config.device)
    speed = plan_speed(device, config, len(train))
    plan = plan_memory(spec, train, val, config, speed)
    with speed.active():
        model = build_model(spec)
        model.load_state_dict(state)
        model, runner = speed.prepare(model.to(device))
        images = train.images.to(device)
        transform = _transform(spec, images, device, speed.channels_last)
        if config.bn_recalibration_batches:
            generator = torch.Generator(device=device).manual_seed(config.seed + BN_SEED_OFFSET)
            recalibrate_batchnorm(
                runner, images, transform, config.bn_recalibration_batches,
                plan.micro_batch, generator, speed.bf16,
            )  # fmt: skip
        return evaluate(
            runner, val.images.to(device), val.labels.to(device), transform, plan.eval_batch,
            speed.bf16,
        )  # fmt: skip


def _transform(
    spec: ArchSpec, images: torch.Tensor, device: torch.device, channels_last: bool
) -> BatchTransform:
    """The trial's batch transform: the spec's resolution, normalised by the training images
    (the same contract ``train_trial`` records)."""
    contract = InputContract.of(resolve(spec).resolution, channel_stats(images), spec.classes)
    return contract.transform(device, channels_last=channels_last)


def save_trial(directory: Path, spec: ArchSpec, model: nn.Module, result: TrialResult) -> None:
    """``spec.json`` (re-train with ``search train --spec``), ``weights.pt``, ``result.json``.

    ``spec.json`` holds the spec's fields and, under ``"input"``, the result's input contract
    (``ArchSpec.from_json`` skips it), so the one file says both which network the weights
    build and how to feed it (``search evaluate``)."""
    document = spec.to_dict()
    if result.input is not None:
        document["input"] = result.input.to_dict()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spec.json").write_text(json.dumps(document, sort_keys=True) + "\n")
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        torch.save(state, directory / "weights.pt")
        (directory / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write to --save {str(directory)!r}: {exc.strerror}") from exc


def _check_data(spec: ArchSpec, train: ImageData, val: ImageData) -> None:
    """What only the trainer sees: the spec and the splits it is handed (the CLI's flags were
    checked where they entered)."""
    if spec.classes != train.classes:  # a spec built for another data set, not a user's flag
        raise UserError(
            f"the spec has classes={spec.classes} but {train.name} has {train.classes} classes; "
            f"build the spec with classes={train.classes}"
        )
    if val.classes != train.classes:
        raise UserError(f"{val.name} has {val.classes} classes but {train.name} {train.classes}")
    if len(train) == 0 or len(val) == 0:
        raise UserError(
            f"empty split ({len(train)} training, {len(val)} validation images); "
            "use a larger subset or a larger data set"
        )
