"""`search train`: train one architecture on a real data set and print its result record.

A thin shell over ``trainers``: load the data set, split off validation, build a
``TrainConfig`` from the flags, call ``train_trial`` with a callback that prints one progress line
per epoch on stderr, and print the record (one JSON object with ``--json``). ``--save DIR`` keeps
``spec.json`` and ``weights.pt`` so that ``search train --spec DIR/spec.json`` re-trains it.
``--test`` then evaluates the trained network once on the data set's test split, through the
saved files and the function `search evaluate` runs (``trainers.evaluation``), so the record's
``test_correct`` is what a later ``search evaluate --weights DIR`` counts; without ``--test``
nothing looks at the test split.

The trial never plans for more memory than the machine has: ``memory_limit_bytes`` is
``trainers.device.available_memory_bytes`` of the device (taken before the data set is loaded,
since the trainer counts the data set inside the limit), lowered by ``--max-memory`` less the same
safety margin (a CPU trial's RSS runs above its planned bytes: ``trainers.device``). A network
that does not fit at micro-batch 1, a diverged loss and ``--time-limit`` are one-line errors.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import click

from common.bounds import (
    MAX_EPOCHS,
    MAX_THREADS,
    check_float,
    check_int,
    check_training,
)
from common.errors import InsufficientMemory, TrialError, UserError
from common.units import format_bytes
from search.cli.spec_options import spec_from_options, spec_options
from search.cli.userfiles import output_dir
from trainers import (
    DATASETS,
    EpochReport,
    TrainConfig,
    check_classes,
    check_dataset,
    resolve_device,
    train_trial,
)
from trainers.data import load_splits, validation_split
from trainers.device import available_memory_bytes, cpu_threads, planned_bytes
from trainers.evaluation import evaluate_saved, record_evaluation
from trainers.planning import plan_memory

_DEFAULTS = TrainConfig()
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str, flag: str = "--max-memory") -> int:
    """``'8GiB' -> 8 * 2**30``, ``'500MB' -> 500 * 10**6``; K/M/G/T alone are binary (as in
    ``free -g``); a bare number is bytes. Anything else is a ``UserError``."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UserError(f"{flag} {text!r} is not a memory size; pass e.g. 8GiB, 500MB or 1e9")
    value = float(match.group(1)) * _UNITS[unit]
    if not (math.isfinite(value) and value >= 1):
        raise UserError(f"{flag} {text!r} must be at least 1 byte; pass e.g. 8GiB")
    return int(value)


def check_flags(options: dict[str, Any]) -> None:
    """`search train`'s numbers and data set name, where they enter and before any data is
    loaded: the training numbers it shares with `search run` by the same rule
    (``common.bounds.check_training``), then its own. What needs the data set (the subset
    against its size, ``--classes`` against its classes) is checked once it is loaded."""
    check_dataset(options["dataset"], "--dataset")
    check_training(
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        seed=options["seed"],
        subset=options["subset"],
        val_fraction=options["val_fraction"],
    )
    check_int("warmup_epochs", options["warmup_epochs"], 0, MAX_EPOCHS, "--warmup-epochs")
    if options["threads"] is not None:
        check_int("threads", options["threads"], 1, MAX_THREADS, "--threads")
    check_float("lr", options["lr"], 0.0, math.inf, "--lr", open_low=True)
    check_float("final_lr", options["final_lr"], 0.0, math.inf, "--final-lr")
    check_float("weight_decay", options["weight_decay"], 0.0, math.inf, "--weight-decay")
    check_float(
        "label_smoothing", options["label_smoothing"], 0.0, 1.0, "--label-smoothing", open_high=True
    )
    if options["time_limit"] is not None:
        check_float(
            "time_limit", options["time_limit"], 0.0, math.inf, "--time-limit", open_low=True
        )


def _progress(report: EpochReport) -> bool:
    click.echo(
        f"epoch {report.epoch}/{report.epochs}  val_acc {report.accuracy:.4f}  "
        f"val_loss {report.loss:.4f}  train_loss {report.train_loss:.4f}  "
        f"{report.seconds:.1f}s",
        err=True,
    )
    return False


