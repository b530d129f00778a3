"""benchmarks/scale.py, part 2: trials per second through Ray at 1, 8, 32 and 64 trials at once.

The same sleep-trials (one epoch that sleeps ``pace`` seconds, the curve of
``search.worker.curves.SyntheticCurves``: no scheduler can shorten them, so every trial asks the
same of its slot and the rate is what the driver sustains) run through this search's Ray
executor (``run_search`` with ``RayExecutor(trial=CurveTrial(...))``: the real searcher,
planner, sampler, scheduler, study and lease) and through Ray Tune + ``OptunaSearch`` + ASHA
(``scale_rivals``), on a fresh SQLite study each. From the study:

- **trials per second**, steady state: trial ends over the second half of the run, per second
  (the first half includes each actor's start: a new Ray worker imports torch);
- **waiting share**: of the slot time over that half (concurrency x its span), the share in which
  no trial slept, i.e. trials waited for the driver (Tune's controller, the searcher, the
  scheduler, the study) to start them or take their results.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime

import optuna
import scale_rivals
from optuna.trial import FrozenTrial

from search.config import SearchConfig
from search.driver.ray_session import ray_session
from search.driver.ray_tune import RayExecutor
from search.driver.run import run_search
from search.study.database import open_storage
from search.study.reader import read_trials
from search.study.schema import EPOCHS_RUN, INFEASIBLE, STATUS
from search.worker.curves import CurveTrial, SyntheticCurves
from space import ArchSpec

EPOCHS = 1


@dataclass(frozen=True)
class Rate:
    method: str
    concurrency: int
    trials: int  # trained trials in the measured half
    trials_per_second: float
    waiting_share: float
    wall_s: float  # the whole run, Ray's start-up included


def _curve_seconds(source: SyntheticCurves, spec: str, epochs_run: int, epochs: int = 1) -> float:
    curve = source.curve(ArchSpec.parse(spec), 0, epochs)
    return sum(curve.seconds[:epochs_run])


def _rate(
    method: str,
    concurrency: int,
    trials: list[tuple[datetime, datetime, float]],
    wall: float,
) -> Rate:
    """(start, end, slept seconds) of each trained trial -> the second half's rate and waiting."""
    trials = sorted(trials, key=lambda t: t[1])
    half = trials[len(trials) // 2 :]
    since, until = half[0][1], half[-1][1]
    span = (until - since).total_seconds()
    slept = 0.0
    for start, end, seconds in trials:  # sleep overlapping [since, until], spread evenly
        length = (end - start).total_seconds()
        overlap = (min(end, until) - max(start, since)).total_seconds()
        if length > 0 and overlap > 0:
            slept += seconds * overlap / length
    waiting = 1.0 - slept / (concurrency * span) if span > 0 else float("nan")
    return Rate(method, concurrency, len(half) - 1, (len(half) - 1) / span, waiting, wall)


def ours(
    config: SearchConfig, source: SyntheticCurves, pace: float, concurrency: int, trials: int
) -> Rate:
    """This search through Ray Tune on sleep-trials."""
    config = replace(
        config, concurrency=concurrency, trials=trials, study=f"ray-{concurrency}", epochs=EPOCHS
    )
    started = time.perf_counter()
    run_search(config, io.StringIO(), RayExecutor(trial=CurveTrial(source, pace)))
    wall = time.perf_counter() - started
    storage = open_storage(config.storage)
    done = _trained(read_trials(storage, storage.get_study_id_from_name(config.study)))
    rows = [
        (
            t.datetime_start,
            t.datetime_complete,
            pace * _curve_seconds(source, t.user_attrs["spec"], t.user_attrs[EPOCHS_RUN]),
        )
        for t in done
    ]
    return _rate("this search (Ray)", concurrency, rows, wall)


def ray_tune(
    config: SearchConfig,
    classes: int,
    source: SyntheticCurves,
    pace: float,
    concurrency: int,
    trials: int,
) -> Rate:
    """Ray Tune + OptunaSearch + ASHA on the same sleep-trials."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    config = replace(config, epochs=EPOCHS)
    name = f"tune-{concurrency}"
    storage = optuna.storages.get_storage(open_storage(config.storage))
    warnings.filterwarnings("ignore")
    searcher = OptunaSearch(
        space=scale_rivals.DefineByRun(config, classes),
        metric=["accuracy", "macs"],
        mode=["max", "min"],
        sampler=scale_rivals.tpe(config.seed, trials),
        study_name=name,
        storage=storage,
    )
    scheduler = ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max", max_t=EPOCHS)
    trainable = tune.with_resources(scale_rivals.sleep_trainable(source, EPOCHS, pace), {"cpu": 1})
    files = tempfile.mkdtemp(prefix="effnas-scale-tune-")
    started = time.perf_counter()
    with ray_session(None, num_cpus=concurrency, num_gpus=0, object_store_bytes=0):
        results = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
                scheduler=scheduler,
                num_samples=trials,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(name=name, storage_path=files, verbose=0),
        ).fit()
    wall = time.perf_counter() - started
    shutil.rmtree(files, ignore_errors=True)
    epochs = {r.config["spec"]: int(r.metrics.get("epoch", 0)) for r in results if r.metrics}
    study = optuna.load_study(study_name=name, storage=storage)
    rows = [
        (t.datetime_start, t.datetime_complete, pace * _curve_seconds(source, spec, epochs[spec]))
        for t, spec in _with_spec(study.get_trials(deepcopy=False), config, classes)
        if spec in epochs
    ]
    return _rate("Ray Tune + OptunaSearch + ASHA", concurrency, rows, wall)


def _trained(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [
        t
        for t in trials
        if t.state.is_finished()
        and t.datetime_complete is not None
        and t.user_attrs.get(STATUS) != INFEASIBLE
        and EPOCHS_RUN in t.user_attrs
    ]


def _with_spec(
    trials: list[FrozenTrial], config: SearchConfig, classes: int
) -> list[tuple[FrozenTrial, str]]:
    """Finished Tune trials with the network their params draw (OptunaSearch keeps params)."""
    found = []
    for trial in trials:
        if not trial.state.is_finished() or trial.datetime_complete is None:
            continue
        fixed = optuna.trial.FixedTrial(trial.params, number=trial.number)
        found.append((trial, scale_rivals.network(fixed, config, classes).canonical()))
    return found
