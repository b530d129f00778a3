"""Compound scaling (EfficientNet, Tan & Le 2019, section 3.3) and the one rounding function.

depth d = alpha**phi, width w = beta**phi, resolution r = gamma**phi. ``scale_network`` is the
only place in the project that rounds: channels go to a multiple of 8 and never below 90 % of the
unrounded value (timm's ``make_divisible``, so the stem and the head scale too), repeats of the
identity groups go up (``ceil``), and the resolution goes to the nearest multiple of 8 with the
same rule as channels. Rounding breaks the exact 2**phi growth, which is why the budget is
enforced by counting (``space.fit``), not by the formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BASE_RESOLUTION = 56
BASE_STEM = 16
BASE_HEAD = 1280
DIVISOR = 8

# EfficientNet-B0's compound coefficients (paper section 4): a selectable starting point.
EFFICIENTNET_B0 = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}


@dataclass(frozen=True)
class Row:
    """docs/design.md row: ``repeats`` blocks ``in_ch -> out_ch``, first with ``stride``."""

    repeats: int
    in_ch: int
    out_ch: int
    stride: int

    @property
    def identity(self) -> bool:
        """Rows whose blocks keep shape have identity shortcuts; only these are depth-scaled."""
        return self.in_ch == self.out_ch and self.stride == 1


# docs/design.md section 1, after the stem and before the head.
BASELINE_ROWS: tuple[Row, ...] = (
    Row(1, 16, 16, 1),
    Row(1, 16, 24, 1),
    Row(1, 24, 24, 1),
    Row(1, 24, 40, 2),
    Row(2, 40, 40, 1),
    Row(1, 40, 80, 2),
    Row(3, 80, 80, 1),
    Row(1, 80, 160, 2),
    Row(4, 160, 160, 1),
    Row(1, 160, 320, 1),
)


@dataclass(frozen=True)
class ScaledNetwork:
    """The baseline table after scaling and rounding: integers only."""

    resolution: int
    stem: int
    rows: tuple[Row, ...]
    head: int


def multipliers(alpha: float, beta: float, gamma: float, phi: float) -> tuple[float, float, float]:
    """(depth, width, resolution) multipliers alpha**phi, beta**phi, gamma**phi."""
    return alpha**phi, beta**phi, gamma**phi


def scale_network(
    depth: float, width: float, resolution: float, base_resolution: int = BASE_RESOLUTION
) -> ScaledNetwork:
    """Scale the baseline by the three multipliers and round everything, in this one place.

    ``base_resolution`` is the input size at phi = 0 (docs/design.md's 56 px by default; a lower
    base suits small images, whose networks then grow into their native size with gamma)."""

    def to_multiple(value: float) -> int:
        # timm's make_divisible: nearest multiple of 8, at least 8, never below 90 % of value.
        rounded = max(DIVISOR, int(value + DIVISOR / 2) // DIVISOR * DIVISOR)
        return rounded + DIVISOR if rounded < 0.9 * value else rounded

    def channels(c: int) -> int:
        return to_multiple(c * width)

    def repeats(row: Row) -> int:
        # a tiny epsilon keeps 1.2 * 5 = 6.000000000000001 from rounding up to 7
        return math.ceil(row.repeats * depth - 1e-9) if row.identity else row.repeats

    rows = tuple(
        Row(repeats(row), channels(row.in_ch), channels(row.out_ch), row.stride)
        for row in BASELINE_ROWS
    )
    return ScaledNetwork(
        resolution=to_multiple(base_resolution * resolution),
        stem=channels(BASE_STEM),
        rows=rows,
        head=channels(BASE_HEAD),
    )
