"""`run_search(config) -> SearchSummary`: validate, open the study, run Ray Tune, summarise.

Order matters: everything a user can get wrong (flags, space, data set, budget
below the smallest network, storage URL, a file that is not a study database, a study that holds
a different search, a Ray address that cannot be joined) is checked before the database is
created or written. Then the study is created or loaded (two drivers creating it at once: the
loser loads it), trials left RUNNING by a driver that is gone are failed as "interrupted" and
re-queued (``search.study.lease`` tells them from the live trials of other drivers, on any host),
and an executor (``search.driver.executor``) runs the remaining trials with
:class:`~search.driver.searcher.StudySearcher` and multi-objective ASHA
(``search.strategy.scheduler``): Ray Tune for `search run` (``search.driver.ray_tune``), or one
trial after another in this process (``search.driver.inline``) for benchmarks and tests.

Faults: a trial's failure is that trial's FAIL with a one-line reason, never the end
of the search; a storage error (a full disk) ends the search with one line (exit 2) and loses
nothing: the study stays readable, and the next run recovers the trials it left RUNNING.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.storages import RDBStorage
from sqlalchemy.exc import IntegrityError

from common.errors import UserError
from search.config import SearchConfig
from search.driver.estimate import (
    Estimate,
    Throughput,
    estimate,
    mean_search_macs,
    measure_throughput,
    store_throughput,
    stored_throughput,
)
from search.driver.executor import Executor, Resources, Work
from search.driver.latency import (
    check_latency_here,
    check_loaded_study,
    check_timing,
    has_timing_record,
    latency_measure,
    timing_line,
    timing_machine,
)
from search.driver.progress import Progress, summary_table
from search.driver.ray_session import driver_log
from search.driver.searcher import STORAGE_ERRORS, StudySearcher
from search.driver.watch import TrialWatch
from search.final_config import FinalConfig
from search.strategy.planner import Planner
from search.strategy.sampler import SAMPLERS, make_sampler
from search.strategy.seeding import TrialSeededSampler
from search.study import schema
from search.study.database import (
    ExistingStudy,
    StorageFault,
    adopt_late_keys,
    check_compatible,
    check_database,
    error_chain,
    find_study,
    open_storage,
    storage_fault,
)
from search.study.front import best_accuracy, pareto_front
from search.study.latency import timing_record
from search.study.lease import Lease, lease_times
from search.study.schema import Counts, directions_for
from search.study.snapshot import SnapshotStorage
from search.study.urls import parse_url, sqlite_path
from search.worker.faults import one_line
from search.worker.trial import TrialSettings
from space import ArchSpec, count_spec
from trainers.data import ImageData, check_classes, load_splits, validation_split


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
class Baseline:
    """How a benchmark's baseline differs from this search; `search run` always uses the
    defaults and has no flag for any: ``sampler`` "random" samples at random instead of the
    multi-objective TPE ("gp": Optuna's Gaussian-process sampler, "nsga2": NSGA-II), ``opening``
    False leaves out the opening trials of a new study, ``fill_every`` sets how often the joint
    strategy fills the front's widest gap (``search.strategy.planner``; 0: never)."""

    sampler: str = "tpe"
    opening: bool = True
    fill_every: int = 0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose from {SAMPLERS}")


THIS_SEARCH = Baseline()


def run_search(
    config: SearchConfig,
    stream: TextIO | None = None,
    executor: str | Executor = "ray",
    baseline: Baseline = THIS_SEARCH,
) -> SearchSummary:
    """Run (or resume) the search described by ``config``; returns the final tally.

    ``executor`` runs the trials: "ray" (Ray Tune, what `search run` uses), "inline" (one
    after another in this process, ``search.driver.inline``) or an executor object, e.g. an
    ``InlineExecutor`` with a benchmark's options. ``baseline`` is for benchmarks only."""
    stream = stream or sys.stderr
    runner = make_executor(executor)
    renew_s, lease_s = lease_times()
    check_database(config.storage)
    resources = resources_for(config)
    config = config.replace(device=resources.device)  # the identity keeps what trains: cpu/cuda
    train, val, classes = _load_data(config)
    _check_budget(config, classes)
    check_latency_here(config)
    existing = find_study(config.storage, config.study)
    if existing is not None:
        check_compatible(existing, config.identity(), config.storage, config.objectives)
    local_timing = config.uses_latency and config.latency_resource is None
    timing = timing_machine(config) if local_timing else None
    if timing is not None:  # refused before Ray starts; a named node is asked inside the session
        check_timing(config, timing, existing is not None)

    data_bytes = sum(t.images.numel() + t.labels.numel() * 8 for t in (train, val))
    planner = Planner(config, classes, fill_every=baseline.fill_every)
    searcher: StudySearcher | None = None
    interrupted = False
    with runner.session(config, resources, data_bytes, stream):
        planner.measure = latency_measure(config)  # needs Ray's session for --latency-resource
        if config.uses_latency:
            planner.timing = timing or timing_machine(config)
            if timing is None:
                check_timing(config, planner.timing, existing is not None)
            stream.write(timing_line(config, planner.timing) + "\n")
        try:
            study, storage = _open_study(config, planner, existing is None, baseline)
            with Lease(storage, interval_s=renew_s, grace_s=lease_s) as lease:
                progress = Progress(study, config.trials, stream, config.epochs)
                watch = TrialWatch(config.trial_timeout, logs_dir())
                searcher = StudySearcher(study, planner, progress, lease, watch)
                recovered = tuple(searcher.recover())  # progress prints one line for each
                remaining = config.trials - Counts.of(study.get_trials(deepcopy=False)).done
                if remaining > 0:
                    forecast = search_estimate(config, study, train, val, classes, resources)
                    progress.estimate_s = say_estimate(forecast, stream)
                    progress.restart_clock()
                    settings = _trial_settings(config, resources)
                    work = Work(config, searcher, train, val, settings, resources, remaining)
                    interrupted = runner.run(work)
                progress.close()
            trials = study.get_trials(deepcopy=False)
        except STORAGE_ERRORS as exc:
            raise UserError(storage_error_message(config.storage, exc)) from exc
    raise_storage_error(config.storage, searcher)
    counts = Counts.of(trials)
    notes = [planner.note] if planner.note else []
    if counts.running and not interrupted:
        notes.append(
            f"{counts.running} trial(s) still running in another driver (they count towards "
            "--trials); run the command again later to see them finished"
        )
    return SearchSummary(
        study=config.study,
        storage=config.storage,
        counts=counts,
        best_accuracy=best_accuracy(trials),
        pareto=tuple(t.number for t in pareto_front(trials)),
        table=summary_table(trials),
        interrupted=interrupted,
        note="; ".join(notes) or None,
        recovered=recovered,
    )


def search_estimate(
    config: SearchConfig,
    study: optuna.Study,
    train: ImageData,
    val: ImageData,
    classes: int,
    resources: Resources,
) -> Estimate | str:
    """What the trials still to run will cost here (``search.driver.estimate``), or why it
    could not be measured (the line then says so; the search runs regardless)."""
    trials = study.get_trials(deepcopy=False)
    remaining = config.trials - Counts.of(trials).done
    mean, spec = mean_search_macs(config.space, classes, config.budget_macs)
    share = memory_share(resources, config.concurrency)
    throughput = measured_here(study, spec, train, resources, share)
    if isinstance(throughput, str):
        return throughput
    return estimate(
        [mean] * remaining,
        config.epochs,
        len(train),
        len(val),
        config.concurrency,
        throughput[0],
        stored=throughput[1],
    )


def measured_here(
    study: optuna.Study, spec: ArchSpec, train: ImageData, resources: Resources, share: float
) -> tuple[Throughput, bool] | str:
    """(throughput, stored): the study's figure for this host, device and thread count, else
    one measured on ``spec`` now (and kept); why not, as the line to print, when it fails."""
    stored = stored_throughput(study, resources.device, resources.threads)
    if stored is not None:
        return stored, True
    try:
        measured = measure_throughput(spec, train, resources.device, resources.threads, share)
    except Exception as exc:  # a figure to print, never a reason to stop the run
        return f"estimate: not measured on this machine ({one_line(str(exc), 120)})"
    store_throughput(study, measured)
    return measured, False


def say_estimate(forecast: Estimate | str, stream: TextIO) -> float | None:
    """Print the estimate (and the advice for a long CPU run); its seconds, for the ETA."""
    if isinstance(forecast, str):
        stream.write(forecast + "\n")
        return None
    stream.write(forecast.line + "\n")
    if forecast.advice:
        stream.write(forecast.advice + "\n")
    stream.flush()
    return forecast.seconds


def make_executor(executor: str | Executor) -> Executor:
    """The executor named "ray" or "inline", or ``executor`` itself when it is one."""
    if not isinstance(executor, str):
        return executor
    if executor == "ray":
        from search.driver.ray_tune import RayExecutor

        return RayExecutor()
    if executor == "inline":
        from search.driver.inline import InlineExecutor

        return InlineExecutor()
    raise ValueError(f"unknown executor {executor!r}; choose 'ray' or 'inline'")


def raise_storage_error(storage: str, searcher: StudySearcher | None) -> None:
    """The search stopped because the study could not be written: one line, exit 2."""
    if searcher is not None and searcher.storage_error is not None:
        error = searcher.storage_error
        raise UserError(storage_error_message(storage, error)) from error


def storage_error_message(storage: str, exc: BaseException) -> str:
    """One line for a study database (or Ray Tune's temporary files: an ``OSError``) that
    cannot be written, with the fix for what went wrong (``search.study.storage_fault``): free
    space for a full disk, bring the server back for a lost connection.

    Names an SQLite file, never a server URL (it may hold a password)."""
    root = list(error_chain(exc))[-1]
    detail = one_line(str(root).strip().splitlines()[0] if str(root).strip() else "", 200)
    detail = detail or type(root).__name__
    path = sqlite_path(parse_url(storage))
    where = f"the study database {str(path)!r}" if path else "the study database"
    if isinstance(root, OSError) and root.filename:
        where, detail = repr(str(root.filename)), root.strerror or detail
    kept = "the study keeps every finished trial"
    fault = storage_fault(exc)
    if fault is StorageFault.LOST:
        return (
            f"lost the connection to the study database server: {detail}; {kept}: once the "
            "server is reachable again, run the same command to resume"
        )
    fix = "free space" if fault is StorageFault.FULL else "fix the database"
    return f"cannot write to {where}: {detail}; {kept}: {fix}, then run the same command to resume"


def logs_dir() -> Path | None:
    log = driver_log()
    return log.parent if log else None


# ----- validation before the database is touched ----------------------------------------------
def resources_for(config: SearchConfig | FinalConfig, gpus: int | None = None) -> Resources:
    """The device and each trial's share of the machine. ``gpus``: the CUDA GPUs this driver
    sees (None: asks torch), so the CUDA branch can be decided, and tested, without a GPU."""
    if gpus is None:
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
    return Resources(device, threads, per_trial, gpus)


def _trial_settings(config: SearchConfig, resources: Resources) -> TrialSettings:
    """What every trial of the search shares, whichever executor runs it."""
    weights = config.weights_path(0)
    return TrialSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        device=resources.device,
        threads=resources.threads,
        weights_root=str(weights.parent) if weights else None,
        time_limit_s=config.trial_timeout,
        memory_share=memory_share(resources, config.concurrency),
    )


