"""The validated configuration of one `search run` (issue 6), and the part a study must keep.

Everything a user can get wrong is checked here, before any file or database is touched, so a
bad flag never leaves a half-created study behind. ``identity()`` is what the study records in
its "config" user attr: re-running under the same study name with a different identity is
refused (see ``search.storage``), while operational settings (trials, concurrency, device, Ray
address) may change between a run and its resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from space import UserError
from space.searchspace import SearchSpace
from trainers.data import DATASETS

STRATEGIES: tuple[str, ...] = ("joint", "two-stage")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DEFAULT_STORAGE = "sqlite:///search.db"
DEFAULT_STUDY = "effnas"
MAX_ATTEMPTS_PER_TRIAL = 20  # infeasible candidates allowed per requested trial
MAX_TRIAL_TIMEOUT_S = 7 * 24 * 3600.0  # --trial-timeout: a week


@dataclass(frozen=True)
class SearchConfig:
    """One search: what to search (identity) and how to run it (operational)."""

    budget_macs: int
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    trials: int = 20
    epochs: int = 5
    subset: int | None = None
    val_fraction: float = 0.1
    batch_size: int = 256
    study: str = DEFAULT_STUDY
    storage: str = DEFAULT_STORAGE
    concurrency: int = 1
    gpus_per_trial: float | None = None
    device: str = "auto"
    seed: int = 0
    space: SearchSpace = field(default_factory=SearchSpace)
    strategy: str = "joint"
    ray_address: str | None = None
    b0: bool = False
    weights_dir: str | None = None
    trial_timeout: float | None = None  # seconds; the driver stops a trial that runs longer

    def __post_init__(self) -> None:
        if not math.isfinite(self.budget_macs) or self.budget_macs <= 0:
            raise UserError(
                f"--budget-flops {self.budget_macs!r} is not a positive number of MACs; "
                "pass e.g. --budget-flops 3e8"
            )
        _positive("trials", self.trials, "--trials 20")
        _positive("epochs", self.epochs, "--epochs 5")
        _positive("concurrency", self.concurrency, "--concurrency 2")
        _positive("batch_size", self.batch_size, "--batch-size 256")
        if self.subset is not None:
            _positive("subset", self.subset, "--subset 1000")
        if self.dataset not in DATASETS:
            raise UserError(
                f"unknown dataset {self.dataset!r}; choose --dataset from {{{', '.join(DATASETS)}}}"
            )
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy {self.strategy!r}; choose --strategy from "
                f"{{{', '.join(STRATEGIES)}}}"
            )
        if self.device not in DEVICES:
            raise UserError(
                f"unknown device {self.device!r}; choose --device from {{{', '.join(DEVICES)}}}"
            )
        if self.gpus_per_trial is not None and not (0.0 <= self.gpus_per_trial <= 8.0):
            raise UserError(
                f"--gpus-per-trial {self.gpus_per_trial!r} must lie in [0, 8] "
                "(e.g. 0.25 lets four trials share one GPU)"
            )
        if self.gpus_per_trial and self.device == "cpu":
            raise UserError("--gpus-per-trial > 0 needs --device cuda or auto, not --device cpu")
        if not (0.0 < self.val_fraction < 1.0):
            raise UserError(f"val_fraction={self.val_fraction!r} must lie in (0, 1), e.g. 0.1")
        if self.trial_timeout is not None and not (
            isinstance(self.trial_timeout, int | float)
            and 0 < self.trial_timeout <= MAX_TRIAL_TIMEOUT_S
        ):
            raise UserError(
                f"--trial-timeout {self.trial_timeout!r} must be a number of seconds in "
                f"(0, {MAX_TRIAL_TIMEOUT_S:.0f}] (a week), e.g. --trial-timeout 3600"
            )
        if not self.study.strip():
            raise UserError("--study must be a non-empty name, e.g. --study effnas-fmnist")
        if self.b0:
            self.space.start_point()  # raises when the space excludes B0's coefficients
        object.__setattr__(self, "budget_macs", int(self.budget_macs))

    @property
    def max_attempts(self) -> int:
        """Cap on infeasible candidates recorded in one study before the search gives up."""
        return MAX_ATTEMPTS_PER_TRIAL * self.trials

    def identity(self) -> dict[str, Any]:
        """The study's "config" user attr: the keys that make two searches the same search."""
        return {
            "budget_macs": self.budget_macs,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "subset": self.subset,
            "val_fraction": self.val_fraction,
            "batch_size": self.batch_size,
            "strategy": self.strategy,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "b0": self.b0,
        }

    def weights_path(self, number: int) -> Path | None:
        if self.weights_dir is None:
            return None
        return Path(self.weights_dir).expanduser().resolve() / self.study / f"trial-{number}"


def _positive(name: str, value: Any, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name}={value!r} must be a positive integer (>= 1), e.g. {example}")
