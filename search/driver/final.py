"""`run_finals(config) -> FinalSummary`: retrain chosen trials of a study and score them once on
the data set's test split, through the same machinery as the search.

Why the same machinery: a final is a trial with a different recipe, more data and another
evaluation set, and it needs everything a search trial has: Ray Tune with ``--concurrency`` finals
at once, a memory plan with micro-batching, every fault a one-line FAIL, a lease per running
final, and recovery of finals a dead driver left RUNNING. So the finals live in the companion
study ``S:final`` (``search.study.schema``), are queued there in advance
(``search.strategy.finals``), and ``StudySearcher`` hands them to an executor with
``FinalPlanner`` in the planner's place. Differences from a search trial: no early stopping
(every final trains all its epochs), training on all the data set's training images (``--subset``
caps them), and evaluation once, after the last epoch, on the test split
(``TrialSettings.final``): the test split is read here and by `search train --test` /
`search evaluate`, never by a search.

Resuming is the same command again: the queue adds only the (trial, repeat) pairs without a
complete, running or queued final (read and written under ``search.study.lock``, so two commands
at once never queue a pair twice), and the lease recovery re-queues the finals that were running
when a driver was killed.

What chooses among finals is not the test split: each final holds out part of its training
images (``--val-fraction``, default 0.1; a data set's own labelled ``val/`` where it has one) and
is scored on it too, after training, through the same saved weights; ``reports.finals`` chooses
the final front and the final best by that figure and keeps the test score as the measurement.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from common.errors import UserError
from search.driver.estimate import Estimate, estimate
from search.driver.executor import Executor, Resources, Work
from search.driver.progress import Progress
from search.driver.run import (
    logs_dir,
    make_executor,
    measured_here,
    memory_share,
    open_storage_retrying,
    raise_storage_error,
    resources_for,
    say_estimate,
    storage_error_message,
)
from search.driver.searcher import STORAGE_ERRORS, StudySearcher
from search.driver.watch import TrialWatch
from search.final_config import FinalConfig
from search.strategy.finals import FinalPlanner, enqueue_finals, select_trials
from search.study import schema
from search.study.database import adopt_late_keys, check_database, config_changes, find_study
from search.study.lease import Lease, lease_times
from search.study.lock import study_lock
from search.study.schema import DIRECTIONS, Counts, status_of
from search.study.urls import mask_url
from search.worker.trial import TrialSettings
from space import ArchSpec, count_spec
from trainers.data import ImageData, load_splits, take_subset, validation_split


@dataclass
class FinalRun:
    """What the search's machinery (searcher, executors, progress) reads of a final run; the
    companion study's name stands where a search's study name stands. ``trials`` is set once
    the queue is known: the finals the companion study holds when this run is done."""

    study: str
    storage: str
    seed: int
    epochs: int
    concurrency: int
    ray_address: str | None
    trials: int = 0


@dataclass(frozen=True)
class FinalSummary:
    study: str  # the companion study
    counts: Counts
    queued: int  # finals this run trained (or tried to)
    kept: int  # finals found complete, running or queued from earlier runs
    table: str
    line: str
    interrupted: bool = False


def run_finals(
    config: FinalConfig, stream: TextIO | None = None, executor: str | Executor = "ray"
) -> FinalSummary:
    """Train (or resume) the finals ``config`` asks for; returns the tally."""
    stream = stream or sys.stderr
    runner = _executor(executor)
    check_database(config.storage, must_exist=True)
    if schema.is_final_study(config.study):
        raise UserError(
            f"--study {config.study!r} is a study of finals; pass the searched study "
            f"({config.study.removesuffix(schema.FINAL_SUFFIX)!r})"
        )
    resources = resources_for(config)
    renew_s, lease_s = lease_times()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage_retrying(config.storage)
    source = _load_source(storage, config)
    config = _resolved(config, source, resources.device)
    selected = select_trials(source, config.trials, config.top)
    train, holdout, test = _load_data(source, config)
    existing = find_study(config.storage, config.final_study)
    if existing is not None:
        _check_recipe(existing.config or {}, config)

    run = FinalRun(
        config.final_study,
        config.storage,
        config.seed,
        config.epochs,
        config.concurrency,
        config.ray_address,
    )
    interrupted = False
    searcher: StudySearcher | None = None
    splits = [train, test, *([holdout] if holdout is not None else [])]
    data_bytes = sum(d.images.numel() + d.labels.numel() * 8 for d in splits)
    with runner.session(run, resources, data_bytes, stream):
        try:
            final = _open_final(storage, config)
            with study_lock(storage, config.final_study):
                queue = enqueue_finals(final, selected, config.repeats, config.seed)
            with Lease(storage, interval_s=renew_s, grace_s=lease_s) as lease:
                watch = TrialWatch(config.trial_timeout, logs_dir())
                progress = Progress(
                    final, queue.queued + queue.kept, stream, config.epochs, finals=True
                )
                planner = FinalPlanner(run, source)
                searcher = StudySearcher(final, planner, progress, lease, watch)
                searcher.recover()
                trials = final.get_trials(deepcopy=False)
                counts = Counts.of(trials)
                run.trials = progress.trials = counts.done + counts.running + counts.waiting
                if counts.waiting:
                    forecast = _estimate(final, source, train, holdout, test, resources, config)
                    progress.estimate_s = say_estimate(forecast, stream)
                    progress.restart_clock()
                    settings = TrialSettings(
                        epochs=config.epochs,
                        batch_size=config.batch_size,
                        device=resources.device,
                        threads=resources.threads,
                        weights_root=str(config.weights_root()),
                        time_limit_s=config.trial_timeout,
                        memory_share=memory_share(resources, config.concurrency),
                        final=True,
                        recipe=tuple(config.recipe().items()),
                    )
                    work = Work(
                        run, searcher, train, test, settings, resources, counts.waiting, holdout
                    )
                    interrupted = runner.run(work)
                progress.close()
            trials = final.get_trials(deepcopy=False)
        except STORAGE_ERRORS as exc:
            raise UserError(storage_error_message(config.storage, exc)) from exc
    raise_storage_error(config.storage, searcher)
    mine = _of_selection(trials, selected, config.repeats)
    counts = Counts.of(mine)
    return FinalSummary(
        study=config.final_study,
        counts=counts,
        queued=queue.queued,
        kept=queue.kept,
        table=final_table(mine),
        line=_line(config, counts, queue.queued, len(selected)),
        interrupted=interrupted,
    )


def _estimate(
    final: optuna.Study,
    source: optuna.Study,
    train: ImageData,
    holdout: ImageData | None,
    test: ImageData,
    resources: Resources,
    config: FinalConfig,
) -> Estimate | str:
    """What the queued finals will cost here: each network's own MACs, at a throughput
    measured on the median-sized one (``search.driver.estimate``)."""
    searched = {t.number: t for t in source.get_trials(deepcopy=False)}
    specs = []
    for trial in final.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        origin = searched.get(trial.user_attrs.get(schema.SOURCE_TRIAL, -1))
        if origin is not None and schema.SPEC_JSON in origin.user_attrs:
            specs.append(ArchSpec.from_dict(origin.user_attrs[schema.SPEC_JSON]))
    if not specs:
        return "estimate: no queued final to estimate"
    macs = [float(count_spec(spec).macs) for spec in specs]
    median = sorted(zip(macs, specs, strict=True), key=lambda pair: pair[0])[len(specs) // 2][1]
    share = memory_share(resources, config.concurrency)
    throughput = measured_here(final, median, train, resources, share)
    if isinstance(throughput, str):
        return throughput
    evaluated = len(test) + (len(holdout) if holdout is not None else 0)
    return estimate(
        macs,
        config.epochs,
        len(train),
        evaluated,
        config.concurrency,
        throughput[0],
        stored=throughput[1],
        what="final",
    )


def _resolved(config: FinalConfig, source: optuna.Study, device: str) -> FinalConfig:
    """``config`` with the device that trains (``cpu`` / ``cuda``, not ``auto``: the identity
    keeps what ran) and, when no ``--data-dir`` was given, the searched study's."""
    searched = source.user_attrs.get(schema.CONFIG) or {}
    data_dir = config.data_dir
    if data_dir is None and isinstance(searched.get("data_dir"), str):
        data_dir = searched["data_dir"]
    return config.replace(device=device, data_dir=data_dir)


