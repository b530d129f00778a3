"""The report's Pareto front: ``search.study.front`` (the one definition) over trial records.

Only measured records take part (:attr:`TrialRecord.point`, the trial's stored values: accuracy
and the costs of the study's own objectives, MACs and/or latency); the rules (ties kept, weakly
dominated points left out, order by cost) are the study's, so the report marks the same trials
as `search best`, `search final`'s default choice and the run summary, for 2 and 3 objectives.
"""

from __future__ import annotations

from collections.abc import Iterable

from reports.records import TrialRecord
from search.study import front


def dominates(a: TrialRecord, b: TrialRecord) -> bool:
    """``a`` beats ``b`` (``search.study.front.dominates``); unmeasured records never do."""
    if a.point is None or b.point is None:
        return False
    return front.dominates(a.point, b.point)


def pareto_front(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The non-dominated measured records in the study's objectives, ordered by cost (then
    accuracy down, then number)."""
    return front.pareto_front(trials, lambda t: t.point)


def front_numbers(trials: Iterable[TrialRecord]) -> set[int]:
    return {t.number for t in pareto_front(trials)}
