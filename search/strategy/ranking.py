"""Multi-objective ranking of (accuracy up, costs down) points: NSGA-II's order.

Non-dominated sorting and crowding distance as in NSGA-II (Deb et al. 2002), the ranking that
MO-ASHA (Schmucker et al. 2021, "Multi-objective Asynchronous Successive Halving") promotes by.
Points are ranked by front (0 = not dominated by any other point), then within a front by
crowding distance, largest first (the front's two ends have infinite distance, so the cheapest
and the most accurate point of a front come first), then by accuracy, MACs and input order, so
the order is total and deterministic. Crowding is measured on accuracy and log2 of each cost
(MACs, latency), because costs spread over orders of magnitude and the search samples them on a
log scale. Points have two or three objectives (``--objectives``).

Pure functions on plain tuples: the scheduler (rung decisions) and the planner (stage-2 parents)
both use them, and they are unit-tested without Ray or a study. Dominance is the study's own
(``search.study.front``), so a rank-0 point is exactly a point of the front the reports show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from search.study.front import Point, dominates  # the study's one Pareto dominance


def front_ranks(points: Sequence[Point]) -> list[int]:
    """Front index per point (0 = non-dominated), by repeatedly peeling the non-dominated set."""
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    rank = 0
    while remaining:
        front = {
            i for i in remaining if not any(dominates(points[j], points[i]) for j in remaining)
        }
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def crowding_distances(points: Sequence[Point], ranks: Sequence[int]) -> list[float]:
    """NSGA-II crowding distance of each point within its own front (inf at the front's ends)."""
    distance = [0.0] * len(points)
    coordinates = [(p[0], *(math.log2(max(c, 1e-9)) for c in p[1:])) for p in points]
    axes = range(len(points[0])) if points else range(0)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        if len(members) <= 2:
            for i in members:
                distance[i] = math.inf
            continue
        for axis in axes:
            ordered = sorted(members, key=lambda i: coordinates[i][axis])
            span = coordinates[ordered[-1]][axis] - coordinates[ordered[0]][axis]
            distance[ordered[0]] = distance[ordered[-1]] = math.inf
            if span <= 0:
                continue
            for before, middle, after in zip(ordered, ordered[1:], ordered[2:], strict=False):
                gap = coordinates[after][axis] - coordinates[before][axis]
                distance[middle] += gap / span
    return distance


def nsga_order(points: Sequence[Point]) -> list[int]:
    """Indices of ``points``, best first: front, crowding (largest first), accuracy, costs,
    index."""
    ranks = front_ranks(points)
    crowding = crowding_distances(points, ranks)
    return sorted(
        range(len(points)),
        key=lambda i: (ranks[i], -crowding[i], -points[i][0], tuple(points[i][1:]), i),
    )


def hypervolume(points: Sequence[Point], chance: float, budget: float, smallest: float) -> float:
    """The normalised area that (accuracy, MACs) ``points`` dominate above (chance, budget).

    Accuracy is normalised to ``(accuracy - chance) / (1 - chance)`` and MACs on a log scale to
    ``log(budget / macs) / log(budget / smallest)`` (0 at the budget, 1 at the smallest network of
    the space), both maximised, so the value lies in [0, 1]: 1 would be perfect accuracy at the
    smallest network's cost. Log MACs because the front spans orders of magnitude and a model
    half the size is the same gain at any scale. Points at or below chance or above the budget
    add nothing.
    """
    if not (0.0 <= chance < 1.0) or not (0.0 < smallest < budget):
        raise ValueError(
            f"need 0 <= chance < 1 and 0 < smallest < budget, got {chance}, {smallest}, {budget}"
        )
    span = math.log(budget / smallest)
    boxes = sorted(
        (
            min(1.0, math.log(budget / macs) / span),
            (accuracy - chance) / (1.0 - chance),
        )
        for accuracy, macs in points
        if accuracy > chance and 0 < macs <= budget
    )
    area, height = 0.0, 0.0
    for width, top in reversed(boxes):  # cheapest first: each adds the band above the last top
        if top > height:
            area += width * (top - height)
            height = top
    return area
