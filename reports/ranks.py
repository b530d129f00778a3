"""Rank correlation of two measurements of the same items: Kendall's tau-b and Spearman's rho.

Kendall's tau-b (Kendall 1945, "The treatment of ties in ranking problems"; ``variant="b"`` of
``scipy.stats.kendalltau``) and Spearman's rho (Spearman 1904; ``scipy.stats.spearmanr``). Used
where the project asks whether one figure ranks networks like another: the short trials' accuracy
against final training (``reports.finals``), MACs against measured latency (``reports.latency``,
``benchmarks/latency.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

MIN_RANKED = 3  # below three items a rank correlation says nothing


@dataclass(frozen=True)
class RankCorrelation:
    """tau and rho over ``n`` items; None when undefined (too few items, or one side constant)."""

    n: int
    kendall_tau: float | None
    spearman_rho: float | None


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> RankCorrelation:
    """Kendall's tau-b and Spearman's rho of ``x`` against ``y`` (paired, same length)."""
    if len(x) != len(y):
        raise ValueError(f"paired sequences differ in length: {len(x)} != {len(y)}")
    if len(x) < MIN_RANKED or len(set(x)) == 1 or len(set(y)) == 1:
        return RankCorrelation(len(x), None, None)
    tau = _statistic(stats.kendalltau(x, y, variant="b"))
    rho = _statistic(stats.spearmanr(x, y))
    return RankCorrelation(len(x), tau, rho)


def _statistic(result: Any) -> float | None:
    value = float(result.statistic)
    return value if math.isfinite(value) else None
