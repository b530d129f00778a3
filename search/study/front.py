"""The Pareto front (maximise accuracy, minimise each cost): the one definition.

A point is ``(accuracy, *costs)``: ``(accuracy, MACs)`` by default, ``(accuracy, latency)`` or
``(accuracy, MACs, latency)`` as ``--objectives`` chooses (``search.study.schema``).
Standard Pareto dominance as in Optuna's multi-objective ``study.best_trials`` (Deb et al.,
NSGA-II): ``a`` dominates ``b`` when ``a`` is at least as good in every objective and strictly
better in one. Consequences, chosen deliberately and tested:

* exact duplicates (equal accuracy *and* equal MACs) do not dominate each other, so when one is
  on the front all of them are;
* a point that is only weakly dominated (same MACs, lower accuracy; or same accuracy, more MACs)
  is *not* on the front;
* only measured items take part (COMPLETE trials with both values); pruned, infeasible, failed
  and running trials never join the front.

The search (progress, `search best`, the run summary, the ranking of the strategy) and the
reports all use these functions, so they always agree on which trials are Pareto-optimal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby
from typing import Any, Protocol, TypeVar, overload

from optuna.trial import FrozenTrial, TrialState

Point = tuple[float, ...]  # (accuracy, *costs), e.g. (accuracy, MACs)


class Numbered(Protocol):
    """Anything with a trial number (ties on both objectives are ordered by it)."""

    @property
    def number(self) -> int: ...


T = TypeVar("T", bound=Numbered)


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` in accuracy and every cost and strictly better in one."""
    no_worse = a[0] >= b[0] and all(x <= y for x, y in zip(a[1:], b[1:], strict=True))
    return no_worse and (a[0] > b[0] or any(x < y for x, y in zip(a[1:], b[1:], strict=True)))


def trial_point(trial: FrozenTrial) -> Point | None:
    """The (accuracy, *costs) of a COMPLETE trial with values; None for every other trial."""
    if trial.state != TrialState.COMPLETE or not trial.values:
        return None
    return tuple(trial.values)


@overload
def pareto_front(items: Iterable[FrozenTrial]) -> list[FrozenTrial]: ...


@overload
def pareto_front(items: Iterable[T], point: Callable[[T], Point | None]) -> list[T]: ...


def pareto_front(
    items: Iterable[Any], point: Callable[[Any], Point | None] = trial_point
) -> list[Any]:
    """The non-dominated items, ordered by costs, then accuracy down, then number.

    ``point`` gives an item's (accuracy, *costs), or None for an item that is not measured (it
    neither joins nor blocks the front); by default the items are Optuna trials.
    Two objectives, O(n log n): after sorting by (cost ascending, accuracy descending) an item is
    on the front iff its accuracy beats every item with a lower cost, or ties the best accuracy
    seen at the same cost (duplicates). Three or more: each item checked against the others by
    :func:`dominates`, the reference definition both agree with.
    """
    measured = sorted(
        ((p, item) for item in items if (p := point(item)) is not None),
        key=lambda pair: (pair[0][1:], -pair[0][0], pair[1].number),
    )
    if any(len(p) != 2 for p, _ in measured):
        return [item for p, item in measured if not any(dominates(q, p) for q, _ in measured)]
    front: list[Any] = []
    best_before = float("-inf")  # best accuracy among items with strictly fewer MACs
    for _, same_macs in groupby(measured, key=lambda pair: pair[0][1]):
        group = list(same_macs)
        top = group[0][0][0]  # the group is sorted by accuracy, best first
        if top > best_before:
            front.extend(item for p, item in group if p[0] == top)
            best_before = top
    return front


def best_accuracy(trials: list[FrozenTrial]) -> float | None:
    """The highest accuracy of the COMPLETE trials (None before the first one)."""
    values = [p[0] for p in map(trial_point, trials) if p is not None]
    return max(values) if values else None
