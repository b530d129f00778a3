"""The report's Pareto front: ``search.study.front`` (the one definition) over trial records.

Only measured records take part (:attr:`TrialRecord.point`); the rules (ties kept, weakly
dominated points left out, order by MACs) are the study's, so the report marks the same trials
as `search best` and the run summary.
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
    """The non-dominated measured records, ordered by MACs (then accuracy down, then number)."""
    return front.pareto_front(trials, lambda t: t.point)


def front_numbers(trials: Iterable[TrialRecord]) -> set[int]:
    return {t.number for t in pareto_front(trials)}
