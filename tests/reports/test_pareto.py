"""Pareto set on hand-made records: exact sets, ties, weak dominance, unmeasured trials."""

from __future__ import annotations

from reports.pareto import dominates, front_numbers, pareto_front
from reports.records import TrialRecord


def rec(
    number: int, accuracy: float | None, macs: int | None, status: str = "complete"
) -> TrialRecord:
    state = {"complete": "COMPLETE", "pruned": "PRUNED", "infeasible": "PRUNED"}.get(status, "FAIL")
    return TrialRecord(number, state, status, None, accuracy=accuracy, macs=macs)


def brute_force(trials: list[TrialRecord]) -> set[int]:
    measured = [t for t in trials if t.measured]
    return {t.number for t in measured if not any(dominates(o, t) for o in measured)}


def test_simple_front_ordered_by_macs() -> None:
    trials = [rec(0, 0.70, 300), rec(1, 0.60, 100), rec(2, 0.65, 200), rec(3, 0.62, 250)]
    front = pareto_front(trials)
    assert [t.number for t in front] == [1, 2, 0]
    assert [t.macs for t in front] == [100, 200, 300]


def test_duplicates_of_a_front_point_are_all_on_it() -> None:
    trials = [rec(0, 0.8, 100), rec(1, 0.8, 100), rec(2, 0.9, 200), rec(3, 0.9, 200)]
    assert front_numbers(trials) == {0, 1, 2, 3}
    assert not dominates(trials[0], trials[1])


def test_weakly_dominated_points_are_not_on_the_front() -> None:
    # same MACs, lower accuracy; and same accuracy, more MACs
    trials = [rec(0, 0.8, 100), rec(1, 0.7, 100), rec(2, 0.8, 150), rec(3, 0.9, 300)]
    assert front_numbers(trials) == {0, 3}
    assert dominates(trials[0], trials[1]) and dominates(trials[0], trials[2])


def test_infeasible_pruned_failed_and_running_never_join() -> None:
    trials = [
        rec(0, 0.5, 100),
        rec(1, None, 50, "infeasible"),
        rec(2, None, 60, "pruned"),
        rec(3, None, None, "failed"),
        TrialRecord(4, "RUNNING", "running", None, accuracy=None, macs=10),
        # a complete trial without MACs cannot be placed either
        TrialRecord(5, "COMPLETE", "complete", None, accuracy=0.99, macs=None),
    ]
    assert front_numbers(trials) == {0}
    assert not dominates(trials[0], trials[1])


def test_empty_and_single() -> None:
    assert pareto_front([]) == []
    assert front_numbers([rec(7, 0.1, 10**9)]) == {7}


def test_matches_the_quadratic_definition_on_a_grid_with_many_ties() -> None:
    trials = [
        rec(i, accuracy=round(0.5 + 0.1 * ((i * 7) % 4), 2), macs=100 * (1 + (i * 5) % 6))
        for i in range(40)
    ]
    assert front_numbers(trials) == brute_force(trials)
    assert front_numbers(trials)  # non-empty
