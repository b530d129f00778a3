"""Coefficient shares on the constraint plane: every unit point is feasible, the map inverts."""

from __future__ import annotations

import itertools
import math

import pytest

from space.shares import SharePolygon, coefficient_of, share_of

GRID = [0.0, 0.05, 0.3, 0.5, 0.7, 0.95, 1.0]
INTERIOR = (0.05, 0.3, 0.5, 0.7, 0.95)


def product(shares: tuple[float, float, float]) -> float:
    alpha, beta, gamma = (2 ** shares[0], 2 ** (shares[1] / 2), 2 ** (shares[2] / 2))
    return alpha * beta**2 * gamma**2


@pytest.mark.parametrize(
    "ranges",
    [
        [(1.0, 2.0)] * 3,  # docs/design.md's default: the whole simplex
        [(1.1, 1.5), (1.05, 1.3), (1.0, 1.2)],  # narrowed: a hexagon-like cut of the plane
        [(1.2, 1.2), (1.0, 2.0), (1.0, 2.0)],  # alpha pinned: a segment
        [(1.0, 1.25), (1.0, 2.0), (1.2, 1.4)],
    ],
)
def test_every_unit_point_is_feasible_and_the_map_inverts(ranges: list) -> None:
    polygon = SharePolygon.of(ranges)
    assert not polygon.is_empty()
    for units in itertools.product(GRID, repeat=polygon.unit_variables):
        shares = polygon.point(units)
        assert math.isclose(product(shares), 2.0, rel_tol=1e-12)
        for low, value, high in zip(polygon.low, shares, polygon.high, strict=True):
            assert low - 1e-12 <= value <= high + 1e-12
        if all(u in INTERIOR for u in units):  # on the border several units give one point
            back = polygon.units(shares)
            assert all(abs(a - b) < 1e-9 for a, b in zip(back, units, strict=True))


def test_the_corners_of_the_simplex_are_reached() -> None:
    polygon = SharePolygon.of([(1.0, 2.0)] * 3)
    assert polygon.point((0.0, 0.0)) == pytest.approx((0.0, 0.0, 1.0))  # all on resolution
    assert polygon.point((1.0, 0.0)) == pytest.approx((1.0, 0.0, 0.0))  # all on depth
    assert polygon.point((0.0, 1.0)) == pytest.approx((0.0, 1.0, 0.0))  # all on width
    # the marginal of the first share on a triangle is 1 - (1 - a)**2: median 1 - sqrt(1/2)
    assert polygon.point((0.5, 0.5))[0] == pytest.approx(1 - math.sqrt(0.5))


def test_degenerate_and_empty_polygons() -> None:
    single = SharePolygon.of([(2.0, 2.0), (1.0, 1.0), (1.0, 1.0)])  # alpha = 2 is the only point
    assert single.unit_variables == 0 and single.point(()) == pytest.approx((1.0, 0.0, 0.0))
    derived = SharePolygon.of([(1.2, 1.2), (1.1, 1.1), (1.0, 2.0)])  # gamma follows
    assert derived.unit_variables == 0
    assert coefficient_of("gamma", derived.point(())[2]) == round(math.sqrt(2 / 1.2 / 1.21), 6)
    assert SharePolygon.of([(1.5, 2.0), (1.3, 1.4), (1.0, 2.0)]).is_empty()  # product > 2
    assert SharePolygon.of([(1.0, 1.1), (1.0, 1.1), (1.0, 1.1)]).is_empty()  # product < 2
    assert share_of("beta", math.sqrt(2)) == pytest.approx(1.0)
