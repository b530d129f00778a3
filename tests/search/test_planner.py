"""The planner: targets spread the MACs, the budget is a hard cap, two-stage has equal costs."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from common.errors import UserError
from search.config import SearchConfig
from search.strategy.planner import Planner, spread_shares, stage_one_options
from search.study.database import open_storage
from search.study.schema import DIRECTIONS
from space import ArchSpec, count_spec
from space.searchspace import SearchSpace

SMALL = {"block": ["standard", "se"], "expansion": [1, 2], "mid_conv": "depthwise", "kernel": 3}
SPACE = SearchSpace.from_mapping({**SMALL, "resolution": 24, "tolerance": 0})
SMALLEST = 11_861_840  # standard, e=1, 24 px, 10 classes (tests/space has the exact counts)


def planner(space: SearchSpace = SPACE, budget: int = 100_000_000, **kw: object) -> Planner:
    config = SearchConfig(budget_macs=budget, space=space, trials=kw.pop("trials", 8), **kw)
    return Planner(config, classes=10)


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=open_storage(f"sqlite:///{tmp_path / 'p.db'}"),
        directions=list(DIRECTIONS),
        sampler=optuna.samplers.RandomSampler(seed=5),
    )


def test_joint_targets_spread_the_macs_over_the_whole_range(study: optuna.Study) -> None:
    plan = planner()
    assert plan.smallest_macs == SMALLEST == count_spec(SPACE.smallest_spec(10)).macs
    macs, at_phi_0 = [], 0
    for _ in range(40):
        trial = study.ask()
        candidate = plan.candidate(trial, "joint")
        assert candidate.constraint is None  # no compound-infeasible, none over budget here
        at_phi_0 += candidate.spec.phi == 0.0
        share = trial.params["target_share"]
        base = count_spec(candidate.spec.replace(phi=0.0)).macs
        target = base * (100_000_000 / base) ** share  # the share of its own range
        assert trial.user_attrs["target_macs"] == round(target)
        assert base <= candidate.macs <= target  # fitted to the target by counting
        macs.append(candidate.macs)
        study.tell(trial, state=TrialState.FAIL)
    assert min(macs) < 1.3 * SMALLEST and max(macs) > 0.6 * 100_000_000
    # log-spread: every quarter of log(MACs) between the smallest network and the budget is hit
    quarters = {min(3, int(4 * math.log(m / SMALLEST) / math.log(100e6 / SMALLEST))) for m in macs}
    assert quarters == {0, 1, 2, 3}
    # only small shares give the phi = 0 network (the first step of phi adds a repeat somewhere)
    assert at_phi_0 == 6


def test_share_zero_is_the_phi_0_network_and_over_budget_options_never_train(
    study: optuna.Study,
) -> None:
    space = SearchSpace.from_mapping({**SMALL, "expansion": [1, 6], "resolution": 24})
    plan = planner(space, budget=25_000_000)
    e6 = count_spec(ArchSpec(expansion=6, resolution=24, classes=10)).macs
    assert e6 > 25_000_000
    study.enqueue_trial({"block": "standard", "expansion": 6, "target_share": 0.5})
    study.enqueue_trial({"block": "standard", "expansion": 1, "target_share": 0.0})
    study.enqueue_trial({"block": "standard", "expansion": 1, "target_share": 1.0})
    over = study.ask()
    candidate = plan.candidate(over, "joint")
    assert candidate.constraint == f"phi=0 network has {e6:,} MACs > budget 25,000,000"
    study.tell(over, state=TrialState.PRUNED)
    assert study.trials[0].constraints["budget"] == pytest.approx(e6 / 25_000_000 - 1)
    low = study.ask()
    candidate = plan.candidate(low, "joint")
    assert candidate.constraint is None and candidate.spec.phi == 0.0
    assert candidate.macs == SMALLEST
    study.tell(low, state=TrialState.FAIL)
    high = study.ask()
    candidate = plan.candidate(high, "joint")
    assert candidate.spec.phi > 0 and 0.85 * 25_000_000 < candidate.macs <= 25_000_000


def test_the_parameter_budget_is_a_hard_limit_counted_before_training(
    study: optuna.Study,
) -> None:
    plan = planner(budget_params=1_000_000)
    study.enqueue_trial({"block": "se", "expansion": 2, "se_ratio": 4, "target_share": 0.0})
    study.enqueue_trial({"block": "se", "expansion": 1, "se_ratio": 4, "target_share": 0.0})
    over = study.ask()
    candidate = plan.candidate(over, "joint")
    assert candidate.params == 1_494_910 == count_spec(candidate.spec).params
    assert candidate.constraint == "1,494,910 parameters > --budget-params 1,000,000"
    study.tell(over, state=TrialState.PRUNED)
    assert study.trials[0].constraints["params"] == pytest.approx(0.49491)
    within = plan.candidate(study.ask(), "joint")
    assert candidate.macs == 20_095_776  # the MAC budget alone would let both train
    assert within.constraint is None and within.params == 881_764


def test_the_latency_budget_rejects_a_timed_candidate_before_training(
    study: optuna.Study,
) -> None:
    from space.latency import LatencyRecord, LatencySettings

    timed: list[str] = []

    def measure(spec: ArchSpec, settings: LatencySettings) -> LatencyRecord:
        timed.append(spec.spec_id)
        ms = 1.0 if spec.block == "standard" else 3.0  # a fake clock: SE is slow
        return LatencyRecord(ms, 0.02, "cpu", 1, 1, "torch", 20, (("torch", "x"),), 0.1)

    config = SearchConfig(
        budget_macs=100_000_000,
        space=SPACE,
        trials=8,
        objectives=("accuracy", "latency"),
        latency_budget_ms=2.0,
    )
    plan = Planner(config, classes=10, measure=measure)
    for block in ("se", "standard", "standard"):
        extra = {"se_ratio": 4} if block == "se" else {}
        study.enqueue_trial({"block": block, "expansion": 1, "target_share": 0.0, **extra})
    slow = study.ask()
    candidate = plan.candidate(slow, "joint")
    assert candidate.constraint == "measured 3 ms > --latency-budget-ms 2"
    assert candidate.latency is not None and candidate.latency.median_ms == 3.0
    study.tell(slow, state=TrialState.PRUNED)
    assert study.trials[0].constraints["latency"] == pytest.approx(0.5)
    fast = plan.candidate(study.ask(), "joint")
    assert fast.constraint is None and fast.latency is not None and fast.latency.median_ms == 1.0
    again = plan.candidate(study.ask(), "joint")  # the same network: read from the study
    assert again.latency == fast.latency and len(timed) == 2


def test_a_new_joint_study_opens_at_the_cheapest_network_and_spread_shares(
    study: optuna.Study,
) -> None:
    assert spread_shares(5) == [0.0, 1.0, 0.5, 0.25, 0.75]
    assert spread_shares(1) == [0.0] and spread_shares(0) == []
    space = SearchSpace.from_mapping({**SMALL, "block": ["se", "condconv"], "resolution": 24})
    plan = planner(space, trials=12)  # TPE starts with 4 random trials in a 12-trial study
    opening = plan.opening()
    assert opening[0] == {"block": "se", "expansion": 1, "se_ratio": 16, "target_share": 0.0}
    assert [p["target_share"] for p in opening] == spread_shares(4)
    assert all(len(p) == 1 for p in opening[1:])  # the rest of their parameters are drawn
    # a standard block has no SE ratio or experts to pin
    assert planner().opening()[0] == {"block": "standard", "expansion": 1, "target_share": 0.0}
    plan.enqueue_opening(study)
    macs = []
    for _ in opening:
        trial = study.ask()
        assert trial.user_attrs["stage"] == "joint"
        macs.append(plan.candidate(trial, "joint").macs)
        study.tell(trial, state=TrialState.FAIL)
    assert macs[0] == count_spec(space.smallest_spec(10)).macs == plan.smallest_macs
    assert 0.85 * 100_000_000 < macs[1] <= 100_000_000  # share 1 fills the budget
    assert max(macs) / min(macs) > 7  # the whole range from the first trials on
    # after --b0's queued start, and never more queued than --trials
    capped = optuna.create_study(directions=list(DIRECTIONS))
    capped.enqueue_trial({"alpha_q": 0.5})
    planner(space, trials=3).enqueue_opening(capped)
    waiting = capped.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"].get("target_share") for t in waiting] == [None, 0, 1]
    assert planner(space, strategy="two-stage").opening() == []
    assert planner(SearchSpace.from_mapping({**SPACE.to_dict(), "phi": 1.0})).opening() == []


def test_pinned_phi_has_no_target(study: optuna.Study) -> None:
    space = SearchSpace.from_mapping({**SPACE.to_dict(), "phi": 1.0})
    trial = study.ask()
    candidate = planner(space).candidate(trial, "joint")
    assert candidate.spec.phi == 1.0 and not {"target_macs", "target_share"} & set(trial.params)
    with pytest.raises(UserError, match="two-stage chooses phi itself"):
        planner(space, strategy="two-stage")


def test_stage_one_options_are_the_preset_nearest_allowed() -> None:
    fixed = stage_one_options(SPACE, classes=10, budget=100_000_000)
    assert (fixed.block, fixed.expansion, fixed.mid_conv, fixed.kernel) == (
        ("standard",),
        (2,),  # the preset's 4 is not allowed: the nearest is
        ("depthwise",),
        (3,),
    )
    assert fixed.alpha == SPACE.alpha  # the coefficients stay free
    # 2 x the e=2 baseline does not fit 30M: the cheapest options are used instead
    assert stage_one_options(SPACE, classes=10, budget=30_000_000).expansion == (1,)
    assert stage_one_options(SearchSpace(), classes=10, budget=10**9).expansion == (4,)


def test_stage_one_never_rejects_a_triple_and_compares_at_equal_cost(study: optuna.Study) -> None:
    space = SearchSpace.from_mapping(SMALL)  # 56 px: the resolution scales too
    plan = planner(space, budget=10**9, strategy="two-stage")
    baseline = count_spec(ArchSpec(expansion=2, classes=10)).macs
    assert plan.stage_one_macs == 2 * baseline
    literal_over = 0
    for _ in range(40):
        trial = study.ask()
        candidate = plan.candidate(trial, "phi1")
        assert candidate.constraint is None
        assert 0.6 * plan.stage_one_macs < candidate.macs <= plan.stage_one_macs
        literal = count_spec(candidate.spec.replace(phi=1.0)).macs
        literal_over += literal > 2 * baseline * 1.1  # the old check, tolerance 0.1
        study.tell(trial, state=TrialState.FAIL)
    assert literal_over >= 12  # the literal phi = 1 would have rejected these (ceil on repeats)


def test_family_levels_double_from_the_stage_one_cost_to_the_budget() -> None:
    plan = planner(strategy="two-stage", trials=12)  # 6 stage-1, 6 stage-2 trials
    low = plan.stage_one_macs
    levels = plan.family_levels()
    assert levels[-1] == 100_000_000 and len(levels) == math.ceil(math.log2(100e6 / low))
    ratios = [b / a for a, b in zip([low, *levels], levels, strict=False)]
    assert all(r == pytest.approx(ratios[0], rel=1e-6) and 1 < r <= 2 for r in ratios)
    assert planner(strategy="two-stage", trials=3).family_levels() == [100_000_000]
