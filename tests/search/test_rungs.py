"""A new point's place in NSGA-II order (search/strategy/rungs.py) against the reference
``nsga_order`` and ``front_ranks`` of search/strategy/ranking.py, with ties and duplicates."""

from __future__ import annotations

import random

import pytest

from search.strategy.ranking import front_ranks, nsga_order
from search.strategy.rungs import front_ranks_2d, nsga_position


def _cloud(rng: random.Random, n: int, objectives: int) -> list[tuple[float, ...]]:
    """Points on a coarse grid, so equal accuracies, equal costs and exact duplicates occur."""
    return [
        (rng.randint(0, 12) / 12, *(float(2 ** rng.randint(0, 8)) for _ in range(objectives - 1)))
        for _ in range(n)
    ]


@pytest.mark.parametrize("objectives", [2, 3])
def test_the_position_is_nsga_orders_for_every_point(objectives: int) -> None:
    rng = random.Random(objectives)
    for n in (1, 2, 3, 5, 17, 60, 150) if objectives == 2 else (1, 2, 5, 17, 40):
        points = _cloud(rng, n, objectives)
        order = nsga_order(points)
        assert [nsga_position(points, i) for i in range(n)] == [order.index(i) for i in range(n)]
        if objectives == 2:
            assert front_ranks_2d(points) == front_ranks(points)


def test_a_large_rung_is_ranked_in_a_blink() -> None:
    rng = random.Random(0)
    points = [(rng.random(), rng.uniform(1e6, 1e8)) for _ in range(10_000)]
    assert 0 <= nsga_position(points, len(points) - 1) < len(points)
    small = points[:300]
    assert nsga_position(small, 299) == nsga_order(small).index(299)
