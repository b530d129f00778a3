"""search.strategy.gaps: the front's widest gap and the member that fills it; and the planner
queueing it in a real study."""

from __future__ import annotations

import io
import math
from pathlib import Path

import optuna
import pytest

from search.config import SearchConfig
from search.driver.run import Baseline, run_search
from search.driver.simulated import SimulatedExecutor
from search.strategy.gaps import Member, front_of, gap_bucket, key, share_for, widest_gap
from search.study import schema
from search.worker.curves import SyntheticCurves
from space import ArchSpec, count_spec
from space.searchspace import SearchSpace


def _member(number: int, accuracy: float, macs: int, base: int | None = None) -> Member:
    return Member(number, accuracy, macs, base or macs // 4, {"target_share": 0.5})


def test_share_inverts_the_planners_target() -> None:
    base, budget = 2e6, 4e7
    for share in (0.0, 0.3, 1.0):
        target = base * (budget / base) ** share
        assert share_for(base, target, budget) == pytest.approx(share)
    assert share_for(base, base / 2, budget) == 0.0 and share_for(base, 2 * budget, budget) == 1.0


def test_the_front_and_the_gap_worth_most() -> None:
    members = [
        _member(0, 0.60, 1_000_000),
        _member(1, 0.62, 1_100_000),  # a gap too narrow to fill
        _member(2, 0.70, 4_000_000),
        _member(3, 0.65, 5_000_000),  # dominated by 2
        _member(4, 0.72, 32_000_000, base=16_000_000),
    ]
    assert [m.number for m in front_of(members)] == [0, 1, 2, 4]
    proposal = widest_gap(members, budget=40_000_000)
    # gains: 1 -> 2: (0.70 - 0.62) * log(4 / sqrt(1.1 * 4)) = 0.0516; 2 -> 4: 0.02 * log(2.83)
    assert proposal is not None and proposal.source.number == 2
    assert proposal.target == pytest.approx(math.sqrt(1_100_000 * 4_000_000))
    assert proposal.gain == pytest.approx(0.08 * math.log(4_000_000 / proposal.target))
    assert proposal.share == pytest.approx(share_for(1_000_000, proposal.target, 40_000_000))
    # once tried, the next gap; a source whose phi = 0 network is above the middle scales up
    second = widest_gap(members, 40_000_000, {key(proposal)})
    assert second is not None and second.source.number == 2  # 4's base 16M > the middle 11.3M
    assert second.target == pytest.approx(math.sqrt(4e6 * 32e6))
    # with every interior gap tried, the gap above the front: the top member towards the budget
    tried = {key(proposal), key(second)}
    top = widest_gap(members, 40_000_000, tried)
    assert top is not None and top.source.number == 4 and top.gain < 0
    assert widest_gap(members, 40_000_000, {*tried, key(top)}) is None
    assert gap_bucket(1.0e6) == gap_bucket(1.01e6) != gap_bucket(1.2e6)


def test_a_search_that_fills_gaps_queues_front_members_again(tmp_path: Path) -> None:
    config = SearchConfig(
        budget_macs=20_000_000,
        trials=12,
        epochs=2,
        subset=200,
        seed=1,
        space=SearchSpace.from_mapping({"block": ["standard", "se"], "base_resolution": 8}),
        storage=f"sqlite:///{tmp_path / 'fill.db'}",
        device="cpu",
    )
    executor = SimulatedExecutor(SyntheticCurves(), scheduler=None)
    summary = run_search(config, io.StringIO(), executor, Baseline(fill_every=2))
    assert summary.counts.complete == 12
    trials = optuna.load_study(study_name=config.study, storage=config.storage).trials
    fills = [t for t in trials if schema.FILLS in t.user_attrs]
    assert fills, "no gap was filled"
    by_number = {t.number: t for t in trials}
    for trial in fills:
        source = by_number[trial.user_attrs[schema.FILLS]]
        assert source.number < trial.number and source.state == optuna.trial.TrialState.COMPLETE
        mine, theirs = (ArchSpec.from_dict(t.user_attrs["spec_json"]) for t in (trial, source))
        # the same architecture and coefficients, another phi: the source scaled to the gap
        assert mine.replace(phi=0.0) == theirs.replace(phi=0.0)
        assert (
            count_spec(mine).macs != count_spec(theirs).macs
            or trial.user_attrs.get("status") == "infeasible"
        )
