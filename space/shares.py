"""Compound-scaling coefficients that satisfy ``alpha * beta**2 * gamma**2 = 2`` by construction.

EfficientNet (Tan & Le 2019, eq. 3) asks for ``alpha * beta**2 * gamma**2 ~= 2`` so that MACs
double per unit of phi. Writing ``alpha = 2**a``, ``beta = 2**(b/2)``, ``gamma = 2**(c/2)`` turns
the product into ``2**(a + b + c)``: the constraint is the plane ``a + b + c = 1`` and a range of a
coefficient is an interval of its *share* (``alpha in [1, 2]`` is ``a in [0, 1]``). The feasible
triples are the plane cut by the box of share intervals: a polygon (a segment, a point, or empty).

Why this parametrisation: sampling alpha and beta and deriving gamma rejects every sample whose
gamma falls outside its range, a large share of them (see benchmarks/RESULTS.md). Here two unit
variables ``u, v in [0, 1]`` (fixed Optuna distributions that TPE can model) are mapped onto the
polygon by the inverse-CDF (Rosenblatt) transform: the first free share is drawn from its marginal
on the polygon (``u``), the second uniformly on its interval given the first (``v``), the third is
what is left. Uniform ``(u, v)`` gives uniform triples on the polygon, the map is continuous and
monotone in each variable (so TPE's density in ``(u, v)`` means something), and every ``(u, v)`` is
feasible. Pinned coefficients fix their share; with one free share left it is derived, with two one
unit variable picks the point on the segment.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

NAMES: tuple[str, ...] = ("alpha", "beta", "gamma")
EXPONENT_DIVISOR: dict[str, float] = {"alpha": 1.0, "beta": 2.0, "gamma": 2.0}
DIGITS = 6  # sampled coefficients are stored to 6 decimals (readable specs, exact replays)
_EPS = 1e-12


def share_of(name: str, coefficient: float) -> float:
    """The share of one coefficient: log2(alpha), 2 log2(beta), 2 log2(gamma)."""
    return EXPONENT_DIVISOR[name] * math.log2(coefficient)


def coefficient_of(name: str, share: float) -> float:
    """The coefficient of one share, rounded to ``DIGITS`` decimals."""
    return round(2.0 ** (share / EXPONENT_DIVISOR[name]), DIGITS)


@dataclass(frozen=True)
class SharePolygon:
    """The feasible shares: ``a + b + c = 1`` inside the box ``low[i] <= share[i] <= high[i]``."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    @classmethod
    def of(cls, ranges: Sequence[tuple[float, float]]) -> SharePolygon:
        """From the (alpha, beta, gamma) ranges, each ``(low, high)`` with ``low >= 1``."""
        low = tuple(share_of(n, r[0]) for n, r in zip(NAMES, ranges, strict=True))
        high = tuple(share_of(n, r[1]) for n, r in zip(NAMES, ranges, strict=True))
        return cls(low, high)  # type: ignore[arg-type]

    @property
    def free(self) -> tuple[int, ...]:
        """Indices of the shares with a proper interval (not pinned)."""
        return tuple(i for i in range(3) if self.high[i] > self.low[i])

    @property
    def unit_variables(self) -> int:
        """How many unit variables pick a point: free shares minus the one the plane fixes."""
        return max(0, len(self.free) - 1)

    def is_empty(self) -> bool:
        return sum(self.low) > 1.0 + _EPS or sum(self.high) < 1.0 - _EPS

    # ----- unit variables -> shares -----------------------------------------------------------
    def point(self, units: Sequence[float]) -> tuple[float, float, float]:
        """The shares for ``unit_variables`` numbers in [0, 1] (fewer free shares use fewer)."""
        shares = list(self.low)
        free = self.free
        if len(free) == 0:
            return tuple(shares)  # type: ignore[return-value]
        rest = 1.0 - sum(self.low[i] for i in range(3) if i not in free)
        if len(free) == 1:
            shares[free[0]] = rest
        elif len(free) == 2:
            i, j = free
            lo, hi = self._interval(i, j, rest)
            shares[i] = lo + units[0] * (hi - lo)
            shares[j] = rest - shares[i]
        else:
            i, j, k = free
            shares[i] = self._marginal_inverse(units[0], rest)
            lo, hi = self._interval(j, k, rest - shares[i])
            shares[j] = lo + units[1] * (hi - lo)
            shares[k] = rest - shares[i] - shares[j]
        return tuple(shares)  # type: ignore[return-value]

    def units(self, shares: Sequence[float]) -> tuple[float, ...]:
        """The inverse of :meth:`point` (used to enqueue a chosen starting triple)."""
        free = self.free
        rest = 1.0 - sum(self.low[i] for i in range(3) if i not in free)
        if len(free) < 2:
            return ()
        if len(free) == 2:
            i, j = free
            return (_fraction(shares[i], *self._interval(i, j, rest)),)
        i, j, k = free
        u = self._marginal_cdf(shares[i], rest)
        v = _fraction(shares[j], *self._interval(j, k, rest - shares[i]))
        return (u, v)

    # ----- the geometry -------------------------------------------------------------------------
    def _interval(self, i: int, j: int, rest: float) -> tuple[float, float]:
        """Allowed values of share ``i`` when shares ``i`` and ``j`` must add up to ``rest``."""
        lo = max(self.low[i], rest - self.high[j])
        hi = min(self.high[i], rest - self.low[j])
        return lo, max(lo, hi)

    def _segments(self, rest: float) -> list[tuple[float, float, float, float]]:
        """The first free share's range cut where the length of the second's interval bends.

        Returns ``(x0, x1, length at x0, length at x1)``: the length is linear on each piece.
        """
        i, j, k = self.free
        x_lo = max(self.low[i], rest - self.high[j] - self.high[k])
        x_hi = min(self.high[i], rest - self.low[j] - self.low[k])
        bends = {rest - self.high[k] - self.low[j], rest - self.low[k] - self.high[j]}
        cuts = sorted({x_lo, x_hi, *(x for x in bends if x_lo < x < x_hi)})

        def length(x: float) -> float:
            lo, hi = self._interval(j, k, rest - x)
            return hi - lo

        return [(x0, x1, length(x0), length(x1)) for x0, x1 in itertools.pairwise(cuts)]

    def _marginal_inverse(self, u: float, rest: float) -> float:
        """The first free share at quantile ``u`` of its marginal on the polygon."""
        segments = self._segments(rest)
        if not segments:  # the first share has a single value
            i, j, k = self.free
            return max(self.low[i], rest - self.high[j] - self.high[k])
        areas = [(x1 - x0) * (l0 + l1) / 2 for x0, x1, l0, l1 in segments]
        total = sum(areas)
        if total <= _EPS:  # a degenerate polygon (a segment): uniform along it
            x_lo, x_hi = segments[0][0], segments[-1][1]
            return x_lo + u * (x_hi - x_lo)
        target = min(max(u, 0.0), 1.0) * total
        for (x0, x1, l0, l1), area in zip(segments, areas, strict=True):
            if target <= area or (x0, x1, l0, l1) == segments[-1]:
                slope = (l1 - l0) / (x1 - x0)
                # solve l0 * t + slope * t**2 / 2 = target for t in the stable form
                root = math.sqrt(max(0.0, l0 * l0 + 2.0 * slope * target))
                step = 2.0 * target / (l0 + root) if l0 + root > 0 else 0.0
                return min(x0 + step, x1)
            target -= area
        raise AssertionError("unreachable: the loop returns on the last segment")

    def _marginal_cdf(self, x: float, rest: float) -> float:
        segments = self._segments(rest)
        areas = [(x1 - x0) * (l0 + l1) / 2 for x0, x1, l0, l1 in segments]
        total = sum(areas)
        if not segments:
            return 0.0
        if total <= _EPS:
            return _fraction(x, segments[0][0], segments[-1][1])
        below = 0.0
        for (x0, x1, l0, l1), area in zip(segments, areas, strict=True):
            if x >= x1:
                below += area
                continue
            t = max(0.0, x - x0)
            below += l0 * t + (l1 - l0) / (x1 - x0) * t * t / 2
            break
        return min(1.0, max(0.0, below / total))


def _fraction(x: float, lo: float, hi: float) -> float:
    if hi - lo <= _EPS:
        return 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))