def memory_share(resources: Resources, concurrency: int) -> float:
    """The share of its device's memory one trial plans for: its GPU fraction
    on CUDA; on the CPU, the host's RAM split between the trials that run at once."""
    if resources.device == "cuda":
        return min(1.0, resources.gpus_per_trial)
    return 1.0 / concurrency


def _load_data(config: SearchConfig) -> tuple[ImageData, ImageData, int]:
    """The search's train and validation splits: the data set's own labelled validation split
    when it has one beside its test split (an image folder with ``val/`` and ``test/``; then
    ``--subset`` caps the training images and ``--val-fraction`` is not used), else carved from
    the training images. The test split is never read by a search (``search final`` is what
    reads it)."""
    full_train, _test, own_val = load_splits(config.dataset, config.data_dir)
    train, val = validation_split(
        full_train,
        own_val,
        config.val_fraction,
        config.seed,
        config.subset,
        subset_setting="--subset",
    )
    classes = check_classes(
        config.space.pins.get("classes"), full_train, config.dataset, "--classes"
    )
    return train, val, classes


def _check_budget(config: SearchConfig, classes: int) -> None:
    smallest = config.space.smallest_spec(classes)
    report = count_spec(smallest)
    macs = report.macs
    if config.budget_params is not None and report.params > config.budget_params:
        raise UserError(
            f"--budget-params {config.budget_params:,} is below the smallest network in the "
            f"space ({report.params:,} parameters: {smallest.canonical()}); raise it or narrow "
            "the space to cheaper options (--block standard, --expansion 1)"
        )
    if macs > config.budget_macs:
        raise UserError(
            f"--budget-flops {config.budget_macs:.4g} is below the smallest network in the space "
            f"({macs:,} MACs: {smallest.canonical()}); raise the budget or narrow the space to "
            "cheaper options (--block standard, --expansion 1, --resolution 32)"
        )


