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


@pytest.mark.slow
def test_a_tiny_real_run_prints_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load()
    out = tmp_path / "quality.json"
    argv = ["--resolution", "24", "--budget-flops", "5e7", "--subset", "200", "--trials", "2"]
    argv += ["--epochs", "2", "--ladder", "1", "--seeds", "0", "--json", str(out), "--methods"]
    argv += ["pareto", "random", "preset", "pareto_compute", "random_opening"]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    methods = ["pareto", "random", "preset", "pareto_compute", "random_opening"]
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
    assert "HV mean" in capsys.readouterr().out
