"""The sane maxima of every numeric `search` option, with the reason for each.

A value above its maximum is one ``UserError`` line naming the maximum, raised before any file,
database or Ray runtime is touched. The budget's maximum lives beside ``fit_phi`` in
``space.fit`` (``MAX_BUDGET_MACS``); phi's and the resolution's beside ``ArchSpec`` in
``space.spec`` (``MAX_PHI`` = 8, ``MAX_RESOLUTION`` = 1024 px). The README's "Limits" table
repeats these numbers.

- ``MAX_EPOCHS`` = 1000: EfficientNet's ImageNet recipe trains 350 epochs (Tan & Le 2019, sec. 5.2)
  and a search trial is a short proxy run; more than 1000 is a typo, not a search.
- ``MAX_TRIALS`` = 10,000: Optuna's TPE refits its Parzen estimators on every finished trial for
  each suggestion, so past ~10^4 trials a suggestion takes seconds; the search also allows up to
  20 infeasible candidates per requested trial (``MAX_ATTEMPTS_PER_TRIAL``).
- ``MAX_SUBSET`` = 10,000,000 images: a trial holds its whole data set on the device as uint8
  (10^7 CIFAR-sized images are 30 GB); ImageNet-1k has 1.28 M training images.
- ``MAX_BATCH_SIZE`` = 65,536: the largest batches in the large-batch literature (LARS / LAMB
  trained ImageNet and BERT at 32k-64k, You et al. 2017, 2020).
- ``MAX_CONCURRENCY`` = 1024: one Ray worker process per running trial, each ~0.5 GB before it
  trains; 1024 exceeds any cluster this tool targets.
- ``MAX_GPUS_PER_TRIAL`` = 8: a trial runs in one process on one node, and nodes have <= 8 GPUs.
- ``MAX_VAL_FRACTION`` = 0.5: the held-out split is a sample for ranking candidates; past half
  of the images it starves the training split it is meant to judge.
- ``MAX_SEED`` = 2**31 - 1: Optuna's samplers seed NumPy, which takes seeds below 2**32; the
  search derives seeds by adding trial counts, so the user's seed keeps 2**31 of headroom.
- ``MAX_THREADS`` = 1024 CPU threads per `search train` (no machine this tool targets has more).
- ``MAX_STUDY_NAME`` = 512 characters: Optuna's ``studies.study_name`` column length.
- ``MAX_TRIAL_TIMEOUT_S`` = one week: ``--trial-timeout`` guards against hung trials; a search
  trial is a short proxy run, so a longer limit is no limit.

Every float must be finite: NaN and infinity are refused by name.
"""

from __future__ import annotations

import math
from typing import Any

from common.errors import UserError

MAX_EPOCHS = 1000
MAX_TRIALS = 10_000
MAX_SUBSET = 10_000_000
MAX_BATCH_SIZE = 65_536
MAX_CONCURRENCY = 1024
MAX_GPUS_PER_TRIAL = 8.0
MAX_VAL_FRACTION = 0.5
MAX_SEED = 2**31 - 1
MAX_THREADS = 1024
MAX_STUDY_NAME = 512
MAX_TRIAL_TIMEOUT_S = 7 * 24 * 3600.0


def check_int(name: str, value: Any, low: int, high: int, flag: str) -> int:
    """``value`` as an int in [low, high], or a UserError naming the range (and so the maximum)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise UserError(
            f"{name}={value!r} is out of range; pass {flag} as an integer in [{low}, {high}]"
        )
    return value


def check_float(
    name: str, value: Any, low: float, high: float, flag: str, *, open_low: bool = False
) -> float:
    """``value`` as a finite float in [low, high] (``(low, high]`` with ``open_low``)."""
    number = _finite_number(name, value, flag)
    above_low = number > low if open_low else number >= low
    if not (above_low and number <= high):
        bracket = "(" if open_low else "["
        raise UserError(
            f"{name}={value!r} is out of range; pass {flag} as a number in "
            f"{bracket}{low:g}, {high:g}]"
        )
    return number


def check_finite(name: str, value: Any, flag: str) -> float:
    """A finite number (no range): NaN, infinity and non-numbers are refused."""
    return _finite_number(name, value, flag)


def _finite_number(name: str, value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name}={value!r} is not a number; pass {flag} as a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float (TOML and JSON allow them)
        finite = False
    if not finite:
        raise UserError(f"{name}={value!r} is not a finite number; pass {flag} as a finite number")
    return float(value)


def check_train_options(options: dict[str, Any]) -> None:
    """`search train`'s numbers: the same maxima as `search run`, and finite floats."""
    check_int("epochs", options["epochs"], 1, MAX_EPOCHS, "--epochs")
    check_int("warmup_epochs", options["warmup_epochs"], 0, MAX_EPOCHS, "--warmup-epochs")
    check_int("batch_size", options["batch_size"], 1, MAX_BATCH_SIZE, "--batch-size")
    check_int("seed", options["seed"], 0, MAX_SEED, "--seed")
    if options["subset"] is not None:
        check_int("subset", options["subset"], 2, MAX_SUBSET, "--subset")
    if options["threads"] is not None:
        check_int("threads", options["threads"], 1, MAX_THREADS, "--threads")
    check_float(
        "val_fraction",
        options["val_fraction"],
        0.0,
        MAX_VAL_FRACTION,
        "--val-fraction",
        open_low=True,
    )
    for name in ("lr", "final_lr", "weight_decay", "label_smoothing"):
        check_finite(name, options[name], f"--{name.replace('_', '-')}")
