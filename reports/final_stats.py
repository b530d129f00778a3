"""How precisely a final's test score measures its network, and when two scores cannot be ordered.

A test accuracy is a proportion of ``n`` test images, so on its own it carries the binomial
standard error ``sqrt(p (1 - p) / n)`` (about 0.4 points for p = 0.8 on Fashion-MNIST's 10,000
test images); a network retrained with several seeds also varies from seed to seed, which the
mean of ``r`` repeats carries as ``s^2 / r`` (``s``: the repeats' sample standard deviation).
:func:`standard_error` adds the two variances (the normal approximation of a proportion, e.g.
Agresti & Coull 1998; the seed term as in Bouthillier et al. 2021, "Accounting for Variance in
Machine Learning Benchmarks", MLSys).

Two networks' scores are told apart only when their difference exceeds :data:`Z_95` standard
errors of the difference, ``sqrt(se_a^2 + se_b^2)`` (a two-sided 95 % test). Treating the two
scores as independent is conservative here: both networks are scored on the same images, whose
shared difficulty makes the difference vary less than that, so a pair this rule calls "cannot
be ordered" may in fact be orderable with paired per-image counts (McNemar's test), which the
study does not keep; a pair it orders is ordered.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal


def standard_error(mean: float, images: int | None, std: float | None, repeats: int) -> float:
    """The standard error of a mean test accuracy ``mean`` of ``repeats`` seeds, each on the same
    ``images`` test images (see the module docstring); the binomial term alone with one repeat,
    the seed term alone when the image count is unknown."""
    variance = mean * (1.0 - mean) / images if images else 0.0
    if std is not None and repeats > 1:
        variance += std * std / repeats
    return math.sqrt(max(0.0, variance))


@dataclass(frozen=True)
class Score:
    """One network's test score as the rule compares it."""

    number: int  # the searched trial's number
    mean: float
    se: float


@dataclass(frozen=True)
class Unordered:
    """Two networks, higher score first, whose scores the test split cannot order."""

    first: Score
    second: Score

    @property
    def difference(self) -> float:
        return self.first.mean - self.second.mean

    @property
    def threshold(self) -> float:
        """:data:`Z_95` standard errors of the difference."""
        return Z_95 * math.hypot(self.first.se, self.second.se)

    @property
    def message(self) -> str:
        a, b = self.first, self.second
        return (
            f"the data cannot order trials {a.number} and {b.number}: test {a.mean:.4f} vs "
            f"{b.mean:.4f}, difference {self.difference:.4f} < {self.threshold:.4f} "
            f"({Z_95:.2f} standard errors of the difference)"
        )


def unordered_pairs(scores: Sequence[Score]) -> list[Unordered]:
    """Neighbours in test-score order (highest first) that the test split cannot tell apart."""
    ranked = sorted(scores, key=lambda s: (-s.mean, s.number))
    pairs = [Unordered(a, b) for a, b in itertools.pairwise(ranked)]
    return [pair for pair in pairs if pair.difference < pair.threshold]
