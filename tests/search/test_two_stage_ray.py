"""A real two-stage search (Ray Tune, CPU, Fashion-MNIST): stage 1 at equal cost, then a family."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.cli import main
from search.strategy.ranking import nsga_order
from space import ArchSpec, count_spec

pytestmark = pytest.mark.ray


def test_two_stage_search_scales_the_best_triple_to_a_family(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    args = ["run", *tiny_args, "--budget-flops", "1e8", "--trials", "4", "--concurrency", "2"]
    args += ["--strategy", "two-stage", "--study", "two", "--device", "cpu", "--storage", url]
    assert main(args) == 0
    trials = optuna.load_study(study_name="two", storage=url).trials
    assert all(t.state == TrialState.COMPLETE for t in trials)  # nothing rejected, one epoch
    stage1 = [t for t in trials if t.user_attrs["stage"] == "phi1"]
    family = [t for t in trials if t.user_attrs["stage"] == "scaled"]
    assert len(stage1) == len(family) == 2
    # stage 1: the preset's options nearest the space (standard, e=2), twice their baseline
    baseline = count_spec(ArchSpec(expansion=2, resolution=24, classes=10)).macs
    for trial in stage1:
        spec = ArchSpec.parse(trial.user_attrs["spec"])
        assert (spec.block, spec.expansion) == ("standard", 2)
        assert 0.6 * 2 * baseline < trial.values[1] <= 2 * baseline
    # stage 2: the Pareto-best stage-1 triple at the budget and at the level below it
    best = stage1[nsga_order([(t.values[0], t.values[1]) for t in stage1])[0]]
    assert {t.user_attrs["parent"] for t in family} == {best.number}
    levels = sorted(t.user_attrs["level"] for t in family)
    assert levels[-1] == 100_000_000 and 2 * baseline < levels[0] < levels[-1]
    assert sorted(t.user_attrs["member"] for t in family) == [1, 2]
    macs = sorted(t.values[1] for t in family)
    assert all(0.6 * level < m <= level for m, level in zip(macs, levels, strict=True))
    # a family at three MAC levels: stage-1 cost, the level between, the budget
    assert max(t.values[1] for t in stage1) < macs[0] < macs[1]
    parent = ArchSpec.parse(best.user_attrs["spec"])
    for trial in family:
        spec = ArchSpec.parse(trial.user_attrs["spec"])
        assert (spec.alpha, spec.beta, spec.gamma) == (parent.alpha, parent.beta, parent.gamma)
