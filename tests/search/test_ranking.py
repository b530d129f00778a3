"""NSGA-II ranking of (accuracy up, MACs down): fronts, crowding distance, the total order."""

from __future__ import annotations

import math

from search.ranking import crowding_distances, dominates, front_ranks, nsga_order

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
