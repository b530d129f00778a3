"""Terminal progress for `search run` (stderr) and the end-of-run summary table.

Each event (trial started, epoch, complete, pruned, infeasible, failed, interrupted) prints one
line with the running tally, the best accuracy so far, the Pareto front size and an estimate of
the time left. On a terminal the tally also stays on a status line that is rewritten in place;
in a pipe or a log file every event is one plain line (no carriage returns), so logs stay
readable.

The ETA (:meth:`Progress.eta`) is measured: the wall time of this run so far per epoch trained
in it (all trials, so it carries the concurrency and the networks' sizes met so far), times the
epochs left (the running trials' rest, and every trial not started yet at the full count;
MO-ASHA stopping a trial early makes it shorter). Until a first epoch is done it counts down the
estimate printed before the first trial (``search.driver.estimate``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study import schema
from search.study.feed import StudyTally, epochs_run
from search.study.front import pareto_front
from search.study.schema import (
    COMPLETE,
    INFEASIBLE,
    INTERRUPTED,
    PRUNED,
    is_interrupted,
    status_of,
)


class Progress:
    """Listens to the searcher's events and redraws the tally from the study."""

    def __init__(
        self,
        study: optuna.Study,
        trials: int,
        stream: TextIO | None = None,
        epochs: int | None = None,
        finals: bool = False,
    ) -> None:
        """``epochs``: per trial, for the ETA (None: no ETA). ``finals``: the study holds final
        trainings, whose value is a test score: shown as the highest so far, with no front (the
        test split measures, it does not choose, ``reports.finals``)."""
        self.study = study
        self.trials = trials
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.epochs = epochs
        self.finals = finals
        self.estimate_s: float | None = None  # the estimate printed before the first trial
        self.started = time.monotonic()
        self.tally = StudyTally(study)  # each finished trial read once
        self._before = self.tally.update().epochs_trained() if epochs else 0

    def restart_clock(self) -> None:
        """Time from now on (the first trial starts): set-up is not a trial's time."""
        self.started = time.monotonic()

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        number = info.get("number")
        if event == "started":
            detail = info["spec"]
        elif event == "epoch" and schema.LAST_ACCURACY not in info:  # a final's epoch
            detail = f"epoch {info[schema.EPOCHS_RUN]} training loss {info.get('loss', 0.0):.4f}"
        elif event == "epoch":
            detail = f"epoch {info[schema.EPOCHS_RUN]} accuracy {info[schema.LAST_ACCURACY]:.4f}"
        elif event == COMPLETE:  # the objective as stored (a final's: its test accuracy)
            values = info.get("values") or [info.get(schema.LAST_ACCURACY, float("nan"))]
            detail = f"accuracy {values[0]:.4f}"
        elif event == PRUNED:
            detail = (
                f"stopped early after epoch {info.get(schema.EPOCHS_RUN)} "
                f"(accuracy {info.get(schema.LAST_ACCURACY, float('nan')):.4f})"
            )
        else:
            detail = str(info.get("reason") or "")
        self.say(f"trial {number} {event}: {detail}")

    def say(self, message: str) -> None:
        status = self.status_line()
        if self.tty:
            self.stream.write(f"\r\033[K{message}\n{status}")
        else:
            self.stream.write(f"{message} | {status}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def status_line(self) -> str:
        tally = self.tally.update()
        counts, best = tally.counts, tally.best
        elapsed = time.monotonic() - self.started
        shown = "-" if best is None else f"{best:.4f}"
        if self.finals:
            result = f"highest test {shown}"
        else:
            result = f"best {shown}, pareto {len(tally.front)}"
        return (
            f"[{elapsed:6.0f}s] done {counts.done}/{self.trials}, running {counts.running}, "
            f"pruned {counts.pruned}, infeasible {counts.infeasible}, failed {counts.failed}, "
            f"{result}{self.eta(tally, elapsed)}"
        )

    def eta(self, tally: StudyTally, elapsed: float) -> str:
        """ ", ETA ..." from the epochs trained in this run (see the module docstring); "" when
        there is nothing to go on or nothing left."""
        if self.epochs is None:
            return ""
        counts = tally.counts
        running = [t for t in tally.unfinished if t.state == TrialState.RUNNING]
        left = sum(max(0, self.epochs - epochs_run(t)) for t in running)
        left += max(0, self.trials - counts.done - counts.running) * self.epochs
        if left == 0:
            return ""
        measured = tally.epochs_trained() - self._before
        if measured > 0:
            return f", ETA {duration(left * elapsed / measured)} (from {measured} epochs)"
        if self.estimate_s is not None:
            return f", ETA {duration(max(0.0, self.estimate_s - elapsed))} (estimate)"
        return ""


def duration(seconds: float) -> str:
    """``seconds`` as a person says it: 45 s, 12 min, 3.5 h, 41 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def summary_rows(trials: list[FrozenTrial], limit: int = 20) -> list[FrozenTrial]:
    """Pareto trials first (by MACs), then the other trained trials by accuracy, then the rest."""
    front = pareto_front(trials)
    on_front = {t.number for t in front}

    def accuracy(t: FrozenTrial) -> float:
        if t.state == TrialState.COMPLETE and t.values:
            return t.values[0]
        return float(t.user_attrs.get(schema.LAST_ACCURACY, -1.0))

    rest = sorted(
        (t for t in trials if t.number not in on_front and t.state != TrialState.WAITING),
        key=lambda t: (status_of(t) == INFEASIBLE, -accuracy(t), t.number),
    )
    return (front + rest)[:limit]


def summary_table(trials: list[FrozenTrial], limit: int = 20) -> str:
    """A fixed-width table of the best trials (Pareto-optimal ones marked with '*'); an ``ms``
    column only when a trial was timed (a study without latency has nothing to show there)."""
    on_front = {t.number for t in pareto_front(trials)}
    rows = summary_rows(trials, limit)
    timed = any(isinstance(t.user_attrs.get(schema.LATENCY_MS), int | float) for t in rows)
    ms_head = f" {'ms':>8}" if timed else ""
    lines = [
        f"{'':1} {'#':>4}  {'status':<11} {'stage':<6} {'accuracy':>8} {'MACs':>14} "
        f"{'params':>11}{ms_head} {'epochs':>6}  spec"
    ]
    for trial in rows:
        if trial.state == TrialState.COMPLETE and trial.values:
            accuracy = f"{trial.values[0]:.4f}"
        elif schema.LAST_ACCURACY in trial.user_attrs:
            accuracy = f"({trial.user_attrs[schema.LAST_ACCURACY]:.4f})"
        else:
            accuracy = "-"
        status = INTERRUPTED if is_interrupted(trial) else status_of(trial)
        attrs = trial.user_attrs
        latency = attrs.get(schema.LATENCY_MS)
        shown_ms = f"{latency:.3g}" if isinstance(latency, int | float) else "-"
        ms_cell = f" {shown_ms:>8}" if timed else ""
        lines.append(
            f"{'*' if trial.number in on_front else ' ':1} {trial.number:>4}  "
            f"{status:<11} {attrs.get(schema.STAGE, '-'):<6} {accuracy:>8} "
            f"{attrs.get(schema.MACS, 0):>14,} {attrs.get(schema.PARAMS, 0):>11,}{ms_cell} "
            f"{attrs.get(schema.EPOCHS_RUN, 0):>6}  {attrs.get(schema.SPEC, '-')}"
        )
    shown = len(lines) - 1
    total = sum(1 for t in trials if t.state != TrialState.WAITING)
    if total > shown:
        lines.append(f"... {total - shown} more trial(s); see `search best` or the dashboard")
    return "\n".join(lines)
