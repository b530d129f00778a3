"""`search train`: train one architecture on a real data set and print its result record.

A thin shell over ``trainers``: load the data set, split off validation, build a
``TrainConfig`` from the flags, call ``train_trial`` with a callback that prints one progress line
per epoch on stderr, and print the record (one JSON object with ``--json``). ``--save DIR`` keeps
``spec.json`` and ``weights.pt`` so that ``search train --spec DIR/spec.json`` re-trains it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from search._options import spec_from_options, spec_options
from space import UserError
from trainers import (
    DATASETS,
    EpochReport,
    TrainConfig,
    load_dataset,
    resolve_device,
    train_trial,
    train_val_split,
)

_DEFAULTS = TrainConfig()


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
@click.option("--label-smoothing", type=float, default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's).")
@click.option(
    "--compile/--no-compile",
    "use_compile",
    default=None,
    help="torch.compile the model [default: only on CUDA for runs long enough to pay it back].",
)
@click.option(
    "--save",
    "save_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write spec.json, weights.pt and result.json to DIR.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def train_command(
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
    save_dir: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Train one architecture on a data set and print validation accuracy, speed and size."""
    config = TrainConfig(
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        batch_size=batch_size,
        lr=lr,
        final_lr=final_lr,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        seed=seed,
        device=str(resolve_device(device)),
        compile=use_compile,
        threads=threads,
    )
    train_data, _ = load_dataset(dataset, data_dir)
    given = options.get("classes")
    if given is not None and given != train_data.classes:
        raise UserError(
            f"--classes {given} does not match {dataset}, which has {train_data.classes} "
            f"classes; leave --classes out to use {train_data.classes}"
        )
    spec = spec_from_options(options, classes=train_data.classes)
    train, val = train_val_split(train_data, val_fraction, seed, subset)
    click.echo(
        f"training {spec.canonical()} on {dataset} ({len(train)} train / {len(val)} val images, "
        f"{config.device}, {epochs} epochs)",
        err=True,
    )
    result = train_trial(spec, train, val, config, on_epoch=_progress, save_dir=save_dir)
    record = {
        "spec": spec.canonical(),
        "spec_id": spec.spec_id,
        "dataset": dataset,
        "train_images": len(train),
        "val_images": len(val),
        "device": config.device,
        "seed": seed,
        **result.to_dict(),
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
        click.echo(f"{key:<20}{shown}")


COMMANDS: list[click.Command] = [train_command]
