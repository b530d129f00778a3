"""`run_search(config) -> SearchSummary`: validate, open the study, run Ray Tune, summarise.

Order matters (issue 6, item 9): everything a user can get wrong (flags, space, data set, budget
below the smallest network, storage URL, a file that is not a study database, a study that holds
a different search, a Ray address that cannot be joined) is checked before the database is
created or written. Then the study is created or loaded, trials a killed run left RUNNING are
failed as "interrupted" and re-queued, and Ray Tune runs the remaining trials with
:class:`~search.searcher.StudySearcher` and ASHA.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import optuna

from search.config import SearchConfig
from search.ledger import Counts, best_accuracy, pareto_front, recover_stale
from search.planner import Planner
from search.progress import Progress, summary_table
from search.ray_session import ray_session
from search.searcher import StudySearcher
from search.storage import (
    DIRECTIONS,
    METRIC_NAMES,
    check_compatible,
    check_database,
    find_study,
    open_storage,
)
from search.trainable import TrialSettings
from search.worker_env import trial_worker_env
from space import UserError, count_spec
from trainers.data import ImageData, load_dataset, train_val_split


@dataclass(frozen=True)
class SearchSummary:
    study: str
    storage: str
    counts: Counts
    best_accuracy: float | None
    pareto: tuple[int, ...]
    table: str
    interrupted: bool = False
    note: str | None = None
    recovered: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Resources:
    device: str
    threads: int
    gpus_per_trial: float
    num_gpus: int


def run_search(config: SearchConfig, stream: TextIO | None = None) -> SearchSummary:
    """Run (or resume) the search described by ``config``; returns the final tally."""
    stream = stream or sys.stderr
    check_database(config.storage)
    resources = _resources(config)
    train, val, classes = _load_data(config)
    _check_budget(config, classes)
    existing = find_study(config.storage, config.study)
    if existing is not None:
        check_compatible(existing, config.identity(), config.storage)

    data_bytes = sum(t.images.numel() + t.labels.numel() * 8 for t in (train, val))
    worker_env = trial_worker_env(  # OpenMP waiting, CUDA MPS (search.worker_env)
        resources.device, resources.gpus_per_trial, config.ray_address, stream
    )
    with (
        worker_env,
        ray_session(
            config.ray_address,
            num_cpus=resources.threads * config.concurrency,
            num_gpus=resources.num_gpus if resources.device == "cuda" else 0,
            object_store_bytes=3 * data_bytes + 64 * 2**20,
        ),
    ):
        study = _open_study(config, created=existing is None)
        _refuse_live_driver(study, config)
        recovered = tuple(recover_stale(study, config.seed))
        if recovered:
            stream.write(
                f"re-queued trial(s) {list(recovered)} left running by an interrupted run\n"
            )
        planner = Planner(config, classes)
        remaining = config.trials - Counts.of(study.get_trials(deepcopy=False)).done
        interrupted = False
        if remaining > 0:
            progress = Progress(study, config.trials, stream)
            searcher = StudySearcher(study, planner, progress)
            interrupted = _tune(config, searcher, train, val, resources, remaining)
            progress.close()
    trials = study.get_trials(deepcopy=False)
    return SearchSummary(
        study=config.study,
        storage=config.storage,
        counts=Counts.of(trials),
        best_accuracy=best_accuracy(trials),
        pareto=tuple(t.number for t in pareto_front(trials)),
        table=summary_table(trials),
        interrupted=interrupted,
        note=planner.note,
        recovered=recovered,
    )


# ----- validation before the database is touched ----------------------------------------------
def _resources(config: SearchConfig) -> _Resources:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = config.device
    if device == "auto":
        device = "cuda" if gpus or (config.ray_address and config.gpus_per_trial) else "cpu"
    if device == "cuda" and not gpus and not config.ray_address:
        raise UserError("--device cuda but no CUDA GPU is visible; pass --device cpu (or auto)")
    per_trial = 0.0
    if device == "cuda":
        per_trial = config.gpus_per_trial
        if per_trial is None:
            # on a joined cluster the driver may have no GPU: one GPU per trial, Ray spreads them;
            # locally the concurrent trials share the visible GPUs
            per_trial = 1.0 if config.ray_address else min(1.0, max(gpus, 1) / config.concurrency)
        if per_trial <= 0:
            raise UserError("--device cuda needs --gpus-per-trial > 0 (e.g. 0.25 shares a GPU)")
    # local: the machine's cores split between the concurrent trials; on a joined cluster, one
    # CPU per trial (its nodes' sizes are unknown here, and a trial must fit on one node)
    threads = 1 if config.ray_address else max(1, (os.cpu_count() or 1) // config.concurrency)
    return _Resources(device, threads, per_trial, gpus)


def _load_data(config: SearchConfig) -> tuple[ImageData, ImageData, int]:
    full_train, _test = load_dataset(config.dataset, config.data_dir)
    train, val = train_val_split(full_train, config.val_fraction, config.seed, config.subset)
    pinned = config.space.pins.get("classes")
    if pinned is not None and pinned != full_train.classes:
        raise UserError(
            f"--classes {pinned} does not match {config.dataset}, which has "
            f"{full_train.classes} classes; drop --classes"
        )
    return train, val, full_train.classes


def _check_budget(config: SearchConfig, classes: int) -> None:
    smallest = config.space.smallest_spec(classes)
    macs = count_spec(smallest).macs
    if macs > config.budget_macs:
        raise UserError(
            f"--budget-flops {config.budget_macs:.4g} is below the smallest network in the space "
            f"({macs:,} MACs: {smallest.canonical()}); raise the budget or narrow the space to "
            "cheaper options (--block standard, --expansion 1, --resolution 32)"
        )


# ----- the study ----------------------------------------------------------------------------------
def _open_study(config: SearchConfig, created: bool) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(config.storage)
    previous = 0
    if not created:
        previous = len(optuna.load_study(study_name=config.study, storage=storage).trials)
    # TPE handles two objectives and (group=True) the conditional se_ratio / experts; the seed is
    # offset by the trials already in the study so a resume doesn't replay the same samples.
    sampler = optuna.samplers.TPESampler(
        seed=config.seed + previous,
        multivariate=True,
        group=True,
        constant_liar=True,
    )
    study = optuna.create_study(
        study_name=config.study,
        storage=storage,
        sampler=sampler,
        directions=list(DIRECTIONS),
        load_if_exists=not created,
    )
    if created:
        from importlib.metadata import version

        study.set_metric_names(METRIC_NAMES)
        study.set_user_attr("config", config.identity())
        study.set_user_attr("effnas_version", version("effnas"))
        if config.b0:
            params, attrs = config.space.start_point()
            stage = "phi1" if config.strategy == "two-stage" else "joint"
            study.enqueue_trial(params, user_attrs={**attrs, "stage": stage})
    return study


def _refuse_live_driver(study: optuna.Study, config: SearchConfig) -> None:
    """Two drivers writing one study would corrupt the resume logic: refuse the second one."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        driver: dict[str, Any] = trial.user_attrs.get("driver") or {}
        pid = driver.get("pid")
        if driver.get("host") == host and isinstance(pid, int) and pid != os.getpid():
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):
                continue
            raise UserError(
                f"study {config.study!r} is being searched right now by process {pid} on "
                f"{host}; wait for it to finish or pass another --study"
            )


