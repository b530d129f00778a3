"""Repairing the study's record: re-queueing interrupted trials and recovering stale ones.

Only trials the search itself stopped (Ctrl-C / SIGTERM, or a dead driver's stale trials) are
interrupted (FAIL, "fail_reason" ``INTERRUPTED``, see ``search.study.schema``) and re-queued with
the same params. A replay is re-queued at most once: interrupted again, it fails for good
("interrupted twice: ..."), so no trial can make every resume start over.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.schema import (
    FAIL_REASON,
    FAILED,
    INTERRUPTED,
    PARENT,
    PROXY_ACCURACY,
    REPEAT,
    REQUEUED_FROM,
    SEED,
    SOURCE_TRIAL,
    SPEC_JSON,
    STAGE,
    START_GAMMA,
    STATUS,
)

REQUEUED_ONCE = "interrupted twice"
# user attrs a re-queued trial inherits, so its replay is the same candidate with the same seed
# (a final's replay also keeps which searched trial and repeat it retrains)
REQUEUE_ATTRS = (STAGE, SEED, START_GAMMA, PARENT, SOURCE_TRIAL, REPEAT, PROXY_ACCURACY)


def requeue(study: optuna.Study, trial: FrozenTrial, seed: int | None = None) -> bool:
    """Enqueue the same params (and replay attrs) again; the new trial gets the next number.

    ``seed`` (the search's --seed) rebuilds the per-trial seed of a trial killed before its
    attrs were written, so the replay trains with the seed the original would have used.
    Returns False when a replay of ``trial`` is already queued (two drivers recovering the same
    stale trial at once).
    """
    trials = study.get_trials(deepcopy=False)
    if any(t.user_attrs.get(REQUEUED_FROM) == trial.number for t in trials):
        return False
    attrs = {k: trial.user_attrs[k] for k in REQUEUE_ATTRS if k in trial.user_attrs}
    if SEED not in attrs and seed is not None:
        attrs[SEED] = trial_seed(seed, trial.number)
    if START_GAMMA not in attrs and SPEC_JSON in trial.user_attrs:
        attrs[START_GAMMA] = trial.user_attrs[SPEC_JSON].get("gamma")
    attrs[REQUEUED_FROM] = trial.number
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)
    return True


def interruption_reason(user_attrs: dict[str, Any]) -> str:
    """ "interrupted" (re-queue it) for a first interruption; a replay is re-queued only once,
    so a replay interrupted again fails for good with a reason that says so."""
    origin = user_attrs.get(REQUEUED_FROM)
    if origin is None:
        return INTERRUPTED
    return f"{REQUEUED_ONCE}: interrupted again; trial {origin} was already re-queued once"


def requeues(user_attrs: dict[str, Any]) -> bool:
    """Whether an interrupted trial is re-queued: only when it is not itself a replay."""
    return user_attrs.get(REQUEUED_FROM) is None


def interrupt(study: optuna.Study, trial: FrozenTrial, seed: int) -> str | None:
    """Fail a stale RUNNING trial "interrupted" and re-queue it (once, see
    :func:`interruption_reason`); returns the reason stored, or None when another driver
    finished or recovered it first (the state change is the claim: one recoverer re-queues)."""
    storage = study._storage  # Optuna has no public setter for another process's trial
    reason = interruption_reason(trial.user_attrs)
    try:
        storage.set_trial_user_attr(trial._trial_id, STATUS, FAILED)
        storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    if requeues(trial.user_attrs):
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
