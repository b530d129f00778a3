"""Incremental readers of a study: what finished since a reader last looked, and what is live now.

Finished trials never change (Optuna refuses to update them), so a reader that keeps a tally or
an index over them needs each one once: :class:`TrialFeed` hands a reader the trials that
finished since its last call and the unfinished (RUNNING, WAITING) trials as they are now. On the
driver's :class:`~search.study.snapshot.SnapshotStorage` that is a slice of its append-only log
of finished trials, so a reader's cost per call is what changed, not the study's size; on any
other storage (a plain ``RDBStorage``, a test's in-memory study) it reads all trials and looks
only at the new ones and those it last saw unfinished, with the same results.
:class:`StudyTally` keeps the counts, the best accuracy and the Pareto front on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study import schema
from search.study.front import pareto_front, trial_point
from search.study.schema import Counts
from search.study.snapshot import SnapshotStorage


class TrialFeed:
    """One reader's position in ``study``'s finished trials."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._position = 0  # in the snapshot's finished log
        self._next = 0  # other storages: the first trial number not looked at yet
        self._unfinished: list[int] = []  # other storages: numbers last seen unfinished

    def read(self) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """(trials finished since the last call, the unfinished trials now, by number)."""
        storage = self.study._storage
        if isinstance(storage, SnapshotStorage):
            study_id = self.study._study_id
            log = storage.finished_trials(study_id)
            new = log[self._position :]
            self._position = len(log)
            return new, storage.unfinished_trials(study_id)
        # a study's trials are numbered 0, 1, ... in order: look at the new ones and at those
        # that were unfinished last time only
        trials = self.study.get_trials(deepcopy=False)
        end = trials[-1].number + 1 if trials else 0
        numbered: Sequence[FrozenTrial] | dict[int, FrozenTrial] = trials
        if len(trials) != end:  # gaps in the numbers (a foreign study): look them up
            numbered = {t.number: t for t in trials}
        new, unfinished = [], []
        for number in [*self._unfinished, *range(self._next, end)]:
            if isinstance(numbered, dict) and number not in numbered:
                continue
            trial = numbered[number]
            (new if trial.state.is_finished() else unfinished).append(trial)
        self._next = end
        self._unfinished = [t.number for t in unfinished]
        return new, unfinished


class StudyTally:
    """The running tally of a study, each finished trial read once: its
    :class:`~search.study.schema.Counts`, the best accuracy and the Pareto front so far (the
    front of the finished trials and the new ones is the front of all of them, since a dominated
    trial stays dominated), as ``Counts.of``, ``best_accuracy`` and ``pareto_front`` of all the
    trials would give them."""

    def __init__(self, study: optuna.Study) -> None:
        self.feed = TrialFeed(study)
        self._finished = Counts()
        self.counts = Counts()
        self.best: float | None = None
        self.front: list[FrozenTrial] = []
        self.unfinished: list[FrozenTrial] = []  # as of the last update, by number
        self.finished_epochs = 0  # epochs trained by the finished trials

    def update(self) -> StudyTally:
        new, unfinished = self.feed.read()
        if new:
            self._finished = self._finished + Counts.of(new)
            self.finished_epochs += sum(epochs_run(t) for t in new)
            measured = [t for t in new if trial_point(t) is not None]
            if measured:
                self.front = pareto_front([*self.front, *measured])
                best = max(t.values[0] for t in measured)
                self.best = best if self.best is None else max(self.best, best)
        self.counts = self._finished + Counts.of(unfinished)
        self.unfinished = unfinished
        return self

    def epochs_trained(self) -> int:
        """Epochs trained by the study's trials, finished or running (as of the last update)."""
        running = (t for t in self.unfinished if t.state != TrialState.WAITING)
        return self.finished_epochs + sum(epochs_run(t) for t in running)


def epochs_run(trial: FrozenTrial) -> int:
    """The epochs ``trial`` has trained (0 before its first, or when it records none)."""
    value = trial.user_attrs.get(schema.EPOCHS_RUN, 0)
    return int(value) if isinstance(value, int | float) else 0
