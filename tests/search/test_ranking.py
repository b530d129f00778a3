"""NSGA-II ranking of (accuracy up, MACs down): fronts, crowding distance, the total order."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from search.strategy.ranking import (
    crowding_distances,
    dominates,
    front_ranks,
    hypervolume,
    nsga_order,
)

# accuracy, MACs
POINTS = [
    (0.80, 100e6),  # 0 front 0 (most accurate)
    (0.50, 10e6),  # 1 front 0 (cheapest)
    (0.70, 40e6),  # 2 front 0 (middle)
    (0.60, 50e6),  # 3 dominated by 2 -> front 1
    (0.40, 60e6),  # 4 dominated by 2 and 3 -> front 2
    (0.75, 60e6),  # 5 front 0
]


def test_dominance_and_fronts() -> None:
    assert dominates((0.7, 40e6), (0.6, 50e6))
    assert not dominates((0.7, 40e6), (0.7, 40e6))  # equal points do not dominate each other
    assert dominates((0.7, 40e6), (0.7, 50e6))  # weakly better is enough with one strict
    assert front_ranks(POINTS) == [0, 0, 0, 1, 2, 0]


def test_crowding_distance_is_infinite_at_the_ends_of_a_front() -> None:
    ranks = front_ranks(POINTS)
    distance = crowding_distances(POINTS, ranks)
    assert math.isinf(distance[0]) and math.isinf(distance[1])  # ends of front 0
    assert 0 < distance[2] < math.inf and 0 < distance[5] < math.inf
    # 2 sits in a larger gap than 5 on both axes (log2 MACs), so it is less crowded
    assert distance[2] > distance[5]
    assert math.isinf(distance[3]) and math.isinf(distance[4])  # single-point fronts


def test_order_is_front_then_crowding_then_accuracy() -> None:
    assert nsga_order(POINTS) == [0, 1, 2, 5, 3, 4]
    assert nsga_order([]) == []
    # ties everywhere: the order falls back on accuracy, MACs, then input order
    assert nsga_order([(0.5, 1e6), (0.5, 1e6)]) == [0, 1]


def test_hypervolume_of_hand_computed_fronts() -> None:
    # chance 0.1, MACs normalised on log2 between 1e6 (x = 1) and 16e6 (x = 0): 4 doublings
    def hv(points: list[tuple[float, float]]) -> float:
        return hypervolume(points, chance=0.1, budget=16e6, smallest=1e6)

    assert hv([]) == 0.0
    assert hv([(1.0, 1e6)]) == pytest.approx(1.0)  # perfect and smallest: the whole square
    assert hv([(0.55, 4e6)]) == pytest.approx(0.5 * 0.5)  # half-way on both axes
    # two boxes: [0, 0.75] x [0, 0.5] and [0, 0.25] x [0, 1.0] overlap in [0, 0.25] x [0, 0.5]
    two = [(0.55, 2e6), (1.0, 8e6)]
    assert hv(two) == pytest.approx(0.75 * 0.5 + 0.25 * 0.5)
    # dominated points, points at chance and over the budget add nothing; order does not matter
    noise = [(0.5, 4e6), (0.1, 1e6), (0.9, 32e6), (0.05, 2e6)]
    assert hv([*noise, *two]) == pytest.approx(hv(two[::-1]))
    # a point at the budget has no width, one below the smallest network is clipped to 1
    assert hv([(1.0, 16e6)]) == 0.0 and hv([(0.55, 0.5e6)]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="smallest < budget"):
        hypervolume([(0.5, 1.0)], chance=0.1, budget=1.0, smallest=2.0)


def test_three_objective_points_rank_and_crowd_on_every_axis() -> None:
    points = [
        (0.80, 100e6, 4.0),  # 0 front 0
        (0.70, 40e6, 8.0),  # 1 front 0: cheaper in MACs, slower
        (0.70, 40e6, 2.0),  # 2 front 0 and dominates 1
        (0.60, 50e6, 9.0),  # 3 dominated by 1 and 2
    ]
    assert front_ranks(points) == [0, 1, 0, 2]
    distance = crowding_distances(points, front_ranks(points))
    assert all(math.isinf(d) for d in distance)  # fronts of at most two points
    assert nsga_order(points) == [0, 2, 1, 3]


def _exact_union_volume(boxes: list[tuple[float, ...]]) -> float:
    """The volume of the union of boxes [0, b] by inclusion-exclusion over every subset: exact,
    exponential, fine for a handful of boxes."""
    total = 0.0
    for size in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, size):
            total += (-1) ** (size + 1) * math.prod(min(axis) for axis in zip(*subset, strict=True))
    return total


def test_three_objective_hypervolume_against_an_exact_computation() -> None:
    """(accuracy, MACs, latency) fronts: Optuna's WFG against inclusion-exclusion on the
    normalised boxes, for hand-made and random small fronts, dominated points included."""
    bounds = [(1e6, 16e6), (1.0, 16.0)]  # MACs in [1e6, 16e6], latency in [1, 16] ms

    def box(point: tuple[float, float, float]) -> tuple[float, ...]:
        accuracy, macs, ms = point
        return ((accuracy - 0.1) / 0.9, math.log2(16e6 / macs) / 4, math.log2(16 / ms) / 4)

    assert hypervolume([(1.0, 1e6, 1.0)], chance=0.1, bounds=bounds) == pytest.approx(1.0)
    half = (0.55, 4e6, 4.0)  # half-way on every axis
    assert hypervolume([half], chance=0.1, bounds=bounds) == pytest.approx(0.125)
    two = [(0.55, 2e6, 8.0), (1.0, 8e6, 2.0)]  # boxes 0.5x0.75x0.25 and 1x0.25x0.75
    assert hypervolume(two, chance=0.1, bounds=bounds) == pytest.approx(
        0.5 * 0.75 * 0.25 + 1.0 * 0.25 * 0.75 - 0.5 * 0.25 * 0.25
    )
    generator = random.Random(3)
    for _ in range(20):
        points = [
            (
                generator.uniform(0.15, 1.0),
                2 ** generator.uniform(0, 4) * 1e6,
                2 ** generator.uniform(0, 4),
            )
            for _ in range(generator.randint(1, 6))
        ]
        exact = _exact_union_volume([box(p) for p in points])
        assert hypervolume(points, chance=0.1, bounds=bounds) == pytest.approx(exact, abs=1e-12)
    # the two-objective form is the same computation: one (smallest, budget) pair
    flat = [(0.55, 2e6), (1.0, 8e6)]
    assert hypervolume(flat, chance=0.1, budget=16e6, smallest=1e6) == pytest.approx(
        hypervolume(flat, chance=0.1, bounds=[(1e6, 16e6)])
    )
    with pytest.raises(ValueError, match="expected 3"):
        hypervolume([(0.5, 2e6)], chance=0.1, bounds=bounds)