# ----- Ray Tune ---------------------------------------------------------------------------------
def _tune(
    config: SearchConfig,
    searcher: StudySearcher,
    train: ImageData,
    val: ImageData,
    resources: _Resources,
    remaining: int,
) -> bool:
    """Run Ray Tune until the study has its trials; True when stopped by Ctrl-C / SIGTERM."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter

    from search.overhead import run_measured_trial
    from search.shared_data import SharedData

    class _StopOnSignal(tune.Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return searcher.interrupted

    weights = config.weights_path(0)
    settings = TrialSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        device=resources.device,
        threads=resources.threads,
        weights_root=str(weights.parent) if weights else None,
    )
    trainable = tune.with_resources(
        # the split goes to the object store once; workers cache it (search.shared_data)
        tune.with_parameters(
            run_measured_trial, data=SharedData.put(train, val), settings=settings
        ),
        {"cpu": resources.threads, "gpu": resources.gpus_per_trial},
    )
    scheduler = ASHAScheduler(
        time_attr="epoch",
        metric="accuracy",
        mode="max",
        max_t=config.epochs,
        grace_period=1,
    )
    storage_dir = tempfile.mkdtemp(prefix="effnas-ray-")
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=config.concurrency),
                scheduler=scheduler,
                num_samples=remaining,
                reuse_actors=True,  # one worker process per slot: torch imports once
            ),
            run_config=tune.RunConfig(
                name=f"effnas-{config.study}",
                storage_path=storage_dir,
                verbose=0,
                stop=_StopOnSignal(),
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        with _signals(searcher):
            tuner.fit()
    finally:
        interrupted = searcher.interrupted
        searcher.interrupt_live()
        _remove_tree(storage_dir)
    return interrupted


@contextmanager
def _signals(searcher: StudySearcher) -> Iterator[None]:
    """First Ctrl-C / SIGTERM: stop Ray gracefully (trials become "interrupted"); second: abort."""

    def handler(signum: int, frame: Any) -> None:
        if searcher.interrupted:
            raise KeyboardInterrupt
        searcher.interrupted = True
        sys.stderr.write("\nstopping: running trials will be re-queued (Ctrl-C again to abort)\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
