"""benchmarks/search_quality.py: the preset ladder, the per-run measures, and a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from space import ArchSpec, count_spec
from tests.benchmarks.scripts import load


def _load() -> ModuleType:
    return load("search_quality")


def test_preset_ladder_is_b0_fitted_from_its_baseline_to_the_budget() -> None:
    bench = _load()
    setup = bench.Setup(budget=100_000_000, resolution=24, ladder=3)
    ladder = bench.preset_ladder(setup, classes=10)
    baseline = ArchSpec(resolution=24, classes=10, alpha=1.2, beta=1.1, gamma=1.15)
    assert ladder[0] == baseline and len(ladder) == 3
    macs = [count_spec(s).macs for s in ladder]
    assert macs == sorted(macs) and macs[-1] <= 100_000_000 < 1.2 * macs[-1]
    assert all(
        (s.block, s.expansion, s.mid_conv, s.kernel) == ("standard", 4, "depthwise", 3)
        for s in ladder
    )
    assert bench.preset_ladder(bench.Setup(budget=10_000_000, resolution=24), 10) == []


def test_measure_and_summary() -> None:
    bench = _load()
    runs = []
    for seed, points in enumerate([[(0.55, 4e6), (0.3, 2e6)], [(0.55, 4e6), (0.9, 32e6)]]):
        run = bench.Run("pareto", seed, points=[(a, int(m)) for a, m in points])
        runs.append(bench.measure(run, chance=0.1, budget=16_000_000, smallest=1_000_000))
    assert runs[0].best_accuracy == 0.55 and runs[1].best_accuracy == 0.55  # 32e6 > budget
    assert runs[1].hypervolume == pytest.approx(0.25) and runs[1].front == [(0.55, 4_000_000)]
    assert runs[0].front == [(0.3, 2_000_000), (0.55, 4_000_000)]
    summary = bench.summarise(runs)["pareto"]
    assert summary["hypervolume_mean"] == pytest.approx((runs[0].hypervolume + 0.25) / 2)
    assert "pareto" in bench.table(runs, bench.summarise(runs))


def test_hypervolume_curve_counts_the_epochs_of_every_trained_trial() -> None:
    bench = _load()
    history = [(0.55, 4_000_000, 2), (None, 8_000_000, 1)]  # (accuracy, MACs, epochs)
    history += [(0.9, 32_000_000, 2), (0.7, 2_000_000, 2)]
    curve = bench.hypervolume_curve(history, chance=0.1, budget=16_000_000, smallest=1_000_000)
    assert [epochs for epochs, _ in curve] == [2, 3, 5, 7]
    assert curve[0][1] == pytest.approx(0.25) == curve[1][1] == curve[2][1]  # stopped, over budget
    # (0.7 - 0.1) / 0.9 = 2/3 above chance x log(16/2) / log(16/1) = 3/4; it dominates 0.55 at 4M
    assert curve[3][1] == pytest.approx(0.5)
    assert bench.epochs_to_reach(curve, 0.3) == 7 and bench.epochs_to_reach(curve, 0.25) == 2
    assert bench.epochs_to_reach(curve, 0.51) is None


def test_speedups_compare_epochs_to_reach_random_searchs_final_hypervolume() -> None:
    bench = _load()
    random = bench.Run("random", 0, curve=[(2, 0.1), (4, 0.3), (6, 0.3)], hypervolume=0.3)
    fast = bench.Run("pareto", 0, curve=[(1, 0.2), (2, 0.35)], hypervolume=0.35)
    slow = bench.Run("random_opening", 0, curve=[(2, 0.2), (4, 0.25)], hypervolume=0.25)
    reach = bench.speedups([random, fast, slow])
    assert reach["pareto"]["per_seed"] == [{"seed": 0, "random": 4, "epochs": 2, "ratio": 2.0}]
    assert reach["pareto"]["ratio_median"] == 2.0 and reach["pareto"]["reached"] == 1
    never = reach["random_opening"]
    assert never["reached"] == 0 and never["ratio_median"] is None
    assert "random" not in reach and "2.00x" in bench.table([random, fast], {}, reach)


def test_resume_keeps_the_runs_of_the_same_setup(tmp_path: Path) -> None:
    bench = _load()
    setup = bench.Setup(trials=3)
    run = bench.Run("random", 1, points=[(0.5, 10)], history=[(0.5, 10, 2)], curve=[(2, 0.1)])
    path = tmp_path / "quality.json"
    bench.write(str(path), bench.report_of(setup, [1], [run], 0.1, 5, 0.0))
    assert bench.saved_runs(str(path), setup) == [run]
    with pytest.raises(SystemExit, match="another setup"):
        bench.saved_runs(str(path), bench.Setup(trials=4))


@pytest.mark.slow
def test_a_tiny_real_run_prints_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load()
    out = tmp_path / "quality.json"
    argv = ["--resolution", "24", "--budget-flops", "5e7", "--subset", "200", "--trials", "2"]
    argv += ["--epochs", "2", "--ladder", "1", "--seeds", "0", "--json", str(out), "--methods"]
    argv += ["pareto", "random", "preset", "pareto_compute", "random_opening", "pareto_gp"]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    methods = ["pareto", "random", "preset", "pareto_compute", "random_opening", "pareto_gp"]
    assert [r["method"] for r in report["runs"]] == methods
    assert report["reference"]["chance"] == 0.1 and report["reference"]["budget"] == 50_000_000
    for run in report["runs"]:
        assert all(m <= 50_000_000 for _, m in run["points"]) and 0.0 <= run["hypervolume"] <= 1
    assert len(report["runs"][1]["points"]) == 2  # random search: no early stopping
    # at equal compute: it trained at least the 2 x 2 epochs random search trained
    assert report["runs"][3]["epochs_trained"] >= report["runs"][1]["epochs_trained"] == 4
    # the ablation opens like this search: the cheapest network, then one that fills the budget
    cheapest, filling = sorted(report["runs"][4]["points"], key=lambda p: p[1])
    assert cheapest[1] == report["reference"]["smallest_macs"] and filling[1] > 40_000_000
    for run in report["runs"]:  # the curve ends at the run's epochs and hypervolume
        assert run["curve"][-1] == [run["epochs_trained"], pytest.approx(run["hypervolume"])]
    assert set(report["epochs_to_reach_random"]) == set(methods) - {"random"}
    assert "HV mean" in capsys.readouterr().out
