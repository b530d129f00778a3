"""A Ray Tune ``Searcher`` that asks Optuna for candidates and tells it what happened.

Written instead of Ray's ``OptunaSearch`` (ray/tune/search/optuna/optuna_search.py) because that
bridge gets the traps of issue 6 wrong for this project:
- it tells COMPLETE with whatever result came last, so a trial the scheduler stopped after one
  epoch would enter the Pareto front with a half-trained accuracy. Here COMPLETE needs the
  trainable's own final report (``final`` and ``done_epochs == epochs``); anything else that
  trained is PRUNED (status "pruned", last accuracy and epoch kept as attrs);
- it cannot express "over budget, do not train": here infeasible candidates are told PRUNED
  (status "infeasible", "constraint" attr) inside ``suggest`` and never reach Ray;
- it cannot record why a trial failed or re-queue interrupted ones.

Only this object (in the driver process) writes the study: the per-epoch accuracy goes into user
attrs as results arrive, so `optuna-dashboard` shows the search live.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from search.ledger import INTERRUPTED, requeue, trial_seed, versions
from search.overhead import OVERHEAD_ATTRS, with_overhead
from search.planner import FINISHED, WAIT, Candidate, Planner


@dataclass(frozen=True)
class Outcome:
    """How a finished Ray trial is stored: Optuna state, status attr, reason."""

    state: TrialState
    status: str
    reason: str | None = None


def classify(result: dict[str, Any] | None, error: bool, epochs: int, interrupted: bool) -> Outcome:
    """Map Ray's end-of-trial notification to the study schema (pure; unit-tested)."""
    if result and result.get("fail_reason"):
        return Outcome(TrialState.FAIL, "failed", str(result["fail_reason"]))
    if result and result.get("final") and result.get("done_epochs") == epochs:
        return Outcome(TrialState.COMPLETE, "complete")
    if interrupted or (not result and not error):
        # stopped by Ctrl-C / shutdown, or removed before it ever reported: run it again
        return Outcome(TrialState.FAIL, "failed", INTERRUPTED)
    if error:
        return Outcome(TrialState.FAIL, "failed", "Ray trial error (worker process failed)")
    return Outcome(TrialState.PRUNED, "pruned")


Listener = Callable[[str, dict[str, Any]], None]


class StudySearcher(Searcher):
    """Optuna ask/tell behind Ray's Searcher interface; one Optuna trial per Ray trial."""

    def __init__(
        self,
        study: optuna.Study,
        planner: Planner,
        listener: Listener | None = None,
    ) -> None:
        super().__init__(metric="accuracy", mode="max")
        self.study = study
        self.planner = planner
        self.config = planner.config
        self.listener = listener or (lambda event, info: None)
        self.interrupted = False
        self._live: dict[str, optuna.Trial] = {}
        self._curves: dict[str, tuple[list[float], list[float]]] = {}
        self._suggested: dict[str, float] = {}  # trial id -> time.time() of its suggestion
        self._versions = versions()
        self._driver = {"host": socket.gethostname(), "pid": os.getpid()}

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
        while True:
            if self.interrupted:
                return Searcher.FINISHED
            stage = self.planner.next_stage(self.study, len(self._live))
            if stage == WAIT:
                return None
            if stage == FINISHED:
                return Searcher.FINISHED
            trial = self.study.ask()
            stage = trial.user_attrs.get("stage", stage)
            candidate = self.planner.candidate(trial, stage)
            seed = int(trial.user_attrs.get("seed", trial_seed(self.config.seed, trial.number)))
            self._record_start(trial, candidate, seed)
            if candidate.constraint is None:
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
        }

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial = self._live.get(trial_id)
        if trial is None or result.get("final") or "accuracy" not in result:
            return
        accuracies, losses = self._curves[trial_id]
        accuracies.append(float(result["accuracy"]))
        losses.append(float(result.get("loss", float("nan"))))
        trial_attrs = {
            "accuracy_per_epoch": accuracies,
            "loss_per_epoch": losses,
            "epochs_run": int(result.get("done_epochs", len(accuracies))),
            "last_accuracy": accuracies[-1],
        }
        for key, value in trial_attrs.items():
            trial.set_user_attr(key, value)
        self.listener("epoch", {"number": trial.number, **trial_attrs})

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        accuracies, losses = self._curves.pop(trial_id)
        result = with_overhead(result, self._suggested.pop(trial_id, None))
        outcome = classify(result, error, self.config.epochs, self.interrupted)
        self.tell(trial, outcome, result or {}, accuracies, losses)

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
            "status": outcome.status,
            "accuracy_per_epoch": accuracies,
            "loss_per_epoch": losses,
            "epochs_run": int(result.get("done_epochs", len(accuracies)) or len(accuracies)),
        }
        if accuracies:
            attrs["last_accuracy"] = accuracies[-1]
        if outcome.reason:
            attrs["fail_reason"] = outcome.reason
        for key in ("seconds", "images_per_second", "peak_memory_bytes", *OVERHEAD_ATTRS):
            if key in result:
                attrs[key] = result[key]
        if result.get("weights_dir"):
            attrs["weights_dir"] = result["weights_dir"]
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        values = None
        if outcome.state == TrialState.COMPLETE:
            values = [float(result["accuracy"]), int(trial.user_attrs["macs"])]
        frozen = self.study.tell(trial, values, state=outcome.state)
        if outcome.reason == INTERRUPTED:
            requeue(self.study, frozen, self.config.seed)
        self.listener(
            outcome.status if outcome.reason != INTERRUPTED else INTERRUPTED,
            {"number": trial.number, "reason": outcome.reason, **attrs},
        )

    def interrupt_live(self) -> list[int]:
        """After Ray stopped (Ctrl-C): every trial still live becomes FAIL "interrupted"."""
        self.interrupted = True
        numbers = []
        for trial_id in list(self._live):
            numbers.append(self._live[trial_id].number)
            self.on_trial_complete(trial_id, None, error=False)
        return numbers

    def _record_start(self, trial: optuna.Trial, candidate: Candidate, seed: int) -> None:
        spec = candidate.spec
        attrs: dict[str, Any] = {
            "spec": spec.canonical(),
            "spec_json": spec.to_dict(),
            "spec_id": spec.spec_id,
            "block": spec.block,
            "macs": candidate.macs,
            "params": candidate.params,
            "stage": candidate.stage,
            "seed": seed,
            "versions": self._versions,
            "status": "running" if candidate.constraint is None else "infeasible",
            "driver": self._driver,
        }
        if candidate.constraint is not None:
            attrs["constraint"] = candidate.constraint
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
