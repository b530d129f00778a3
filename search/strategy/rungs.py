"""A new point's place in NSGA-II order among a rung's points, without sorting all of them.

MO-ASHA (``search.strategy.scheduler``) keeps a trial at a rung when it is among the top quarter
of the rung's points in NSGA-II order (``search.strategy.ranking.nsga_order``: front, crowding,
accuracy, costs, index). Every trial reaches the first rung, so in a 10,000-trial search that rung
holds 10,000 points, and ``nsga_order`` peels fronts by comparing every remaining point with
every other: O(n^2) per front, seconds per decision. Only one position is needed, so
:func:`nsga_position` computes the same answer in O(n log n) for two objectives: the front
index of every point by the sweep of Jensen (2003, "Reducing the run-time complexity of
multiobjective EAs: the NSGA-II and other algorithms"; points in order of cost, then accuracy
down, each put in the first front whose latest member does not dominate it, found by binary
search; dominance as ``search.study.front.dominates``, written out for speed), then the crowding
distances of the new point's front alone (the same function, on the same members in the same
order, so the same floats). Three objectives fall back to ``nsga_order``; tests check both paths
against it.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.strategy.ranking import crowding_distances, nsga_order
from search.study.front import Point


def front_ranks_2d(points: Sequence[Point]) -> list[int]:
    """The front index of each (accuracy up, cost down) point, 0 = non-dominated."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    latest: list[tuple[float, float]] = []  # (accuracy, cost) of the last point of each front
    ranks = [0] * len(points)
    for i in order:
        accuracy, cost = points[i][0], points[i][1]
        low, high = 0, len(latest)
        while low < high:  # "the front's latest member dominates it" holds for a prefix
            middle = (low + high) // 2
            other, other_cost = latest[middle]
            if other >= accuracy and other_cost <= cost and (other > accuracy or other_cost < cost):
                low = middle + 1
            else:
                high = middle
        ranks[i] = low
        if low == len(latest):
            latest.append((accuracy, cost))
        else:
            latest[low] = (accuracy, cost)
    return ranks


def nsga_position(points: Sequence[Point], index: int) -> int:
    """``nsga_order(points).index(index)``: how many points come before ``points[index]``."""
    if not points or len(points[0]) != 2:
        return nsga_order(points).index(index)
    ranks = front_ranks_2d(points)
    rank = ranks[index]
    members = [i for i, r in enumerate(ranks) if r == rank]
    distances = crowding_distances([points[i] for i in members], [0] * len(members))
    crowding = dict(zip(members, distances, strict=True))

    def key(i: int) -> tuple[object, ...]:
        return (-crowding[i], -points[i][0], tuple(points[i][1:]), i)

    ahead = sum(1 for r in ranks if r < rank)
    mine = key(index)
    return ahead + sum(1 for i in members if key(i) < mine)