def _check_recipe(stored: dict[str, Any], config: FinalConfig) -> None:
    """Refuse to add finals trained with another recipe to the companion study: a mean over
    repeats trained two ways means nothing. Finals written before the validation split existed
    held out nothing (``val_fraction`` 0)."""
    stored = {"val_fraction": 0.0, **stored}
    shown = config_changes(stored, config.identity())
    if not shown:
        return
    hint = ""
    if stored["val_fraction"] != config.val_fraction:
        hint = (
            f" (they held out {stored['val_fraction']:g} of the training images to choose by; "
            f"pass --val-fraction {stored['val_fraction']:g} to resume them)"
        )
    raise UserError(
        f"the finals of study {config.study!r} were trained with another recipe ({shown}){hint}; "
        "run `search final` with the same settings to add or resume finals"
    )


def _executor(executor: str | Executor) -> Executor:
    """The finals' executor: as the search's, but without early stopping."""
    if executor == "ray":
        from search.driver.ray_tune import RayExecutor

        return RayExecutor(early_stopping=False)
    if executor == "inline":
        from search.driver.inline import InlineExecutor

        return InlineExecutor(scheduler=None)
    return make_executor(executor)


def _load_source(storage: optuna.storages.BaseStorage, config: FinalConfig) -> optuna.Study:
    try:
        return optuna.load_study(study_name=config.study, storage=storage)
    except KeyError as exc:
        shown = mask_url(config.storage)
        raise UserError(
            f"no study {config.study!r} in {shown}; list them with "
            f"`search studies --storage {shown}`"
        ) from exc


