"""What `search final` retrains: the chosen trials of a study, queued once per repeat.

The choice (``select_trials``): the study's Pareto front by default, since those are the networks
a user picks from; ``--trials 3,7,12`` for named trials; ``--top K`` for the K most accurate by
the proxy. Only COMPLETE trials have a proxy accuracy to compare a final with, so naming any
other trial is a one-line error.

The queue (``enqueue_finals``): one WAITING trial in the companion study ``S:final`` per (trial,
repeat) that has no final yet, finished, running or queued. That is what makes `search final`
resumable with the same command: finished finals are kept, a final that was running when its
driver died is failed "interrupted" and re-queued once by the same lease and recovery as the
search (``search.study.ledger``), and a final that failed for good is queued again by the next
command. Each final's seed comes from ``--seed``, the trial and the repeat, so a repeat trains
the same way whenever and wherever it runs.

``FinalPlanner`` stands where the search's ``Planner`` stands for ``StudySearcher``: it hands out
the queued finals and builds each one's candidate from its searched trial's spec (the very
network that trial trained, resolution included).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from common.errors import UserError
from search.strategy.planner import FINISHED, Candidate
from search.study import schema
from search.study.front import pareto_front
from space import ArchSpec, count_spec

FINAL_STAGE = "final"  # the "stage" attr of a final trial


def select_trials(
    source: optuna.Study, numbers: Sequence[int] = (), top: int | None = None
) -> list[FrozenTrial]:
    """The searched trials to retrain: ``numbers``, else the ``top`` by proxy accuracy, else the
    Pareto front; a UserError when there is nothing to retrain or a named trial cannot be."""
    trials = source.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    if not complete:
        raise UserError(
            f"study {source.study_name!r} has no complete trial to retrain yet; "
            f"finish the search first (search run --study {source.study_name})"
        )
    if numbers:
        by_number = {t.number: t for t in complete}
        bad = [n for n in numbers if n not in by_number]
        if bad:
            raise UserError(
                f"--trials {','.join(map(str, bad))}: not complete trials of study "
                f"{source.study_name!r} (only complete trials have an accuracy to compare); "
                f"complete trials are {sorted(by_number)}"
            )
        return [by_number[n] for n in dict.fromkeys(numbers)]
    if top is not None:
        ranked = sorted(complete, key=lambda t: (-t.values[0], t.values[1], t.number))
        return ranked[:top]
    return pareto_front(complete)


def final_seed(seed: int, number: int, repeat: int) -> int:
    """The training seed of repeat ``repeat`` of trial ``number`` (hash-mixed, 31 bits)."""
    key = f"effnas-final:{seed}:{number}:{repeat}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little") % 2**31


@dataclass(frozen=True)
class Queued:
    """What one call of :func:`enqueue_finals` found and added."""

    queued: int  # finals added to the queue now
    kept: int  # finals already complete, running or queued


def enqueue_finals(
    final: optuna.Study, selected: Sequence[FrozenTrial], repeats: int, seed: int
) -> Queued:
    """Queue every (trial, repeat) of ``selected`` x ``range(repeats)`` that has no final that is
    complete, running or waiting."""
    present = {
        (t.user_attrs.get(schema.SOURCE_TRIAL), t.user_attrs.get(schema.REPEAT))
        for t in final.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    }
    queued = kept = 0
    for trial in selected:
        for repeat in range(repeats):
            if (trial.number, repeat) in present:
                kept += 1
                continue
            final.enqueue_trial(
                {},
                user_attrs={
                    schema.SOURCE_TRIAL: trial.number,
                    schema.REPEAT: repeat,
                    schema.PROXY_ACCURACY: float(trial.values[0]),
                    schema.SEED: final_seed(seed, trial.number, repeat),
                    schema.STAGE: FINAL_STAGE,
                },
            )
            queued += 1
    return Queued(queued, kept)


class FinalPlanner:
    """The planner interface ``StudySearcher`` asks (``next_stage``, ``candidate``, ``note``,
    ``config``), for a companion study whose trials are all queued in advance."""

    def __init__(self, config: object, source: optuna.Study) -> None:
        self.config = config
        self.note: str | None = None
        self._source = {t.number: t for t in source.get_trials(deepcopy=False)}

    def next_stage(self, study: optuna.Study, live: int) -> str:
        """The final stage while finals wait in the queue; FINISHED once none does."""
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return FINAL_STAGE if waiting else FINISHED

    def candidate(self, trial: optuna.Trial, stage: str) -> Candidate:
        """The searched trial's network; infeasible when the trial is not a queued final (a
        concurrent driver took the last queued one between ``next_stage`` and ``ask``)."""
        source = self._source.get(trial.user_attrs.get(schema.SOURCE_TRIAL, -1))
        if source is None or schema.SPEC_JSON not in source.user_attrs:
            spec = ArchSpec()
            counted = count_spec(spec)
            return Candidate(spec, counted.macs, counted.params, FINAL_STAGE, "not a queued final")
        spec = ArchSpec.from_dict(source.user_attrs[schema.SPEC_JSON])
        counted = count_spec(spec)
        return Candidate(spec, counted.macs, counted.params, FINAL_STAGE)
