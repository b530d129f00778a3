"""Terminal progress for `search run` (stderr) and the end-of-run summary table.

Each event (trial started, epoch, complete, pruned, infeasible, failed, interrupted) prints one
line with the running tally, the best accuracy so far and the Pareto front size. On a terminal
the tally also stays on a status line that is rewritten in place; in a pipe or a log file every
event is one plain line (no carriage returns), so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study import schema
from search.study.feed import StudyTally
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

    def __init__(self, study: optuna.Study, trials: int, stream: TextIO | None = None) -> None:
        self.study = study
        self.trials = trials
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.tally = StudyTally(study)  # each finished trial read once

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        number = info.get("number")
        if event == "started":
            detail = info["spec"]
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
        return (
            f"[{elapsed:6.0f}s] done {counts.done}/{self.trials}, running {counts.running}, "
            f"pruned {counts.pruned}, infeasible {counts.infeasible}, failed {counts.failed}, "
            f"best {'-' if best is None else f'{best:.4f}'}, "
            f"pareto {len(tally.front)}"
        )


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
    """A fixed-width table of the best trials (Pareto-optimal ones marked with '*')."""
    on_front = {t.number for t in pareto_front(trials)}
    lines = [
        f"{'':1} {'#':>4}  {'status':<11} {'stage':<6} {'accuracy':>8} {'MACs':>14} "
        f"{'params':>11} {'ms':>8} {'epochs':>6}  spec"
    ]
    for trial in summary_rows(trials, limit):
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
        lines.append(
            f"{'*' if trial.number in on_front else ' ':1} {trial.number:>4}  "
            f"{status:<11} {attrs.get(schema.STAGE, '-'):<6} {accuracy:>8} "
            f"{attrs.get(schema.MACS, 0):>14,} {attrs.get(schema.PARAMS, 0):>11,} {shown_ms:>8} "
            f"{attrs.get(schema.EPOCHS_RUN, 0):>6}  {attrs.get(schema.SPEC, '-')}"
        )
    shown = len(lines) - 1
    total = sum(1 for t in trials if t.state != TrialState.WAITING)
    if total > shown:
        lines.append(f"... {total - shown} more trial(s); see `search best` or the dashboard")
    return "\n".join(lines)
