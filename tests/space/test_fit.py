"""fit_phi: the largest phi whose counted MACs fit the budget."""

from __future__ import annotations

import pytest

from common.errors import UserError
from space import ArchSpec, count_spec, fit_phi
from space.fit import PHI_STEP


@pytest.mark.parametrize("budget", [2.0e8, 4e8, 1e9, 2.6e9])
def test_largest_phi_that_fits(budget: float) -> None:
    spec = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15)
    fit = fit_phi(spec, budget)
    assert fit.macs == count_spec(fit.spec).macs <= budget
    bigger = fit.spec.replace(phi=round(fit.spec.phi + PHI_STEP, 6))
    assert count_spec(bigger).macs > budget


def test_paper_budget() -> None:
    fit = fit_phi(ArchSpec(alpha=1.2, beta=1.1, gamma=1.15), 2.6e9)
    assert fit.baseline_macs == 193_898_304
    assert fit.spec.phi == 4.14
    assert fit.macs == 2_425_697_952
    assert round(fit.nominal_phi, 3) == 3.745


def test_budget_equal_to_baseline_gives_phi_zero() -> None:
    fit = fit_phi(ArchSpec(), 193_898_304)
    assert fit.spec.phi == 0 and fit.macs == 193_898_304


@pytest.mark.parametrize("budget", [0, -5, float("inf"), float("nan")])
def test_bad_budgets(budget: float) -> None:
    with pytest.raises(UserError, match="not a positive number"):
        fit_phi(ArchSpec(), budget)


def test_budget_below_smallest_network() -> None:
    with pytest.raises(UserError, match="below the smallest network"):
        fit_phi(ArchSpec(), 1e8)
