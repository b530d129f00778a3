"""The validated configuration of one `search run`, and the part a study must keep.

Everything a user can get wrong is checked here, before any file or database is touched, so a
bad flag never leaves a half-created study behind; every number has a maximum (``common.bounds``)
and every float must be finite. The training numbers that `search train` shares are checked by
the same ``common.bounds.check_training``; only what needs the data set (the subset against its
size, a pinned class count against its classes) is left to the driver, which loads it.
``identity()`` is what the study records in its "config" user attr: re-running under the same
study name with a different identity is refused (see ``search.study.database``), while operational
settings (trials, concurrency, Ray address) may change between a run and its resume. The device
(``cpu`` or ``cuda``, resolved from ``auto`` by the driver: a CUDA trial trains in bf16, a CPU one
in float32) and the data directory are part of the identity: a study written before they were is
resumed with whatever they are now, and remembers them from then on
(``search.study.database.LATE_KEYS``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.bounds import (
    MAX_CONCURRENCY,
    MAX_GPUS_PER_TRIAL,
    MAX_LATENCY_MS,
    MAX_STUDY_NAME,
    MAX_TRIAL_TIMEOUT_S,
    MAX_TRIALS,
    check_budget,
    check_budget_params,
    check_float,
    check_int,
    check_training,
)
from common.errors import UserError
from search.study.database import DEFAULT_STORAGE
from search.study.schema import DEFAULT_OBJECTIVES, OBJECTIVE_SETS
from space.latency import LatencySettings
from space.searchspace import SearchSpace
from trainers.data import check_dataset

STRATEGIES: tuple[str, ...] = ("joint", "two-stage")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DEFAULT_STUDY = "effnas"
MAX_ATTEMPTS_PER_TRIAL = 20  # infeasible candidates allowed per requested trial


def resolved_dir(path: str | None) -> str | None:
    """A data directory as an identity keeps it: absolute, so the same directory given two ways
    is one directory; None (the data set's default location) stays None."""
    return None if path is None else str(Path(path).expanduser().resolve())


def check_running(device: str, gpus_per_trial: float | None, trial_timeout: float | None) -> None:
    """How trials run, checked alike for `search run` and `search final`: the device, its GPU
    share and the time limit."""
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; choose --device from {{{', '.join(DEVICES)}}}")
    if gpus_per_trial is not None:
        check_float("gpus_per_trial", gpus_per_trial, 0.0, MAX_GPUS_PER_TRIAL, "--gpus-per-trial")
    if gpus_per_trial and device == "cpu":
        raise UserError("--gpus-per-trial > 0 needs --device cuda or auto, not --device cpu")
    if trial_timeout is not None:
        check_float(
            "trial_timeout",
            trial_timeout,
            0.0,
            MAX_TRIAL_TIMEOUT_S,
            "--trial-timeout",
            open_low=True,
        )


@dataclass(frozen=True)
class SearchConfig:
    """One search: what to search (identity) and how to run it (operational)."""

    budget_macs: int
    budget_params: int | None = None  # a hard cap on counted parameters, like the MAC budget
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
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES  # accuracy and the costs to minimise
    latency_device: str = "cpu"  # where a candidate's latency is measured
    latency_batch: int = 1
    latency_backend: str = "torch"  # or "onnxruntime"
    latency_budget_ms: float | None = None  # a hard cap on the measured median latency
    latency_resource: str | None = None  # Ray custom resource of the node that measures

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget_macs", check_budget(self.budget_macs))
        if self.budget_params is not None:
            object.__setattr__(self, "budget_params", check_budget_params(self.budget_params))
        check_int("trials", self.trials, 1, MAX_TRIALS, "--trials")
        check_training(
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            subset=self.subset,
            val_fraction=self.val_fraction,
        )
        check_int("concurrency", self.concurrency, 1, MAX_CONCURRENCY, "--concurrency")
        for name, value in (
            ("dataset", self.dataset),
            ("strategy", self.strategy),
            ("device", self.device),
            ("study", self.study),
            ("storage", self.storage),
        ):
            if not isinstance(value, str):
                raise UserError(f"{name}={value!r} must be a string, e.g. --{name} NAME")
        check_dataset(self.dataset, "--dataset")
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy {self.strategy!r}; choose --strategy from "
                f"{{{', '.join(STRATEGIES)}}}"
            )
        check_running(self.device, self.gpus_per_trial, self.trial_timeout)
        if not self.study.strip():
            raise UserError("--study must be a non-empty name, e.g. --study effnas-fmnist")
        if len(self.study) > MAX_STUDY_NAME or not self.study.isprintable():
            raise UserError(
                f"--study must be at most {MAX_STUDY_NAME} printable characters (Optuna's "
                "limit) without line breaks, e.g. --study effnas-fmnist"
            )
        if self.b0:
            self.space.start_point()  # raises when the space excludes B0's coefficients
        self._check_latency()

    def _check_latency(self) -> None:
        listed = isinstance(self.objectives, list | tuple)
        objectives = tuple(self.objectives) if listed else ()
        if objectives not in OBJECTIVE_SETS:
            shown = " | ".join(",".join(o) for o in OBJECTIVE_SETS)
            given = ",".join(map(str, objectives)) if objectives else self.objectives
            raise UserError(f"unknown --objectives {given!r}; choose {shown}")
        object.__setattr__(self, "objectives", objectives)
        self.latency_settings()  # checks device, batch and backend
        if self.latency_budget_ms is not None:
            check_float(
                "latency_budget_ms",
                self.latency_budget_ms,
                0.0,
                MAX_LATENCY_MS,
                "--latency-budget-ms",
                open_low=True,
            )
        resource = self.latency_resource
        if resource is not None and (
            not isinstance(resource, str) or not resource.strip() or not resource.isprintable()
        ):
            raise UserError(
                f"--latency-resource {resource!r} must name a Ray custom resource, e.g. "
                "--latency-resource edge (start that node with ray start --resources "
                "'{\"edge\": 1}')"
            )

    @property
    def uses_latency(self) -> bool:
        """Whether candidates are timed: latency is an objective or has a budget."""
        return "latency" in self.objectives or self.latency_budget_ms is not None

    def latency_settings(self) -> LatencySettings:
        """How every candidate of this search is timed (``space.latency``)."""
        return LatencySettings(
            device=self.latency_device, batch=self.latency_batch, backend=self.latency_backend
        )

    @property
    def max_attempts(self) -> int:
        """Cap on infeasible candidates recorded in one study before the search gives up."""
        return MAX_ATTEMPTS_PER_TRIAL * self.trials

    def identity(self) -> dict[str, Any]:
        """The study's "config" user attr: the keys that make two searches the same search.

        Keys added after the first studies were written are ``None`` (or left out) while they
        keep those studies' behaviour, e.g. no parameter budget, so older studies still resume:
        a missing key compares as ``None`` (``search.study.database.config_changes``)."""
        return {
            "budget_macs": self.budget_macs,
            "budget_params": self.budget_params,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "subset": self.subset,
            "val_fraction": self.val_fraction,
            "batch_size": self.batch_size,
            "strategy": self.strategy,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "b0": self.b0,
            "device": self.device,
            "data_dir": resolved_dir(self.data_dir),
            **self._latency_identity(),
        }

    def _latency_identity(self) -> dict[str, Any]:
        """The objectives and how latency is measured: left out of the identity when they are
        those of every study written before them (MACs, no timing), so those still resume."""
        identity: dict[str, Any] = {}
        if self.objectives != DEFAULT_OBJECTIVES:
            identity["objectives"] = list(self.objectives)
        if self.uses_latency:
            identity["latency"] = {
                **self.latency_settings().to_dict(),
                "budget_ms": self.latency_budget_ms,
                "resource": self.latency_resource,
            }
        return identity

    def replace(self, **changes: Any) -> SearchConfig:
        return dataclasses.replace(self, **changes)

    def weights_path(self, number: int) -> Path | None:
        if self.weights_dir is None:
            return None
        return Path(self.weights_dir).expanduser().resolve() / self.study / f"trial-{number}"
