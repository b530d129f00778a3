"""`search final`: retrain chosen trials of a study with the full recipe and score them once on
the data set's test split (``search.final_config`` says what and why)."""

from __future__ import annotations

import sys
from typing import Any

import click

from common.errors import UserError
from search.cli.run import resume_line
from search.final_config import DEFAULT_VAL_FRACTION, DEFAULT_WEIGHTS_DIR, FinalConfig
from search.study.database import DEFAULT_STORAGE
from trainers.loop import TrainConfig

_RECIPE = TrainConfig()


def parse_trials(text: str | None) -> tuple[int, ...]:
    """``"3,7,12"`` -> ``(3, 7, 12)``; a UserError naming the bad item otherwise."""
    if text is None:
        return ()
    numbers = []
    for item in text.split(","):
        if not item.strip().isdigit():
            raise UserError(
                f"--trials {text!r}: {item.strip()!r} is not a trial number; pass e.g. 3,7,12"
            )
        numbers.append(int(item))
    return tuple(numbers)


@click.command("final")
@click.option("--study", required=True, help="The searched study whose trials to retrain.")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help="SQLAlchemy URL.")
@click.option("--trials", "trial_list", default=None, help="Trial numbers, e.g. 3,7,12.")
@click.option("--top", type=int, default=None, help="The K most accurate trials (by the proxy).")
@click.option("--repeats", type=int, default=1, show_default=True, help="Seeds per network.")
@click.option("--epochs", type=int, default=_RECIPE.epochs, show_default=True)
@click.option("--warmup-epochs", type=int, default=_RECIPE.warmup_epochs, show_default=True)
@click.option("--batch-size", type=int, default=_RECIPE.batch_size, show_default=True)
@click.option("--lr", type=float, default=_RECIPE.lr, show_default=True, help="Peak rate.")
@click.option("--final-lr", type=float, default=_RECIPE.final_lr, show_default=True)
@click.option("--weight-decay", type=float, default=_RECIPE.weight_decay, show_default=True)
@click.option("--label-smoothing", type=float, default=_RECIPE.label_smoothing, show_default=True)
@click.option("--subset", type=int, default=None, help="Train on N images (all if unset).")
@click.option(
    "--val-fraction",
    type=float,
    default=DEFAULT_VAL_FRACTION,
    show_default=True,
    help="Training images held out to choose the final front and best by (never the test "
    "split); 0: none, the proxy chooses.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Finals' seeds derive.")
@click.option("--data-dir", default=None, help="Data set directory (if not the default).")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Finals at once.")
@click.option("--gpus-per-trial", type=float, default=None, help="e.g. 0.5.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda.")
@click.option("--ray-address", default=None, help="Join a running Ray cluster.")
@click.option(
    "--weights-dir",
    default=DEFAULT_WEIGHTS_DIR,
    show_default=True,
    help="Where each final's weights go (for `search export` and `search evaluate`).",
)
@click.option("--trial-timeout", type=float, default=None, help="Stop a final after S s.")
def final_command(trial_list: str | None, **options: Any) -> None:
    """Retrain chosen trials (default: the Pareto front) with the full recipe on the training
    images (less a held-out validation split that chooses among them) and evaluate each once on
    the test split; resumable with the same command."""
    from search.driver.final import run_finals

    config = FinalConfig(trials=parse_trials(trial_list), **options)
    summary = run_finals(config)
    click.echo(summary.table, err=True)
    click.echo(summary.line, err=True)
    if summary.interrupted:
        click.echo(resume_line(config.storage, sys.argv[1:]), err=True)
        sys.exit(130)
