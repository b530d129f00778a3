"""benchmarks/scale.py, part 1: what a trial costs the driver as the study grows.

Three studies on one database, padded with the same finished trials of this search
(``search.driver.padding``) to each size in turn, each then run for ``window`` more trials of
instant simulated curves:

- **this search**, ``run_search`` on the simulated clock (8 trials at once, MO-ASHA started from
  the rungs the padded trials left): the driver's decision time per trained trial, split by
  ``common.clock.DECISIONS`` (the candidates rejected on the way included);
- **plain Optuna**, ``study.optimize`` of the same draw and curve with Optuna's TPE configured as
  this search's (one process);
- **Ray Tune + OptunaSearch + ASHA** (``scale_rivals``) at ``concurrency`` trials at once, with
  instant trials: Tune's controller, its searcher and scheduler per trial.

Plain Optuna's and Tune's parts come from wrapping their storage, sampler, searcher and scheduler
(``scale_timing``). Per trial: the sum of the parts over the window divided by its trained trials,
and for the Tune run the wall time between its first and last trial end per trial.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import scale_rivals
import scale_timing
from optuna.trial import FrozenTrial, TrialState

from common.clock import DECISIONS, PARTS, DecisionClock
from search.config import SearchConfig
from search.driver.padding import pad, rung_points
from search.driver.run import run_search
from search.driver.simulated import SimulatedExecutor
from search.strategy.scheduler import make_scheduler
from search.study.database import open_storage
from search.study.reader import read_trials
from search.study.schema import Counts, directions_for
from search.worker.curves import CurveSource


@dataclass(frozen=True)
class Cost:
    """One method's cost per trial at one study size."""

    method: str
    backend: str
    size: int  # trained trials in the study when the window started
    trials: int  # trained trials in the window
    per_trial_s: float  # the parts' sum per trained trial
    parts: dict[str, float]  # seconds per trained trial
    wall_per_trial_s: float  # wall time of the window per trained trial


def trained(url: str, name: str) -> int:
    """Trained trials of the study ``name``."""
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name(name)
    return Counts.of(read_trials(storage, study_id)).done


def grow(url: str, name: str, config: SearchConfig, padding: list[FrozenTrial], size: int) -> None:
    """Add padded trials until the study ``name`` (created empty when new) has ``size``
    trained trials (those of earlier windows count too)."""
    storage = open_storage(url)
    directions = directions_for(config.objectives)
    optuna.create_study(
        study_name=name, storage=storage, directions=directions, load_if_exists=True
    )
    study_id = storage.get_study_id_from_name(name)
    have = Counts.of(read_trials(storage, study_id)).done
    add: list[FrozenTrial] = []
    for trial in padding:
        if have >= size:
            break
        add.append(trial)
        have += Counts.of([trial]).done
    del padding[: len(add)]
    pad(storage, study_id, add)


def ours(url: str, config: SearchConfig, classes: int, source: CurveSource, window: int) -> Cost:
    """This search resumed for ``window`` trained trials on the simulated clock."""
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name(config.study)
    finished = [t for t in read_trials(storage, study_id) if t.state.is_finished()]
    done = Counts.of(finished).done
    objectives = tuple(config.objectives)

    def scheduler(epochs: int) -> Any:
        return rung_points(finished, make_scheduler(epochs), objectives)

    executor = _TimedRun(source, concurrency=8, scheduler=scheduler)
    DECISIONS.reset()
    run_search(dataclasses.replace(config, trials=done + window), io.StringIO(), executor)
    wall = executor.seconds
    ran = len(executor.finished)
    parts = {part: DECISIONS.totals[part] / ran for part in PARTS}
    return Cost("this search", _backend(url), done, ran, sum(parts.values()), parts, wall / ran)


def plain_optuna(
    url: str, name: str, config: SearchConfig, classes: int, source: CurveSource, window: int
) -> Cost:
    """``study.optimize`` for ``window`` trials on the padded study ``name``."""
    clock = DecisionClock()
    done = trained(url, name)
    storage = scale_timing.TimedStorage(same_storage(url), clock)
    sampler = scale_timing.TimedSampler(scale_rivals.tpe(config.seed, done + window), clock)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    objective = scale_rivals.objective(config, classes, source)
    started = time.perf_counter()
    with clock.deciding("optuna"):
        study.optimize(objective, n_trials=window)
    wall = time.perf_counter() - started
    parts = {part: clock.totals.get(part, 0.0) / window for part in PARTS}
    return Cost(
        "plain Optuna", _backend(url), done, window, sum(parts.values()), parts, wall / window
    )


def ray_tune(
    url: str,
    name: str,
    config: SearchConfig,
    classes: int,
    source: CurveSource,
    window: int,
    concurrency: int,
    pace: float = 0.0,
) -> Cost:
    """Ray Tune + ``OptunaSearch`` (on the padded study ``name``) + ASHA, ``window`` trials."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from search.driver.ray_session import ray_session

    clock = DecisionClock()
    done = trained(url, name)
    storage = scale_timing.TimedStorage(same_storage(url), clock)
    sampler = scale_timing.TimedSampler(scale_rivals.tpe(config.seed, done + window), clock)
    warnings.filterwarnings("ignore")
    searcher = scale_timing.timed_optuna_search(
        clock,
        space=scale_rivals.DefineByRun(config, classes),
        metric=["accuracy", "macs"],
        mode=["max", "min"],
        sampler=sampler,
        study_name=name,
        storage=storage,
    )
    scheduler = scale_timing.timed_asha(
        clock, time_attr="epoch", metric="accuracy", mode="max", max_t=config.epochs
    )
    trainable = tune.with_resources(
        scale_rivals.sleep_trainable(source, config.epochs, pace), {"cpu": 1}
    )
    files = tempfile.mkdtemp(prefix="effnas-scale-tune-")  # Tune's own files
    with ray_session(None, num_cpus=concurrency, num_gpus=0, object_store_bytes=0):
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
                scheduler=scheduler,
                num_samples=window,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(name=f"scale-{name}", storage_path=files, verbose=0),
        )
        started = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - started
    shutil.rmtree(files, ignore_errors=True)
    parts = {part: clock.totals.get(part, 0.0) / window for part in PARTS}
    return Cost(
        f"Ray Tune + OptunaSearch ({concurrency} at once)",
        _backend(url),
        done,
        window,
        sum(parts.values()),
        parts,
        end_spread(url, name, window) or wall / window,
    )


def end_spread(url: str, name: str, last: int) -> float | None:
    """Seconds between trial ends over the study's ``last`` finished trials (steady state:
    start-up excluded), or None with fewer than two."""
    storage = open_storage(url)
    ends = sorted(
        t.datetime_complete
        for t in read_trials(storage, storage.get_study_id_from_name(name))
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        and t.datetime_complete is not None
    )[-last:]
    if len(ends) < 2:
        return None
    return (ends[-1] - ends[0]).total_seconds() / (len(ends) - 1)


def same_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's own cached RDB storage on the connection this search opens (on SQLite: WAL,
    no fsync per commit), so a comparison measures the machinery, not a pragma."""
    return optuna.storages.get_storage(open_storage(url))


class _TimedRun(SimulatedExecutor):
    """The simulated executor, with the wall time of its run (the trials, not the set-up)."""

    seconds = 0.0

    def run(self, work: Any) -> bool:
        started = time.perf_counter()
        try:
            return super().run(work)
        finally:
            self.seconds = time.perf_counter() - started


def _backend(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"
