"""The one Pareto front: trials and report records give the same front, by the same rules."""

from __future__ import annotations

from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from reports.pareto import front_numbers
from reports.records import TrialRecord, trial_record
from search.study.front import best_accuracy, dominates, pareto_front, trial_point


def trial(number: int, accuracy: float, macs: float, state: TrialState) -> FrozenTrial:
    values = [accuracy, macs] if state == TrialState.COMPLETE else None
    made = create_trial(
        state=state,
        values=values,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        user_attrs={"macs": int(macs)},
    )
    made.number = number
    return made


def grid() -> list[FrozenTrial]:
    """Many ties on both objectives, plus trials that never join the front."""
    states = (TrialState.COMPLETE,) * 5 + (TrialState.PRUNED, TrialState.FAIL)
    return [
        trial(i, round(0.5 + 0.1 * ((i * 7) % 4), 2), 100 * (1 + (i * 5) % 6), states[i % 7])
        for i in range(40)
    ]


def pareto_front_of(records: list[TrialRecord]) -> list[TrialRecord]:
    return pareto_front(records, lambda r: r.point)


def test_dominance_rules() -> None:
    assert dominates((0.8, 100), (0.7, 100))  # weakly dominated: same MACs
    assert dominates((0.8, 100), (0.8, 150))  # weakly dominated: same accuracy
    assert not dominates((0.8, 100), (0.8, 100))  # duplicates
    assert not dominates((0.9, 200), (0.8, 100))  # a trade-off


def test_trials_and_records_give_the_same_front() -> None:
    trials = grid()
    records = [trial_record(t) for t in trials]
    assert [t.number for t in pareto_front(trials)] == [r.number for r in pareto_front_of(records)]
    assert front_numbers(records) == {t.number for t in pareto_front(trials)}


def test_front_matches_the_quadratic_definition_and_is_sorted() -> None:
    trials = grid()
    points = {t.number: trial_point(t) for t in trials}
    measured = {n: p for n, p in points.items() if p is not None}
    expected = {
        n for n, p in measured.items() if not any(dominates(o, p) for o in measured.values())
    }
    front = pareto_front(trials)
    assert {t.number for t in front} == expected
    keys = [(t.values[1], -t.values[0], t.number) for t in front]
    assert keys == sorted(keys)


def test_best_accuracy_reads_complete_trials_only() -> None:
    assert best_accuracy([]) is None
    trials = [trial(0, 0.6, 100, TrialState.COMPLETE), trial(1, 0.0, 50, TrialState.PRUNED)]
    assert best_accuracy(trials) == 0.6


def test_three_objectives_use_the_same_dominance_over_accuracy_macs_and_latency() -> None:
    assert dominates((0.8, 100, 2.0), (0.8, 100, 3.0))  # only faster
    assert not dominates((0.8, 100, 3.0), (0.8, 200, 2.0))  # fewer MACs, but slower
    points = [(0.8, 100, 3.0), (0.8, 200, 2.0), (0.7, 200, 3.0), (0.9, 300, 5.0), (0.8, 100, 3.0)]
    made = []
    for number, (accuracy, macs, ms) in enumerate(points):
        item = create_trial(state=TrialState.COMPLETE, values=[accuracy, macs, ms])
        item.number = number
        made.append(item)
    # 2 is dominated by 0 (more accurate, fewer MACs, as fast); 0 and 4 are duplicates
    assert [t.number for t in pareto_front(made)] == [0, 4, 1, 3]
    assert trial_point(made[1]) == (0.8, 200, 2.0)
