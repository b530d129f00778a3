"""The function Ray Tune runs for each trial: ``run_trial`` with cached data, Ray's CPU count
and the worker's clock readings (what ``search.driver.overhead`` turns into overhead attrs).
The inline executor (``search.driver.inline``) runs it too, in the driver's process. ``trial``
replaces ``run_trial`` for simulated trials (``search.worker.curves.CurveTrial``), which then
travel the same path as real ones."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Protocol

from search.worker.shared_data import LocalData, SharedData
from search.worker.trial import Reporter, TrialSettings, run_trial
from trainers.data import ImageData


class TrialFunction(Protocol):
    """What trains one trial: ``run_trial``'s signature."""

    def __call__(
        self,
        config: dict[str, Any],
        train: ImageData,
        val: ImageData,
        settings: TrialSettings,
        report: Reporter | None = None,
        holdout: ImageData | None = None,
    ) -> None: ...


CLOCK = "clock_"  # prefix of the worker's readings (flat: Tune flattens nested result dicts)
_trials_in_process = 0


def ray_cpus(default: int) -> int:
    """The CPUs Ray assigned to the running trial (at least 1), else ``default``."""
    try:
        import ray

        if not ray.is_initialized():  # outside Ray (the inline executor): asking would start it
            return default
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # outside Ray, or an older Ray without the call
        return default
    return max(1, round(cpus)) if cpus else default


def run_measured_trial(
    config: dict[str, Any],
    data: SharedData | LocalData,
    settings: TrialSettings,
    report: Reporter | None = None,
    trial: TrialFunction = run_trial,
) -> None:
    """The Ray trainable: ``trial`` (a real training unless replaced) with cached data, Ray's CPU
    count, and clock readings."""
    global _trials_in_process
    entered = time.time()
    train, val, holdout, cached = data.fetch()
    fetched = time.time()
    _trials_in_process += 1
    threads = ray_cpus(settings.threads)
    if report is None:
        from ray import tune

        report = tune.report
    send = report

    def forward(result: dict[str, Any]) -> None:
        if result.get("final") or "fail_reason" in result:
            clock = {
                "entered_at": entered,
                "data_seconds": fetched - entered,
                "worker_pid": os.getpid(),
                "trial_in_worker": _trials_in_process,
                "data_cached": cached,
                "threads": threads,
            }
            result = {**result, **{CLOCK + key: value for key, value in clock.items()}}
        send(result)

    settings = dataclasses.replace(settings, threads=threads)
    trial(config, train, val, settings, forward, holdout=holdout)
