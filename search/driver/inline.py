"""The inline executor: a search's trials one after another in this process, without Ray.

It makes the calls Ray Tune makes (``ray/tune/execution/tune_controller.py``:
``_process_trial_result``, ``stop_trial``, ``_process_trial_failure``), in the same order, on the
same objects the Ray executor uses, so a search run inline stores what `search run` would with
``--concurrency 1``:

- the next trial's config comes from ``StudySearcher.suggest`` (``None``: ask again after a
  pause, as Tune polls; ``Searcher.FINISHED``: no more trials);
- the trial runs the Ray trainable, ``run_measured_trial``, with the driver's ``TrialSettings``
  and the split held in this process (``LocalData``); its final result carries the worker's clock
  readings, so the searcher stores the overhead attrs (``with_overhead``) as under Ray;
- each result, flattened as Tune flattens it, goes to the scheduler first (MO-ASHA,
  ``make_scheduler(config.epochs)``): STOP ends the trial and hands that result to
  ``on_trial_complete``, CONTINUE hands it to ``on_trial_result``; a trial that returns without
  being stopped is completed with its last result;
- an exception of the trial (the worker's ``TrialFailed`` with its one-line reason, or any other
  ``Exception``) ends as ``on_trial_complete(error=True)`` with that reason recorded on the
  searcher's ``TrialWatch``, the way the Ray executor reads Ray's record of the error: that
  trial is FAIL (infeasible for "memory: ...") and the search goes on;
- it stops on ``searcher.stopping`` (Ctrl-C / SIGTERM, a study that cannot be written),
  ``Searcher.FINISHED`` or after ``remaining`` trials (Tune's ``num_samples``).

Differences from Ray by construction: one trial at a time (``--concurrency 1`` only, no
``--ray-address``); no worker start-up and no copy of the data; a first Ctrl-C stops the running
trial at its next epoch report rather than at once; ``--trial-timeout`` is enforced by the
trainer (``TrainConfig.time_limit_s``) but a step that hangs is not killed.

Three options exist for benchmarks only (`search run` has no flag for them): ``scheduler=None``
trains every trial all its epochs (random search's baseline), ``epoch_budget`` stops
starting trials once the trials have trained that many epochs (a comparison at equal compute),
and ``trial`` replaces the training with a simulated one (``search.worker.curves``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TextIO

from ray.tune.schedulers.trial_scheduler import TrialScheduler
from ray.tune.utils import flatten_dict

from common.errors import Fault, TrialFailed, UserError
from search.driver.executor import Resources, RunSettings, Work, stop_on_signals
from search.strategy.scheduler import ParetoASHA, make_scheduler
from search.worker.faults import failure_fault
from search.worker.shared_data import LocalData
from search.worker.trainable import TrialFunction, run_measured_trial
from search.worker.trial import run_trial

SchedulerFactory = Callable[[int], ParetoASHA]  # epochs -> scheduler
POLL_S = 1.0  # pause before asking again when the searcher has nothing to start yet


class _Stop(BaseException):
    """Ends the running trial from its report callback (a ``BaseException``, so the trainer's
    error handling does not turn it into a failure; Ray stops its trials from outside)."""


class InlineExecutor:
    """Trials in turn in this process, through the searcher, the scheduler and the trainable."""

    def __init__(
        self,
        scheduler: SchedulerFactory | None = make_scheduler,
        epoch_budget: int | None = None,
        trial: TrialFunction = run_trial,
    ) -> None:
        self.scheduler = scheduler
        self.epoch_budget = epoch_budget
        self.trial = trial  # a real training, or a simulated one (search.worker.curves)
        self.epochs_trained = 0  # over the trials of the last run (the last result's epoch)

    def session(
        self, config: RunSettings, resources: Resources, data_bytes: int, stream: TextIO
    ) -> contextlib.nullcontext[None]:
        """Nothing to start; refuses what only Ray can do (before the study is touched)."""
        if config.concurrency != 1 or config.ray_address:
            raise UserError(
                "the inline executor runs one trial at a time in this process: use "
                "--concurrency 1 and no --ray-address (or the Ray executor)"
            )
        return contextlib.nullcontext()

    def run(self, work: Work) -> bool:
        """Run trials until the study has them; True when stopped by Ctrl-C / SIGTERM."""
        searcher = work.searcher
        scheduler = self.scheduler(work.config.epochs) if self.scheduler else None
        data = LocalData(work.train, work.val, work.holdout)
        self.epochs_trained = started = 0
        try:
            with stop_on_signals(searcher):
                while started < work.remaining and not searcher.stopping:
                    if self.epoch_budget is not None and self.epochs_trained >= self.epoch_budget:
                        break
                    trial_id = f"inline_{started:05d}"
                    suggested = searcher.suggest(trial_id)
                    if suggested is None:
                        time.sleep(POLL_S)
                        continue
                    if not isinstance(suggested, dict):  # Searcher.FINISHED
                        break
                    started += 1
                    last = self._trial(trial_id, suggested, data, work, scheduler)
                    self.epochs_trained += int(last.get("epoch", 0) or 0)
        finally:
            interrupted = searcher.interrupted
            searcher.interrupt_live()
        return interrupted

    def _trial(
        self,
        trial_id: str,
        config: dict[str, Any],
        data: LocalData,
        work: Work,
        scheduler: ParetoASHA | None,
    ) -> dict[str, Any]:
        """One trial, start to end; returns its last result (``{}`` when it reported none)."""
        searcher = work.searcher
        last: dict[str, Any] = {}
        completed = False

        def report(result: dict[str, Any]) -> None:
            nonlocal completed
            flat = flatten_dict(dict(result))
            last.clear()
            last.update(flat)
            decision = TrialScheduler.CONTINUE
            if scheduler is not None:
                decision = scheduler.decide(trial_id, config, flat)
            if decision == TrialScheduler.STOP:
                completed = True
                searcher.on_trial_complete(trial_id, flat)
                raise _Stop
            searcher.on_trial_result(trial_id, flat)
            if searcher.stopping:  # Ctrl-C / SIGTERM: Tune would stop the trial now
                raise _Stop

        try:
            run_measured_trial(config, data, work.settings, report, self.trial)
        except _Stop:
            pass
        except Exception as exc:  # this trial's failure, never the search's
            if not completed:
                completed = True
                if searcher.watch is not None:
                    searcher.watch.note_error(trial_id, _fault(exc))
                searcher.on_trial_complete(trial_id, error=True)
        if not completed:
            searcher.on_trial_complete(trial_id, last or None)
        return last


def _fault(exc: BaseException) -> Fault:
    """The trial's fault, as ``search.driver.watch.ray_error_fault`` names a trial's own
    exception: the worker's ``TrialFailed`` as it says, anything else by its type."""
    return exc.fault if isinstance(exc, TrialFailed) else failure_fault(exc)
