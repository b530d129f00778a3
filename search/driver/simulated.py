"""The simulated-clock executor: simulated trials, several at once, in simulated time.

Syne Tune's simulator backend (Salinas et al. 2022) in this project's terms: trials are answered
by a :class:`~search.worker.curves.CurveSource` instead of training, and a clock that jumps from
one epoch's end to the next replaces waiting, so a 64-trial search with 8 workers replays in
seconds while every decision goes through the real searcher, planner, sampler, study, lease and
MO-ASHA, in the order Ray Tune would make them:

- up to ``concurrency`` trials are live; a free slot asks ``StudySearcher.suggest`` (``None``:
  nothing to start until a trial ends; ``Searcher.FINISHED``: no more trials);
- each live trial's next report (``search.worker.curves.curve_reports``, the reports of a real
  trial) falls due when its epoch's seconds have passed on the clock; the earliest goes first
  (ties in start order), to the scheduler and then to the searcher, exactly as the inline
  executor hands them on (``search.driver.inline``): STOP or the final report ends the trial with
  ``on_trial_complete``, CONTINUE goes to ``on_trial_result`` and schedules the next epoch;
- it stops after ``remaining`` trials (Tune's ``num_samples``), on ``Searcher.FINISHED``, on
  ``searcher.stopping``, or, with ``epoch_budget``, once the trials have trained that many
  epochs (no new trial starts; live ones finish).

``finished`` lists, per ended trial in the order it ended, the clock, the epochs trained by then
and its trial number: what a benchmark needs to draw quality against compute or time. For
benchmarks and tests only; `search run` never uses it.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from ray.tune.schedulers.trial_scheduler import TrialScheduler
from ray.tune.utils import flatten_dict

from common.errors import UserError
from search.driver.executor import Resources, RunSettings, Work
from search.driver.inline import SchedulerFactory
from search.driver.searcher import StudySearcher
from search.strategy.scheduler import ParetoASHA, make_scheduler
from search.worker.curves import CurveSource, curve_reports
from space import ArchSpec


@dataclass(frozen=True)
class Ended:
    """One trial's end on the simulated clock."""

    clock: float  # seconds since the search started
    epochs: int  # epochs trained by every trial so far, this one included
    number: int  # the study's trial number


Due = tuple[float, int, str, dict[str, Any]]  # (clock, start order, trial id, report)


@dataclass
class _Live:
    config: dict[str, Any]
    reports: Iterator[tuple[dict[str, Any], float]]


class SimulatedExecutor:
    """Simulated trials from ``source``, ``concurrency`` at a time, on a simulated clock."""

    def __init__(
        self,
        source: CurveSource,
        concurrency: int = 1,
        scheduler: SchedulerFactory | None = make_scheduler,
        epoch_budget: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} must be at least 1")
        self.source = source
        self.concurrency = concurrency
        self.scheduler = scheduler
        self.epoch_budget = epoch_budget
        self.clock = 0.0
        self.epochs_trained = 0
        self.finished: list[Ended] = []

    def session(
        self, config: RunSettings, resources: Resources, data_bytes: int, stream: TextIO
    ) -> contextlib.nullcontext[None]:
        """Nothing to start; a joined cluster makes no sense for simulated trials."""
        if config.ray_address:
            raise UserError("simulated trials run in this process: drop --ray-address")
        return contextlib.nullcontext()

    def run(self, work: Work) -> bool:
        """Replay trials until the study has them; True when stopped by the searcher's stop."""
        searcher = work.searcher
        scheduler = self.scheduler(work.config.epochs) if self.scheduler else None
        self.clock, self.epochs_trained, self.finished = 0.0, 0, []
        live: dict[str, _Live] = {}
        due: list[Due] = []
        started, exhausted = 0, False
        try:
            while True:
                while not exhausted and len(live) < self.concurrency:
                    if started >= work.remaining or searcher.stopping or self._spent():
                        exhausted = True
                        break
                    trial_id = f"sim_{started:05d}"
                    suggested = searcher.suggest(trial_id)
                    if suggested is None:
                        exhausted = not live  # nothing live will ever free the searcher
                        break
                    if not isinstance(suggested, dict):  # Searcher.FINISHED
                        exhausted = True
                        break
                    spec = ArchSpec.parse(suggested["spec"])
                    curve = self.source.curve(spec, int(suggested["seed"]), work.settings.epochs)
                    reports = curve_reports(suggested, work.settings, curve, spec)
                    live[trial_id] = _Live(suggested, reports)
                    self._schedule(due, started, trial_id, live[trial_id])
                    started += 1
                if not due:
                    break
                self.clock, order, trial_id, result = heapq.heappop(due)
                self.epochs_trained += 1
                if self._report(searcher, scheduler, trial_id, live[trial_id], result):
                    self._schedule(due, order, trial_id, live[trial_id])
                else:
                    del live[trial_id]
                    ended = Ended(self.clock, self.epochs_trained, int(result["number"]))
                    self.finished.append(ended)
        finally:
            interrupted = searcher.interrupted
            searcher.interrupt_live()
        return interrupted

    def _spent(self) -> bool:
        return self.epoch_budget is not None and self.epochs_trained >= self.epoch_budget

    def _schedule(self, due: list[Due], order: int, trial_id: str, trial: _Live) -> None:
        result, seconds = next(trial.reports)
        heapq.heappush(due, (self.clock + seconds, order, trial_id, result))

    @staticmethod
    def _report(
        searcher: StudySearcher,
        scheduler: ParetoASHA | None,
        trial_id: str,
        trial: _Live,
        result: dict[str, Any],
    ) -> bool:
        """Hand one report on as Tune does; True while the trial goes on."""
        flat = flatten_dict(dict(result))
        decision = TrialScheduler.CONTINUE
        if scheduler is not None:
            decision = scheduler.decide(trial_id, trial.config, flat)
        if decision == TrialScheduler.STOP or flat.get("final"):
            searcher.on_trial_complete(trial_id, flat)
            return False
        searcher.on_trial_result(trial_id, flat)
        return True
