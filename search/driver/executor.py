"""What runs a search's remaining trials once the driver has set the search up.

``run_search`` (``search.driver.run``) does everything before and after the trials: it validates
the configuration before the database is touched, loads the data, opens or creates the study,
holds the lease, recovers trials a dead driver left RUNNING and summarises at the end. In between
an :class:`Executor` runs the remaining trials through the driver's
:class:`~search.driver.searcher.StudySearcher` until the study has them:

- ``search.driver.ray_tune.RayExecutor``: Ray Tune, concurrent trials in worker processes
  (what `search run` uses);
- ``search.driver.inline.InlineExecutor``: one trial after another in this process, calling the
  same searcher, scheduler and trainable in Tune's order (benchmarks and tests: no Ray start-up).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from search.driver.searcher import StudySearcher
from search.worker.trial import TrialSettings
from trainers.data import ImageData


@dataclass(frozen=True)
class Resources:
    """The device and the share of the machine each trial gets."""

    device: str  # "cpu" or "cuda"
    threads: int  # CPU threads (Ray CPUs) per trial
    gpus_per_trial: float
    num_gpus: int  # GPUs visible to this driver


class RunSettings(Protocol):
    """What an executor reads of a run: a search's ``SearchConfig`` or `search final`'s
    ``FinalRun``."""

    study: str
    epochs: int
    concurrency: int
    ray_address: str | None


@dataclass(frozen=True)
class Work:
    """The remaining trials of one search, as the driver hands them to an executor."""

    config: RunSettings
    searcher: StudySearcher
    train: ImageData
    val: ImageData
    settings: TrialSettings  # what every trial of the search shares
    resources: Resources
    remaining: int  # trials still to start (Tune's ``num_samples``)
    holdout: ImageData | None = None  # a final's held-out validation split (`search final`)


class Executor(Protocol):
    """Runs a search's trials; chosen by ``run_search(config, executor=...)``."""

    def session(
        self, config: RunSettings, resources: Resources, data_bytes: int, stream: TextIO
    ) -> AbstractContextManager[Any]:
        """The context the whole search runs in (a Ray session, or nothing); entered before the
        study is opened, so it may still refuse the configuration with a ``UserError``."""
        ...

    def run(self, work: Work) -> bool:
        """Run trials until the study has them, the searcher finishes or the search is stopped;
        True when stopped by Ctrl-C / SIGTERM. Trials still live at the end are left to the
        searcher's ``interrupt_live`` (FAIL "interrupted", re-queued)."""
        ...


@contextmanager
def stop_on_signals(searcher: StudySearcher) -> Iterator[None]:
    """First Ctrl-C / SIGTERM: stop gracefully (running trials become "interrupted");
    second: abort with ``KeyboardInterrupt``."""

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
