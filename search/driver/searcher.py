"""A Ray Tune ``Searcher`` that asks Optuna for candidates and tells it what happened.

Written instead of Ray's ``OptunaSearch`` (ray/tune/search/optuna/optuna_search.py) because that
bridge gets three things wrong for this project:
- it tells COMPLETE with whatever result came last, so a trial the scheduler stopped after one
  epoch would enter the Pareto front with a half-trained accuracy. Here COMPLETE needs the
  trainable's own final report (``final`` and ``done_epochs == epochs``); anything else that
  trained is PRUNED (status "pruned", last accuracy and epoch kept as attrs);
- it cannot express "over budget, do not train": here infeasible candidates are told PRUNED
  (status "infeasible", "constraint" attr) inside ``suggest`` and never reach Ray;
- it cannot record why a trial failed or re-queue interrupted ones.

Faults: a trial that errors is FAIL with the one-line reason
:class:`~search.driver.watch.TrialWatch` reads from Ray's record of the error, or PRUNED
"infeasible" when its fault's kind says the candidate does not fit in memory at all; only trials the
driver itself stops (Ctrl-C / SIGTERM) and trials a dead driver left RUNNING are re-queued, once.
Several drivers may search one study: this one holds a lease on each trial it runs
(``search.study.lease``), counts the live trials of the others towards ``--trials``, and recovers
only trials whose lease has expired. A storage error (a full disk) stops the search: nothing more
can be written, the caller reports it in one line, and the trials still RUNNING are recovered by the
next run.

In each driver process, only this object writes the study: the per-epoch accuracy goes into user
attrs as results arrive, so `optuna-dashboard` shows the search live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState
from ray.tune.search import Searcher

from common.clock import DECISIONS
from common.errors import Fault, FaultKind
from search.driver.overhead import DECISION_ATTRS, OVERHEAD_ATTRS, decision_attrs, with_overhead
from search.driver.watch import TrialWatch
from search.strategy.planner import FINISHED, WAIT, Candidate, Planner
from search.study import schema
from search.study.feed import StudyTally
from search.study.lease import Driver, Lease
from search.study.ledger import (
    interruption_reason,
    recover_stale,
    requeue,
    requeues,
    trial_seed,
    versions,
)
from search.study.schema import (
    INFEASIBLE,
    INTERRUPTED,
    RUNNING,
    cost_values,
    objectives_of,
)
from search.study.snapshot import decision, set_user_attrs

# what a database that cannot be written (full disk, lost server) raises through Optuna
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)
NO_REPORT = "ended before it reported anything"


@dataclass(frozen=True)
class Outcome:
    """How a finished Ray trial is stored: Optuna state, status attr, reason."""

    state: TrialState
    status: str
    reason: str | None = None
    interrupted: bool = False  # stopped by the search itself: re-queued unless a replay


def classify(
    result: dict[str, Any] | None,
    error: bool,
    epochs: int,
    interrupted: bool,
    fault: Fault | None = None,
) -> Outcome:
    """Map Ray's end-of-trial notification to the study schema (pure; unit-tested).

    Only the driver's own stop (``interrupted``) yields "interrupted" (re-queued). An error is
    decided by its ``fault``'s kind: :attr:`~common.errors.FaultKind.INFEASIBLE_MEMORY` (the
    candidate does not fit even at micro-batch 1) is PRUNED "infeasible" like an over-budget
    candidate, with the reason as its constraint; every other kind is FAIL with the reason. A
    trial that ends without any report is FAIL, not re-queued."""
    if result and result.get("fail_reason"):
        return Outcome(TrialState.FAIL, "failed", str(result["fail_reason"]))
    if result and result.get("final") and result.get("done_epochs") == epochs:
        return Outcome(TrialState.COMPLETE, "complete")
    if interrupted:
        return Outcome(TrialState.FAIL, "failed", INTERRUPTED, interrupted=True)
    if error:
        if fault is None:
            return Outcome(TrialState.FAIL, "failed", "Ray trial error (no details)")
        if fault.kind == FaultKind.INFEASIBLE_MEMORY:
            return Outcome(TrialState.PRUNED, "infeasible", fault.reason)
        return Outcome(TrialState.FAIL, "failed", fault.reason)
    if not result:
        return Outcome(TrialState.FAIL, "failed", NO_REPORT)
    return Outcome(TrialState.PRUNED, "pruned")


Listener = Callable[[str, dict[str, Any]], None]


class StudySearcher(Searcher):
    """Optuna ask/tell behind Ray's Searcher interface; one Optuna trial per Ray trial."""

    def __init__(
        self,
        study: optuna.Study,
        planner: Planner,
        listener: Listener | None = None,
        lease: Lease | None = None,
        watch: TrialWatch | None = None,
    ) -> None:
        super().__init__(metric="accuracy", mode="max")
        self.study = study
        self.planner = planner
        self.config = planner.config
        # the study's own objectives (a final's companion study: accuracy and MACs)
        self.objectives = objectives_of(study)
        self.listener = listener or (lambda event, info: None)
        self.lease = lease
        self.watch = watch
        self.interrupted = False
        self.storage_error: BaseException | None = None
        self._live: dict[str, optuna.Trial] = {}
        self._curves: dict[str, tuple[list[float], list[float]]] = {}
        self._suggested: dict[str, float] = {}  # trial id -> time.time() of its suggestion
        self._versions = versions()
        self._driver = (lease.driver if lease else Driver.here()).attr()
        self._next_recovery = time.monotonic() + (lease.interval_s if lease else 0.0)
        self._tally = StudyTally(study)  # each finished trial counted once

    @property
    def stopping(self) -> bool:
        """Ctrl-C / SIGTERM, or the study can no longer be written: start nothing more."""
        return self.interrupted or self.storage_error is not None

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles the tuner's searcher for its own restore files; the study lives in the
        database, not in those files, so only the metric settings travel."""
        return {"_metric": self._metric, "_mode": self._mode}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study database is the search's state (resume reads it)."""

    def restore(self, checkpoint_path: str) -> None:
        """See :meth:`save`."""

    # ----- Ray's Searcher interface ------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        try:
            # one read and one write (search.study.snapshot), timed for the trial (common.clock)
            with DECISIONS.deciding(trial_id), decision(self.study):
                return self._suggest(trial_id)
        except STORAGE_ERRORS as exc:
            self.storage_failed(exc)
            return Searcher.FINISHED

    def _suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while True:
            if self.stopping:
                return Searcher.FINISHED
            self._recover_periodically()
            counts = self._tally.update().counts
            if counts.done + counts.running >= self.config.trials:
                # the live trials of other drivers count too; wait for ours, leave theirs
                return None if self._live else Searcher.FINISHED
            stage = self.planner.next_stage(self.study, len(self._live))
            if stage == WAIT:
                return None
            if stage == FINISHED:
                return Searcher.FINISHED
            trial = self.study.ask()
            stage = trial.user_attrs.get(schema.STAGE, stage)
            candidate = self.planner.candidate(trial, stage)
            seed = int(
                trial.user_attrs.get(schema.SEED, trial_seed(self.config.seed, trial.number))
            )
            self._record_start(trial, candidate, seed)
            if candidate.constraint is None:
                if self.lease is not None:  # only a trial that trains needs a lease
                    self.lease.hold(trial._trial_id)
                break
            self.study.tell(trial, state=TrialState.PRUNED)
            self.listener("infeasible", {"number": trial.number, "reason": candidate.constraint})
        self._live[trial_id] = trial
        self._curves[trial_id] = ([], [])
        self._suggested[trial_id] = time.time()
        self.listener("started", {"number": trial.number, "spec": candidate.spec.canonical()})
        return {
            "spec": candidate.spec.canonical(),
            "number": trial.number,
            "seed": seed,
            "stage": candidate.stage,
            # the objective costs, known before training: what MO-ASHA ranks with accuracy
            "costs": cost_values(trial.user_attrs, self.objectives),
        }

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self._live.get(trial_id)
        if trial is None or result.get("final") or "accuracy" not in result:
            return
        if self.storage_error is not None:
            return
        try:
            with DECISIONS.deciding(trial_id), decision(self.study):
                if result.get("validated", True):
                    self._store_epoch(trial_id, trial, result)
                else:
                    self._store_progress(trial, result)
        except STORAGE_ERRORS as exc:
            self.storage_failed(exc)

    def _store_progress(self, trial: optuna.Trial, result: dict[str, Any]) -> None:
        """An epoch of a final, which validates nothing while it trains: its count (progress
        and ETA) and training loss, no accuracy."""
        epochs = int(result.get("done_epochs", 0))
        set_user_attrs(trial, {schema.EPOCHS_RUN: epochs})
        loss = float(result.get("train_loss", float("nan")))
        self.listener("epoch", {"number": trial.number, schema.EPOCHS_RUN: epochs, "loss": loss})

    def _store_epoch(self, trial_id: str, trial: optuna.Trial, result: dict[str, Any]) -> None:
        accuracies, losses = self._curves[trial_id]
        accuracies.append(float(result["accuracy"]))
        losses.append(float(result.get("loss", float("nan"))))
        trial_attrs = {
            schema.ACCURACY_PER_EPOCH: accuracies,
            schema.LOSS_PER_EPOCH: losses,
            schema.EPOCHS_RUN: int(result.get("done_epochs", len(accuracies))),
            schema.LAST_ACCURACY: accuracies[-1],
        }
        if result.get("node_ip"):  # on a cluster: which machine trains it
            trial_attrs[schema.NODE] = str(result["node_ip"])
        set_user_attrs(trial, trial_attrs)
        self.listener("epoch", {"number": trial.number, **trial_attrs})

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        try:
            with DECISIONS.deciding(trial_id):
                self._complete(trial_id, result, error)
        finally:
            DECISIONS.forget(trial_id)

    def _complete(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        accuracies, losses = self._curves.pop(trial_id)
        if self.storage_error is not None:  # nothing can be written: the next run recovers it
            self._release(trial)
            return
        result = with_overhead(result, self._suggested.pop(trial_id, None))
        result.update(decision_attrs(DECISIONS.so_far(trial_id)))
        fault = self.watch.error_fault(trial_id) if error and self.watch else None
        outcome = classify(result, error, self.config.epochs, self.interrupted, fault)
        try:
            with decision(self.study):
                if outcome.interrupted:
                    outcome = replace(outcome, reason=interruption_reason(trial.user_attrs))
                self.tell(trial, outcome, result or {}, accuracies, losses)
        except STORAGE_ERRORS as exc:
            self.storage_failed(exc)
        except optuna.exceptions.UpdateFinishedTrialError:
            # another driver found its lease expired and recovered it; its replay runs there
            self.listener("lost", {"number": trial.number, "reason": "recovered by another driver"})
        finally:
            self._release(trial)

    # ----- driver-side helpers ------------------------------------------------------------------
    def tell(
        self,
        trial: optuna.Trial,
        outcome: Outcome,
        result: dict[str, Any],
        accuracies: list[float],
        losses: list[float],
    ) -> None:
        """Store one finished trial (attrs first: Optuna freezes attrs once a trial is told)."""
        if result.get("final"):
            accuracies = list(result.get("accuracy_per_epoch", accuracies))
            losses = list(result.get("loss_per_epoch", losses))
        elif "accuracy" in result and int(result.get("done_epochs", 0)) > len(accuracies):
            # the result that made the scheduler stop the trial reaches only on_trial_complete
            # (Ray's TuneController skips on_trial_result for it)
            accuracies = [*accuracies, float(result["accuracy"])]
            losses = [*losses, float(result.get("loss", float("nan")))]
        attrs: dict[str, Any] = {
            schema.STATUS: outcome.status,
            schema.ACCURACY_PER_EPOCH: accuracies,
            schema.LOSS_PER_EPOCH: losses,
            schema.EPOCHS_RUN: int(result.get("done_epochs", len(accuracies)) or len(accuracies)),
        }
        if accuracies:
            attrs[schema.LAST_ACCURACY] = accuracies[-1]
        if outcome.reason:
            attrs[schema.CONSTRAINT if outcome.status == INFEASIBLE else schema.FAIL_REASON] = (
                outcome.reason
            )
        for key in (*schema.RESULT_ATTRS, *OVERHEAD_ATTRS, *DECISION_ATTRS):
            if key in result:
                attrs[key] = result[key]
        if result.get(schema.WEIGHTS_DIR):
            attrs[schema.WEIGHTS_DIR] = result[schema.WEIGHTS_DIR]
        if result.get("node_ip"):  # Ray Tune adds it to every result
            attrs[schema.NODE] = str(result["node_ip"])
        set_user_attrs(trial, attrs)  # with the state below: one transaction in a decision
        if outcome.status == INFEASIBLE:
            # TPE: infeasible, not a result (search.strategy.sampler)
            trial.set_constraint("memory", 1.0)
        values = None
        if outcome.state == TrialState.COMPLETE:
            costs = cost_values(trial.user_attrs, self.objectives)
            values = [float(result["accuracy"]), *(costs or [])]
        frozen = self.study.tell(trial, values, state=outcome.state)
        if outcome.interrupted and requeues(trial.user_attrs):
            requeue(self.study, frozen, self.config.seed)
        self.listener(
            INTERRUPTED if outcome.interrupted and requeues(trial.user_attrs) else outcome.status,
            {"number": trial.number, "reason": outcome.reason, "values": values, **attrs},
        )

    def interrupt_live(self) -> list[int]:
        """After Ray stopped (Ctrl-C): every trial still live becomes FAIL "interrupted"."""
        self.interrupted = True
        numbers = []
        for trial_id in list(self._live):
            numbers.append(self._live[trial_id].number)
            self.on_trial_complete(trial_id, None, error=False)
        return numbers

    def storage_failed(self, exc: BaseException) -> None:
        """Remember the first storage error; :attr:`stopping` ends the search."""
        if self.storage_error is None:
            self.storage_error = exc

    def recover(self) -> list[int]:
        """Fail "interrupted" and re-queue the RUNNING trials that no live driver holds (any
        host, see ``search.study.lease``); returns their numbers."""
        if self.lease is None:
            return []
        with DECISIONS.part("lease"), decision(self.study):
            stale = self.lease.stale(self.study)
            replayed = {t.number for t in stale if requeues(t.user_attrs)}
            recovered = recover_stale(self.study, self.config.seed, stale)
        for number, reason in recovered:
            if number in replayed:
                event, reason = "re-queued", "left running by a driver that is gone"
            else:
                event = "failed"
            self.listener(event, {"number": number, "reason": reason})
        return [number for number, _ in recovered]

    def _recover_periodically(self) -> None:
        if self.lease is None or time.monotonic() < self._next_recovery:
            return
        self._next_recovery = time.monotonic() + self.lease.interval_s
        self.recover()

    def _release(self, trial: optuna.Trial) -> None:
        if self.lease is not None:
            self.lease.release(trial._trial_id)

    def _record_start(self, trial: optuna.Trial, candidate: Candidate, seed: int) -> None:
        spec = candidate.spec
        attrs: dict[str, Any] = {
            schema.SPEC: spec.canonical(),
            schema.SPEC_JSON: spec.to_dict(),
            schema.SPEC_ID: spec.spec_id,
            schema.BLOCK: spec.block,
            schema.MACS: candidate.macs,
            schema.PARAMS: candidate.params,
            schema.STAGE: candidate.stage,
            schema.SEED: seed,
            schema.VERSIONS: self._versions,
            schema.STATUS: RUNNING if candidate.constraint is None else INFEASIBLE,
            schema.DRIVER: self._driver,
        }
        if candidate.constraint is not None:
            attrs[schema.CONSTRAINT] = candidate.constraint
        if candidate.latency is not None:
            attrs[schema.LATENCY_MS] = candidate.latency.median_ms
            attrs[schema.LATENCY] = candidate.latency.to_dict()
        set_user_attrs(trial, attrs)
