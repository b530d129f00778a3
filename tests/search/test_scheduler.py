"""MO-ASHA on Ray's own Trial objects: the cheap non-dominated trial survives a rung that
accuracy-only ASHA (Ray's AsyncHyperBandScheduler) stops it at."""

from __future__ import annotations

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from search.strategy.scheduler import ParetoASHA, make_scheduler
from space import ArchSpec, count_spec

CHEAP = ArchSpec(expansion=1, resolution=24, classes=10)
BIG = ArchSpec(expansion=2, alpha=1.2, beta=1.1, gamma=1.15, phi=1.0, resolution=24, classes=10)
MID = ArchSpec(block="se", expansion=2, resolution=24, classes=10)


def trial(name: str, spec: ArchSpec) -> Trial:
    return Trial("run_trial", config={"spec": spec.canonical()}, trial_id=name, stub=True)


def result(epoch: int, accuracy: float) -> dict:
    return {"epoch": epoch, "done_epochs": epoch, "accuracy": accuracy, "final": False}


def test_milestones_follow_asha() -> None:
    assert make_scheduler(5).milestones == [1, 4]
    assert ParetoASHA(max_t=20, grace_period=2, reduction_factor=3).milestones == [2, 6, 18]
    assert make_scheduler(1).milestones == []  # one epoch: nothing to decide
    with pytest.raises(ValueError, match="grace_period"):
        ParetoASHA(max_t=2, grace_period=3)


def test_keeps_the_cheap_less_accurate_trial_that_asha_stops() -> None:
    assert count_spec(CHEAP).macs < count_spec(MID).macs < count_spec(BIG).macs
    history = [
        (trial("big-a", BIG), 0.80),
        (trial("big-b", BIG), 0.78),
        (trial("mid", MID), 0.70),
        (trial("big-c", BIG), 0.79),
    ]
    cheap = trial("cheap", CHEAP)
    mo, asha = (
        make_scheduler(5),
        AsyncHyperBandScheduler(
            time_attr="epoch", metric="accuracy", mode="max", max_t=5, grace_period=1
        ),
    )
    for t, accuracy in history:
        asha.on_trial_add(None, t)
        asha.on_trial_result(None, t, result(1, accuracy))
        mo.on_trial_result(None, t, result(1, accuracy))
    asha.on_trial_add(None, cheap)
    # the cheapest network, least accurate at epoch 1: accuracy-only ASHA stops it...
    assert asha.on_trial_result(None, cheap, result(1, 0.55)) == TrialScheduler.STOP
    # ...MO-ASHA keeps it: nothing recorded at the rung is both cheaper and more accurate
    assert mo.on_trial_result(None, cheap, result(1, 0.55)) == TrialScheduler.CONTINUE


def test_stops_a_dominated_trial_outside_the_quota() -> None:
    mo = make_scheduler(5)
    decisions = [
        mo.on_trial_result(None, trial(name, BIG), result(1, accuracy))
        for name, accuracy in (("a", 0.80), ("b", 0.78), ("c", 0.81), ("d", 0.70), ("e", 0.60))
    ]
    # equal MACs: dominance is accuracy, and the quota ceil(n / 4) is ASHA's top quarter
    assert decisions == ["CONTINUE", "STOP", "CONTINUE", "STOP", "STOP"]
    assert mo.stopped == ["b", "d", "e"]
    # judged once per rung: its next result before the next rung continues
    assert mo.decide("a", {"spec": BIG.canonical()}, result(2, 0.1)) == TrialScheduler.CONTINUE
    # the last epoch is max_t: done (as Ray's ASHA with stop_last_trials)
    assert mo.decide("a", {"spec": BIG.canonical()}, result(5, 0.9)) == TrialScheduler.STOP


def test_quota_lets_the_best_dominated_trials_through() -> None:
    mo = make_scheduler(5)
    # one recorded trial dominating the newcomer: 2 at the rung, quota ceil(2 / 4) = 1
    assert mo.keeps((0.5, 2e7), [(0.6, 1e7)]) is False
    # eight recorded, the newcomer third in NSGA-II order (front 2 of 4): quota ceil(9 / 4) = 3
    others = [(0.9, 1e7 * (i + 1)) for i in range(2)] + [(0.1, 5e8)] * 6
    assert mo.keeps((0.8, 3e7), others) is True
    assert mo.keeps((0.05, 6e8), others) is False


def test_trials_without_a_spec_or_accuracy_are_left_alone() -> None:
    mo = make_scheduler(5)
    assert mo.decide("x", {}, result(1, 0.1)) == TrialScheduler.CONTINUE
    assert mo.decide("y", {"spec": CHEAP.canonical()}, {"epoch": 1}) == TrialScheduler.CONTINUE
    assert mo.rungs[1] == {}


def test_costs_in_the_config_rank_three_objectives() -> None:
    """With ``--objectives accuracy,macs,latency`` the searcher puts both costs in the config:
    a less accurate trial that is faster is not dominated, one slower and as large is."""
    mo = make_scheduler(5)
    config = {"spec": BIG.canonical()}
    assert mo.decide("a", {**config, "costs": [1e7, 5.0]}, result(1, 0.8)) == "CONTINUE"
    assert mo.decide("b", {**config, "costs": [1e7, 2.0]}, result(1, 0.6)) == "CONTINUE"
    assert mo.decide("c", {**config, "costs": [1e7, 6.0]}, result(1, 0.5)) == "STOP"
    assert mo.rungs[1]["b"] == (0.6, 1e7, 2.0)
