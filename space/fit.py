"""Pick phi from a MAC budget (docs/design.md section 4).

The nominal phi is ``log2(budget / baseline MACs)`` because MACs grow by about 2**phi when
``alpha * beta**2 * gamma**2 ~= 2``. Rounding (channels to multiples of 8, repeats up, resolution
to multiples of 8) breaks that formula, so the budget is enforced by counting: phi is searched on
a grid of ``PHI_STEP`` for the largest value whose *counted* MACs fit. Every rounding step is
monotone in its multiplier, so MACs are monotone in phi and bisection finds that value. When
phi changes nothing (alpha = beta = 1 and gamma = 1 or a pinned resolution), phi stays 0 so that
one network keeps one spec id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.bounds import MAX_PHI, check_budget
from common.errors import UserError
from space.macs import count_spec
from space.spec import ArchSpec

PHI_STEP = 0.01


@dataclass(frozen=True)
class Fit:
    spec: ArchSpec  # the input spec with the chosen phi
    macs: int
    budget: int
    baseline_macs: int  # at phi = 0

    @property
    def nominal_phi(self) -> float:
        return math.log2(self.budget / self.baseline_macs)


def fit_phi(spec: ArchSpec, budget_macs: float) -> Fit:
    """The largest phi (on a ``PHI_STEP`` grid, at most ``MAX_PHI``) whose MACs fit the budget."""
    budget = check_budget(budget_macs)
    baseline = count_spec(spec.replace(phi=0.0)).macs
    if baseline > budget:
        raise UserError(
            f"budget {budget:.4g} MACs is below the smallest network of this space "
            f"({baseline:.4g} MACs at phi=0 for {spec.canonical()}); raise --budget-flops or "
            "shrink the block (--expansion, --block standard, --mid-conv depthwise)"
        )

    def macs_at(steps: int) -> int:
        return count_spec(spec.replace(phi=round(steps * PHI_STEP, 6))).macs

    low, high = 0, round(MAX_PHI / PHI_STEP)  # macs_at(low) fits; find the last that fits
    top = macs_at(high)
    if top == baseline:  # all coefficients 1 (or pinned away): phi changes nothing, keep it 0
        high = low
    elif top <= budget:
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        if macs_at(middle) <= budget:
            low = middle
        else:
            high = middle
    chosen = spec.replace(phi=round(low * PHI_STEP, 6))
    return Fit(chosen, count_spec(chosen).macs, budget, baseline)