@click.command("train")
@spec_options
@click.option(
    "--dataset",
    type=str,
    default="fashion-mnist",
    show_default=True,
    help=f"Data set: {' | '.join(DATASETS)}.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data set directory (default for fashion-mnist: the Debian package's).",
)
@click.option("--epochs", type=int, default=_DEFAULTS.epochs, show_default=True)
@click.option("--warmup-epochs", type=int, default=_DEFAULTS.warmup_epochs, show_default=True)
@click.option(
    "--subset",
    type=int,
    default=None,
    help="Use only N training images (validation is --val-fraction of them).",
)
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option(
    "--device", type=str, default="auto", show_default=True, help="cpu | cuda | cuda:N | auto."
)
@click.option("--batch-size", type=int, default=_DEFAULTS.batch_size, show_default=True)
@click.option("--lr", type=float, default=_DEFAULTS.lr, show_default=True, help="Peak rate.")
@click.option("--final-lr", type=float, default=_DEFAULTS.final_lr, show_default=True)
@click.option("--weight-decay", type=float, default=_DEFAULTS.weight_decay, show_default=True)
@click.option("--label-smoothing", type=float, default=_DEFAULTS.label_smoothing, show_default=True)
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's).")
@click.option(
    "--compile/--no-compile",
    "use_compile",
    default=None,
    help="torch.compile the model [default: only on CUDA for runs long enough to pay it back].",
)
@click.option(
    "--max-memory",
    "max_memory",
    type=str,
    default=None,
    help="Most memory the trial may use, e.g. 8GiB or 500MB (default: what the device has "
    "available); it plans for 35 % of it on the CPU, 90 % on CUDA, and larger networks "
    "train in micro-batches.",
)
@click.option(
    "--time-limit",
    "time_limit",
    type=float,
    default=None,
    help="Stop with an error after this many seconds (checked between steps).",
)
@click.option(
    "--save",
    "save_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write spec.json, weights.pt and result.json to DIR.",
)
@click.option(
    "--test",
    "test",
    is_flag=True,
    help="After training, evaluate once on the data set's test split (test_accuracy, "
    "test_correct, test_images in the record and result.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def train_command(save_dir: Path | None, **flags: Any) -> None:
    """Train one architecture on a data set and print validation accuracy, speed and size."""
    check_flags(flags)
    with output_dir(save_dir, "--save") as made:  # an unwritable place is refused up front
        _train(save_dir=made, **flags)


def _train(
    dataset: str,
    data_dir: Path | None,
    epochs: int,
    warmup_epochs: int,
    subset: int | None,
    val_fraction: float,
    device: str,
    batch_size: int,
    lr: float,
    final_lr: float,
    weight_decay: float,
    label_smoothing: float,
    seed: int,
    threads: int | None,
    use_compile: bool | None,
    max_memory: str | None,
    time_limit: float | None,
    save_dir: Path | None,
    test: bool,
    as_json: bool,
    **options: Any,
) -> None:
    """`search train` once its flags are checked and its destination exists."""
    torch_device = resolve_device(device)
    limit = available_memory_bytes(torch_device)
    if max_memory is not None:
        limit = min(limit, planned_bytes(torch_device, parse_size(max_memory)))
    config = TrainConfig(
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        batch_size=batch_size,
        lr=lr,
        final_lr=final_lr,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        seed=seed,
        device=str(torch_device),
        compile=use_compile,
        threads=threads,
        memory_limit_bytes=max(1, limit),
        time_limit_s=time_limit,
    )
    train_data, test_data, own_val = load_splits(dataset, data_dir)
    classes = check_classes(options.get("classes"), train_data, dataset, "--classes")
    spec = spec_from_options(options, classes=classes)
    train, val = validation_split(
        train_data, own_val, val_fraction, seed, subset, subset_setting="--subset"
    )
    try:
        plan = plan_memory(spec, train, val, config)
    except InsufficientMemory as exc:
        raise UserError(f"{exc}; pass a larger --max-memory or train a smaller network") from exc
    click.echo(
        f"training {spec.canonical()} on {dataset} ({len(train)} train / {len(val)} val images, "
        f"{config.device}, {epochs} epochs, micro-batch {plan.micro_batch} x "
        f"{plan.accumulation_steps}, memory {format_bytes(plan.estimate_bytes)} of "
        f"{format_bytes(limit)})",
        err=True,
    )
    with contextlib.ExitStack() as stack:
        target = save_dir
        if test and target is None:  # the test evaluation reads the saved files
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="effnas-")))
        try:
            result = train_trial(spec, train, val, config, on_epoch=_progress, save_dir=target)
        except TrialError as exc:
            raise UserError(str(exc)) from exc
        tested: dict[str, Any] = {}
        if test and target is not None:
            with cpu_threads(threads):
                _, evaluation = evaluate_saved(target, test_data, torch_device)
            tested = evaluation.to_dict()
            if save_dir is not None:
                record_evaluation(save_dir, evaluation)
    record = {
        "spec": spec.canonical(),
        "spec_id": spec.spec_id,
        "dataset": dataset,
        "train_images": len(train),
        "val_images": len(val),
        "device": config.device,
        "seed": seed,
        **result.to_dict(),
        **tested,
    }
    if save_dir is not None:
        record["weights_dir"] = str(save_dir)
    if as_json:
        click.echo(json.dumps(record))
        return
    for key, value in record.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        if key.endswith("_per_epoch"):
            shown = " ".join(f"{v:.4f}" for v in value)
        if isinstance(value, dict):
            shown = json.dumps(value)
        click.echo(f"{key:<22}{shown}")
