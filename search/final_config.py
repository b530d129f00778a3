"""The validated configuration of one `search final`: which trials to retrain, and the recipe.

A search ranks networks by short trials on a validation split carved out of the training images;
`search final` answers what the ranking cannot: how accurate a chosen network is after real
training, on images no trial ever saw (the data set's own test split). It retrains the chosen
trials of a study from scratch with the design's recipe (docs/design.md section 6, `search
train`'s defaults) on the training images less a held-out validation split (``val_fraction``,
default 0.1; the data set's labelled ``val/`` where it has one), ``repeats`` times with different
seeds for a mean and a spread, and stores every final in the companion study ``S:final``
(``search.study.schema``). The validation split chooses the final front and best; the test
split only measures (``reports.finals``).

Like ``SearchConfig``, everything a user can get wrong is checked here before any database is
touched. ``identity()`` is the recipe the companion study remembers: running `search final` again
with another recipe is refused, because finals trained two ways cannot be averaged (the device,
cpu or cuda, is part of it: a CUDA final trains in bf16, a CPU one in float32; so are the data
directory and the held-out fraction); which trials and how many repeats may grow between runs
(new finals are added, finished ones kept).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.bounds import (
    MAX_CONCURRENCY,
    MAX_EPOCHS,
    MAX_REPEATS,
    MAX_STUDY_NAME,
    MAX_TRIALS,
    MAX_VAL_FRACTION,
    check_float,
    check_int,
    check_training,
)
from common.errors import UserError
from search.config import check_running, resolved_dir
from search.study.database import DEFAULT_STORAGE
from search.study.schema import final_study_name
from trainers.loop import TrainConfig

_RECIPE = TrainConfig()  # the design's recipe: `search train`'s defaults
DEFAULT_WEIGHTS_DIR = "final-weights"
DEFAULT_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class FinalConfig:
    """`search final`: the study, the trials to retrain (``trials`` or ``top``; neither: its
    Pareto front), the recipe (``epochs`` ... ``label_smoothing``, ``subset``, ``seed``) and how
    to run (concurrency, device, Ray). ``data_dir`` is needed for data sets without a default
    location; the data set itself is the searched study's."""

    study: str
    storage: str = DEFAULT_STORAGE
    trials: tuple[int, ...] = ()
    top: int | None = None
    repeats: int = 1
    epochs: int = _RECIPE.epochs
    warmup_epochs: int = _RECIPE.warmup_epochs
    batch_size: int = _RECIPE.batch_size
    lr: float = _RECIPE.lr
    final_lr: float = _RECIPE.final_lr
    weight_decay: float = _RECIPE.weight_decay
    label_smoothing: float = _RECIPE.label_smoothing
    subset: int | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION  # training images held out to choose by; 0: none
    seed: int = 0
    data_dir: str | None = None
    concurrency: int = 1
    gpus_per_trial: float | None = None
    device: str = "auto"
    ray_address: str | None = None
    weights_dir: str = DEFAULT_WEIGHTS_DIR
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.study, str) or not self.study.strip():
            raise UserError("--study must name the searched study, e.g. --study quick")
        if len(self.study) > MAX_STUDY_NAME or not self.study.isprintable():
            raise UserError(f"--study must be at most {MAX_STUDY_NAME} printable characters")
        check_training(
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            subset=self.subset,
            val_fraction=0.1,  # checked below: a final may hold out nothing (0)
        )
        check_float("val_fraction", self.val_fraction, 0.0, MAX_VAL_FRACTION, "--val-fraction")
        check_int("warmup_epochs", self.warmup_epochs, 0, MAX_EPOCHS, "--warmup-epochs")
        check_int("repeats", self.repeats, 1, MAX_REPEATS, "--repeats")
        check_int("concurrency", self.concurrency, 1, MAX_CONCURRENCY, "--concurrency")
        check_float("lr", self.lr, 0.0, 10.0, "--lr", open_low=True)
        check_float("final_lr", self.final_lr, 0.0, 10.0, "--final-lr")
        check_float("weight_decay", self.weight_decay, 0.0, 1.0, "--weight-decay")
        check_float("label_smoothing", self.label_smoothing, 0.0, 0.99, "--label-smoothing")
        if self.trials and self.top is not None:
            raise UserError("pass --trials N,M,... or --top K, not both")
        for number in self.trials:
            check_int("trials", number, 0, 10**9, "--trials as trial numbers")
        if self.top is not None:
            check_int("top", self.top, 1, MAX_TRIALS, "--top")
        check_running(self.device, self.gpus_per_trial, self.trial_timeout)
        if not isinstance(self.weights_dir, str) or not self.weights_dir.strip():
            raise UserError("--weights-dir must be a directory path, e.g. --weights-dir weights")

    @property
    def final_study(self) -> str:
        """The companion study that holds the finals."""
        return final_study_name(self.study)

    def identity(self) -> dict[str, Any]:
        """The recipe the companion study remembers (its "config" attr)."""
        return {
            "source_study": self.study,
            "epochs": self.epochs,
            "warmup_epochs": self.warmup_epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "final_lr": self.final_lr,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
            "subset": self.subset,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "device": self.device,
            "data_dir": resolved_dir(self.data_dir),
        }

    def recipe(self) -> dict[str, Any]:
        """The ``TrainConfig`` fields a final sets beyond a search trial's."""
        return {
            "warmup_epochs": self.warmup_epochs,
            "lr": self.lr,
            "final_lr": self.final_lr,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
        }

    def weights_root(self) -> Path:
        """Where the finals' weights go: one folder per final trial below this."""
        return Path(self.weights_dir).expanduser().resolve() / self.final_study.replace(":", "-")

    def replace(self, **changes: Any) -> FinalConfig:
        return dataclasses.replace(self, **changes)