def _load_data(
    source: optuna.Study, config: FinalConfig
) -> tuple[ImageData, ImageData | None, ImageData]:
    """(train, held-out validation or None, test) of the searched study's data set: the
    training images (``--subset`` caps them), less the ``--val-fraction`` held out to choose
    by (the data set's own labelled validation split instead, when it has one; none with
    ``--val-fraction 0``), and the test split."""
    searched = source.user_attrs.get(schema.CONFIG) or {}
    dataset = searched.get("dataset")
    if not isinstance(dataset, str):
        raise UserError(
            f"study {config.study!r} was not written by `search run` (it has no data set in its "
            "config); pass a study that `search run` wrote"
        )
    full_train, test, own_val = load_splits(dataset, config.data_dir)
    if not config.val_fraction:
        train = take_subset(full_train, config.subset, config.seed, subset_setting="--subset")
        return train, None, test
    train, holdout = validation_split(
        full_train,
        own_val,
        config.val_fraction,
        config.seed,
        config.subset,
        subset_setting="--subset",
    )
    return train, holdout, test


def _open_final(storage: optuna.storages.BaseStorage, config: FinalConfig) -> optuna.Study:
    """Create the companion study (its recipe, its source) or load it; a lost creation race
    loads the winner's, which ``check_compatible`` already vetted or the next run will."""
    sampler = optuna.samplers.RandomSampler(seed=config.seed)  # finals are queued, not sampled
    try:
        final = optuna.create_study(
            study_name=config.final_study,
            storage=storage,
            sampler=sampler,
            directions=list(DIRECTIONS),
        )
    except optuna.exceptions.DuplicatedStudyError:
        final = optuna.load_study(study_name=config.final_study, storage=storage, sampler=sampler)
        adopt_late_keys(final, config.identity())
        return final
    final.set_metric_names(schema.FINAL_METRIC_NAMES)
    final.set_user_attr(schema.CONFIG, config.identity())
    final.set_user_attr(schema.SOURCE_STUDY, config.study)
    final.set_user_attr(schema.EFFNAS_VERSION, version("effnas"))
    return final


def _of_selection(
    trials: list[FrozenTrial], selected: list[FrozenTrial], repeats: int
) -> list[FrozenTrial]:
    """The companion study's finals of this command's (trial, repeat) pairs."""
    wanted = {(t.number, r) for t in selected for r in range(repeats)}
    return [
        t
        for t in trials
        if (t.user_attrs.get(schema.SOURCE_TRIAL), t.user_attrs.get(schema.REPEAT)) in wanted
    ]


def final_table(trials: list[FrozenTrial]) -> str:
    """One row per final: the searched trial, the repeat, the proxy, the held-out validation
    accuracy (what chooses among finals) and the test accuracy (what measures them)."""
    lines = [
        f"{'trial':>5} {'repeat':>6}  {'status':<11} {'proxy acc':>9} {'val acc':>7} "
        f"{'test acc':>8} {'correct':>13} {'MACs':>14}  spec"
    ]
    ordered = sorted(
        (t for t in trials if t.state != TrialState.WAITING),
        key=lambda t: (
            t.user_attrs.get(schema.SOURCE_TRIAL, -1),
            t.user_attrs.get(schema.REPEAT, -1),
            t.number,
        ),
    )
    for trial in ordered:
        attrs = trial.user_attrs
        test = f"{trial.values[0]:.4f}" if trial.state == TrialState.COMPLETE else "-"
        val = attrs.get(schema.VAL_ACCURACY)
        shown_val = f"{val:.4f}" if isinstance(val, int | float) else "-"
        correct = (
            f"{attrs[schema.TEST_CORRECT]}/{attrs[schema.TEST_IMAGES]}"
            if schema.TEST_CORRECT in attrs
            else "-"
        )
        lines.append(
            f"{attrs.get(schema.SOURCE_TRIAL, '-'):>5} {attrs.get(schema.REPEAT, '-'):>6}  "
            f"{status_of(trial):<11} {attrs.get(schema.PROXY_ACCURACY, float('nan')):>9.4f} "
            f"{shown_val:>7} {test:>8} {correct:>13} {attrs.get(schema.MACS, 0):>14,}  "
            f"{attrs.get(schema.SPEC, '-')}"
        )
    return "\n".join(lines)


def _line(config: FinalConfig, counts: Counts, trained: int, networks: int) -> str:
    return (
        f"study {config.final_study!r}: {counts.complete} of {networks * config.repeats} finals "
        f"complete ({networks} network(s) x {config.repeats} repeat(s); {trained} queued by this "
        f"run, {counts.failed} failed, {counts.running} running elsewhere); see them with "
        f"`search best --study {config.study} --final` or `search report --study {config.study}`"
    )
