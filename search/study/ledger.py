"""Reading and repairing the study's record: counts per status, the Pareto front, re-queueing.

The study schema is the shared contract of the project (written here, read by ``reports``):
Optuna states plus a "status" user attr that tells the two kinds of PRUNED apart ("pruned" =
stopped early by the scheduler, "infeasible" = over budget and never trained) and marks
interrupted FAIL trials ("fail_reason" "interrupted"), which are re-queued with the same params.
Only trials the search itself stopped (Ctrl-C / SIGTERM, or a dead driver's stale trials) are
interrupted, and a replay is re-queued at most once: interrupted again, it fails for good
("interrupted twice: ..."), so no trial can make every resume start over.
"""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

INTERRUPTED = "interrupted"
REQUEUED_ONCE = "interrupted twice"
# user attrs a re-queued trial inherits, so its replay is the same candidate with the same seed
REQUEUE_ATTRS = ("stage", "seed", "start_gamma", "parent")


def status_of(trial: FrozenTrial) -> str:
    """The trial's status attr, falling back on its Optuna state for foreign trials."""
    status = trial.user_attrs.get("status")
    if trial.state == TrialState.RUNNING:
        return "running"
    if trial.state == TrialState.WAITING:
        return "waiting"
    if isinstance(status, str) and status != "running":
        return status
    return {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
    }[trial.state]


def is_interrupted(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") == INTERRUPTED


@dataclass(frozen=True)
class Counts:
    """Trials per status; ``done`` is what counts towards ``--trials``."""

    complete: int = 0
    pruned: int = 0
    infeasible: int = 0
    failed: int = 0
    interrupted: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> Counts:
        tally = dict.fromkeys(
            ("complete", "pruned", "infeasible", "failed", "interrupted", "running", "waiting"), 0
        )
        for trial in trials:
            status = "interrupted" if is_interrupted(trial) else status_of(trial)
            tally[status if status in tally else "failed"] += 1
        return cls(**tally)


def pareto_front(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials that no other COMPLETE trial beats on both accuracy (max) and MACs (min).

    Sorted by MACs; ties on both objectives are all kept (they are equally optimal).
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    front = [
        t
        for t in complete
        if not any(
            o.values[0] >= t.values[0]
            and o.values[1] <= t.values[1]
            and (o.values[0] > t.values[0] or o.values[1] < t.values[1])
            for o in complete
        )
    ]
    return sorted(front, key=lambda t: (t.values[1], -t.values[0], t.number))


def best_accuracy(trials: list[FrozenTrial]) -> float | None:
    values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
    return max(values) if values else None


def requeue(study: optuna.Study, trial: FrozenTrial, seed: int | None = None) -> bool:
    """Enqueue the same params (and replay attrs) again; the new trial gets the next number.

    ``seed`` (the search's --seed) rebuilds the per-trial seed of a trial killed before its
    attrs were written, so the replay trains with the seed the original would have used.
    Returns False when a replay of ``trial`` is already queued (two drivers recovering the same
    stale trial at once).
    """
    trials = study.get_trials(deepcopy=False)
    if any(t.user_attrs.get("requeued_from") == trial.number for t in trials):
        return False
    attrs = {k: trial.user_attrs[k] for k in REQUEUE_ATTRS if k in trial.user_attrs}
    if "seed" not in attrs and seed is not None:
        attrs["seed"] = trial_seed(seed, trial.number)
    if "start_gamma" not in attrs and "spec_json" in trial.user_attrs:
        attrs["start_gamma"] = trial.user_attrs["spec_json"].get("gamma")
    attrs["requeued_from"] = trial.number
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)
    return True


def interruption_reason(user_attrs: dict[str, Any]) -> str:
    """ "interrupted" (re-queue it) for a first interruption; a replay is re-queued only once,
    so a replay interrupted again fails for good with a reason that says so."""
    origin = user_attrs.get("requeued_from")
    if origin is None:
        return INTERRUPTED
    return f"{REQUEUED_ONCE}: interrupted again; trial {origin} was already re-queued once"


def interrupt(study: optuna.Study, trial: FrozenTrial, seed: int) -> str | None:
    """Fail a stale RUNNING trial "interrupted" and re-queue it (once, see
    :func:`interruption_reason`); returns the reason stored, or None when another driver
    finished or recovered it first (the state change is the claim: one recoverer re-queues)."""
    storage = study._storage  # Optuna has no public setter for another process's trial
    reason = interruption_reason(trial.user_attrs)
    try:
        storage.set_trial_user_attr(trial._trial_id, "status", "failed")
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    if reason == INTERRUPTED:
        requeue(study, storage.get_trial(trial._trial_id), seed)
    return reason


def recover_stale(
    study: optuna.Study, seed: int, stale: list[FrozenTrial]
) -> list[tuple[int, str]]:
    """Trials left RUNNING by a driver that is gone (``stale``, from ``search.study.lease``) become
    FAIL "interrupted" and are re-queued; returns (number, reason) of those this call
    recovered (reason "interrupted twice: ..." for a replay, which is not re-queued again)."""
    recovered = []
    for trial in stale:
        reason = interrupt(study, trial, seed)
        if reason is not None:
            recovered.append((trial.number, reason))
    return recovered


def trial_seed(seed: int, number: int) -> int:
    """A per-trial seed derived from --seed and the trial number (stored for replay)."""
    return (seed * 1_000_003 + number) % 2**31


def versions() -> dict[str, str]:
    """Package versions stored on every trial, so a result can be replayed."""
    found = {"python": platform.python_version()}
    for package in ("effnas", "torch", "optuna", "ray", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
