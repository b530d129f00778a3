"""Filling the front's widest gap by compound scaling one of its members.

A multi-objective search is judged by its whole front (the hypervolume), and the front has gaps:
MAC levels where no good network has been trained yet. EfficientNet's observation (Tan & Le
2019, section 3.3) is that a good architecture stays good when it is scaled by its compound
coefficients, which is how B1-B7 come from B0. This module turns that into a move of the joint
strategy: take the front of the completed trials, find the gap whose filling could add the most
hypervolume, and propose one of the gap's two ends again, with the same block options and
coefficients, fitted to the gap's middle (a new MAC share of its own range). TPE proposes the
architectures; this move spreads the good ones over the MAC range, which random and TPE proposals
reach only by chance.

Pure functions of plain values: :class:`Member` is what the planner knows of a completed trial.
The gain of a gap between neighbours ``lo`` and ``hi`` of the front (sorted by MACs, accuracy
rising) is the area of the rectangle a point of ``hi``'s accuracy at the gap's geometric middle
would add, ``(acc_hi - acc_lo) * log(macs_hi / middle)``, in the hypervolume's units (accuracy,
log MACs); the source is ``hi`` scaled down, because a network scaled down by half of a gap
keeps most of its accuracy while one scaled up adds little. Where ``hi``'s own phi = 0 network
is already above the middle, ``lo`` is scaled up instead. Above the front's most accurate member
lies one more gap, to the budget: a point there adds nothing to the hypervolume unless it is more
accurate, so that gap is filled only when no interior gap remains, by scaling the most accurate
member up to the middle between it and the budget.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Member:
    """A completed trial on the front: its accuracy, MACs, the MACs of its architecture at
    phi = 0 (the bottom of its own range) and its Optuna params (to propose it again)."""

    number: int
    accuracy: float
    macs: int
    base_macs: int
    params: dict[str, Any]


@dataclass(frozen=True)
class Proposal:
    """Propose ``source``'s architecture again at ``target`` MACs (``share`` of its range)."""

    source: Member
    target: float
    share: float
    gain: float


def share_for(base: float, target: float, budget: float) -> float:
    """The share of a range ``[base, budget]`` (log scale) that lands on ``target``: the inverse
    of the planner's ``target = base * (budget / base) ** share``."""
    if budget <= base:
        return 1.0
    return min(1.0, max(0.0, math.log(target / base) / math.log(budget / base)))


def front_of(members: Sequence[Member]) -> list[Member]:
    """The members no other member dominates (accuracy up, MACs down), cheapest first."""
    front = [
        m
        for m in members
        if not any(
            o.accuracy >= m.accuracy
            and o.macs <= m.macs
            and (o.accuracy, o.macs) != (m.accuracy, m.macs)
            for o in members
        )
    ]
    unique = {(m.macs, m.accuracy): m for m in sorted(front, key=lambda m: m.number)}
    return sorted(unique.values(), key=lambda m: m.macs)


def widest_gap(
    members: Sequence[Member],
    budget: float,
    tried: Set[tuple[int, int]] = frozenset(),
    min_ratio: float = 1.25,
) -> Proposal | None:
    """The proposal for the front's most valuable gap (see the module docstring), or None when
    no gap is wider than ``min_ratio`` in MACs (rounding merges closer networks). ``tried`` holds
    the :func:`key` of every proposal made before, which is never made twice: a proposal that
    trained and did not close its gap leaves the front as it was."""
    front = front_of(members)
    proposals: list[Proposal] = []
    for lo, hi in itertools.pairwise(front):
        if hi.macs < min_ratio * lo.macs:
            continue
        middle = math.sqrt(lo.macs * hi.macs)
        gain = (hi.accuracy - lo.accuracy) * math.log(hi.macs / middle)
        source = hi if hi.base_macs <= middle else lo
        proposals.append(
            Proposal(source, middle, share_for(source.base_macs, middle, budget), gain)
        )
    if front and budget >= min_ratio * front[-1].macs:
        top = front[-1]
        middle = math.sqrt(top.macs * budget)
        proposals.append(Proposal(top, middle, share_for(top.base_macs, middle, budget), -1.0))
    fresh = [p for p in proposals if key(p) not in tried]
    return max(fresh, key=lambda p: p.gain, default=None)


def key(proposal: Proposal) -> tuple[int, int]:
    """What makes two proposals the same: the source trial and the target to 5 % (log scale)."""
    return proposal.source.number, gap_bucket(proposal.target)


def gap_bucket(target: float) -> int:
    """``target`` MACs to 5 % on a log scale."""
    return round(math.log(target) / math.log(1.05))