# ----- the study ----------------------------------------------------------------------------------
CONFIG_WAIT_S = 30.0  # how long a driver that lost the creation race waits for the winner's attrs


def _open_study(
    config: SearchConfig, planner: Planner, created: bool, baseline: Baseline = THIS_SEARCH
) -> tuple[optuna.Study, RDBStorage]:
    """Create (``created``) or load the study; a lost creation race loads it, checked."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage_retrying(config.storage)
    # one read and one write per decision, finished trials read once (search.study.snapshot)
    snapshot = SnapshotStorage(storage)
    # multi-objective TPE that learns from early-stopped trials (search.strategy.sampler); trial N
    # samples with a seed made of --seed and N (search.strategy.seeding), so no two trials share
    # one, whether they come from a resume or from drivers running at once.
    sampler = TrialSeededSampler(
        lambda seed: make_sampler(seed=seed, trials=config.trials, kind=baseline.sampler),
        config.seed,
    )
    try:
        study = optuna.create_study(
            study_name=config.study,
            storage=snapshot,
            sampler=sampler,
            directions=directions_for(config.objectives),
            load_if_exists=not created,
        )
    except optuna.exceptions.DuplicatedStudyError:
        # another driver created it since we looked: use theirs if it is the same search
        study = optuna.load_study(study_name=config.study, storage=snapshot, sampler=sampler)
        existing = ExistingStudy(
            config.study, tuple(d.name for d in study.directions), _wait_for_config(study)
        )
        check_compatible(existing, config.identity(), config.storage, config.objectives)
        if planner.timing is not None:
            check_loaded_study(study, config, planner.timing)
        _adopt(study, config, planner)
        return study, storage
    if not created:
        _adopt(study, config, planner)
    if created:
        from importlib.metadata import version

        if planner.timing is not None:  # before the config: a racing driver checks it after
            study.set_user_attr(
                schema.LATENCY_MACHINE, timing_record(planner.timing, config.latency_resource)
            )
        study.set_metric_names(list(config.objectives))
        study.set_user_attr(schema.CONFIG, config.identity())
        study.set_user_attr(schema.EFFNAS_VERSION, version("effnas"))
        if config.b0:
            params, attrs = config.space.start_point()
            stage = "phi1" if config.strategy == "two-stage" else "joint"
            study.enqueue_trial(params, user_attrs={**attrs, "stage": stage})
        if baseline.opening:
            planner.enqueue_opening(study)
    return study, storage


def _adopt(study: optuna.Study, config: SearchConfig, planner: Planner) -> None:
    """What a resumed study of an older effnas lacks and this driver checked: the late
    identity keys (device, data directory) and its timing machine."""
    adopt_late_keys(study, config.identity())
    if planner.timing is not None and not has_timing_record(study):
        record = timing_record(planner.timing, config.latency_resource)
        study.set_user_attr(schema.LATENCY_MACHINE, record)


def open_storage_retrying(url: str) -> RDBStorage:
    """``open_storage``, retried while another driver creates Optuna's tables in the same new
    database at the same moment ("table ... already exists", a duplicate schema version)."""
    for attempt in range(5):
        try:
            return open_storage(url)
        except UserError as exc:
            cause = exc.__cause__
            racing = isinstance(cause, IntegrityError) or "already exists" in str(cause)
            if not racing or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _wait_for_config(study: optuna.Study) -> dict[str, Any] | None:
    """The "config" attr the creating driver writes right after creating the study."""
    deadline = time.monotonic() + CONFIG_WAIT_S
    while True:
        stored = study.user_attrs.get(schema.CONFIG)
        if stored is not None or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)
