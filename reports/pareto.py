"""The accuracy-vs-MACs Pareto front (maximise accuracy, minimise MACs).

Standard Pareto dominance as in Optuna's multi-objective ``study.best_trials`` (Deb et al.,
NSGA-II): ``a`` dominates ``b`` when ``a`` is at least as good in both objectives and strictly
better in one. Consequences, chosen deliberately and tested:

* exact duplicates (equal accuracy *and* equal MACs) do not dominate each other, so when one is
  on the front all of them are;
* a point that is only weakly dominated (same MACs, lower accuracy; or same accuracy, more MACs)
  is *not* on the front;
* only measured trials (COMPLETE, with both values) take part; pruned, infeasible, failed and
  running trials never join the front (they are still listed in the table).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

from reports.records import TrialRecord


def dominates(a: TrialRecord, b: TrialRecord) -> bool:
    """True when ``a`` is no worse than ``b`` in accuracy and MACs and better in one.

    Unmeasured trials neither dominate nor are dominated (they are not in the comparison).
    """
    if not (a.measured and b.measured):
        return False
    assert a.accuracy is not None and a.macs is not None and b.accuracy is not None
    assert b.macs is not None  # narrowing for type checkers: `measured` guarantees both
    no_worse = a.accuracy >= b.accuracy and a.macs <= b.macs
    return no_worse and (a.accuracy > b.accuracy or a.macs < b.macs)


def pareto_front(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The non-dominated measured trials, ordered by MACs (then accuracy down, then number).

    O(n log n): after sorting by (MACs ascending, accuracy descending) a trial is on the front
    iff its accuracy beats every trial with fewer MACs, or ties the best accuracy seen at the
    same MACs (duplicates). Quadratic :func:`dominates` is kept as the reference definition.
    """
    measured = sorted(
        (t for t in trials if t.measured),
        key=lambda t: (t.macs, -(t.accuracy or 0.0), t.number),
    )
    front: list[TrialRecord] = []
    best_before = float("-inf")  # best accuracy among trials with strictly fewer MACs
    for _, same_macs in groupby(measured, key=lambda t: t.macs):
        group = list(same_macs)
        top = group[0].accuracy or 0.0  # the group is sorted by accuracy, best first
        if top > best_before:
            front.extend(t for t in group if t.accuracy == top)
            best_before = top
    return front


def front_numbers(trials: Iterable[TrialRecord]) -> set[int]:
    return {t.number for t in pareto_front(trials)}
