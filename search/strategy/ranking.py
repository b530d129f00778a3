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

import numpy as np

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


def hypervolume(
    points: Sequence[Point],
    chance: float,
    budget: float | None = None,
    smallest: float | None = None,
    *,
    bounds: Sequence[tuple[float, float]] | None = None,
) -> float:
    """The normalised volume that ``points`` (accuracy, *costs) dominate, 2 or 3 objectives.

    Accuracy is normalised to ``(accuracy - chance) / (1 - chance)`` and each cost on a log
    scale to ``log(reference / cost) / log(reference / smallest)``, 0 at its reference and 1 at
    its smallest value (clipped there), all maximised, so the value lies in [0, 1]: 1 would be
    perfect accuracy at the smallest cost of every objective. ``bounds`` gives one
    ``(smallest, reference)`` pair per cost in the points' order (for MACs: the smallest network
    of the space and the budget; for latency e.g. the fastest timed network and
    ``--latency-budget-ms``); ``smallest`` and ``budget`` are the one pair of an (accuracy, MACs)
    front. Log costs because a front spans orders of magnitude and a model half the size is the
    same gain at any scale. Points at or below chance or above a reference add nothing.

    The volume itself is Optuna's exact computation (``optuna._hypervolume.compute_hypervolume``:
    a sweep in 2-D, the WFG algorithm of While et al. 2012, "A Fast Way of Calculating Exact
    Hypervolumes", from 3-D), on the normalised points turned into losses ``1 - value`` against
    the reference point ``(1, ..., 1)``.
    """
    pairs = list(bounds) if bounds is not None else [(smallest, budget)]
    if not (0.0 <= chance < 1.0) or not all(
        low is not None and high is not None and 0.0 < low < high for low, high in pairs
    ):
        raise ValueError(
            f"need 0 <= chance < 1 and 0 < smallest < budget for every cost, got {chance}, {pairs}"
        )
    spans = [(float(high), math.log(float(high) / float(low))) for low, high in pairs]  # type: ignore[arg-type]
    losses = []
    for point in points:
        if len(point) != len(spans) + 1:
            raise ValueError(f"a point has {len(point)} values, expected {len(spans) + 1}")
        accuracy, costs = point[0], point[1:]
        if accuracy <= chance or any(
            c <= 0 or c > ref for c, (ref, _) in zip(costs, spans, strict=True)
        ):
            continue
        scaled = [
            min(1.0, math.log(ref / c) / span) for c, (ref, span) in zip(costs, spans, strict=True)
        ]
        losses.append([1.0 - (accuracy - chance) / (1.0 - chance), *(1.0 - u for u in scaled)])
    if not losses:
        return 0.0
    from optuna._hypervolume import compute_hypervolume

    reference = np.ones(len(spans) + 1)
    return float(compute_hypervolume(np.asarray(losses, dtype=float), reference))
