"""benchmarks/proxy_fidelity.py: the rank statistics on made-up numbers and a tiny real run."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import ModuleType

import pytest

from space import count_spec
from tests.benchmarks.scripts import load

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _load() -> ModuleType:
    return load("proxy_fidelity")


def test_perfect_reversed_and_constant_rankings() -> None:
    bench = _load()
    up = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert bench.rank_correlations(up, [1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx((1.0, 1.0))
    assert bench.rank_correlations(up, [5.0, 4.0, 3.0, 2.0, 1.0]) == pytest.approx((-1.0, -1.0))
    assert all(math.isnan(v) for v in bench.rank_correlations(up, [1.0] * 5))
    # one swapped neighbour pair out of 10 pairs: tau = (9 - 1) / 10; rho = 1 - 6 * 2 / (5 * 24)
    tau, rho = bench.rank_correlations(up, [1.0, 2.0, 4.0, 3.0, 5.0])
    assert tau == pytest.approx(0.8) and rho == pytest.approx(0.9)


def test_bootstrap_of_a_perfect_ranking_is_one_and_repeats_with_its_seed() -> None:
    bench = _load()
    up = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    intervals = bench.bootstrap_intervals(up, [2 * v for v in up], 200, seed=0)
    assert intervals["tau"] == pytest.approx((1.0, 1.0))
    assert intervals["rho"] == pytest.approx((1.0, 1.0))
    noisy = [0.3, 0.1, 0.2, 0.6, 0.4, 0.5]
    first = bench.bootstrap_intervals(up, noisy, 200, seed=1)
    assert first == bench.bootstrap_intervals(up, noisy, 200, seed=1)
    tau, rho = bench.rank_correlations(up, noisy)
    assert first["tau"][0] <= tau <= first["tau"][1] and first["rho"][0] <= rho <= first["rho"][1]


def test_top1_and_regret() -> None:
    bench = _load()
    assert bench.top1([0.2, 0.9, 0.5], [0.6, 0.8, 0.7]) == (True, 0.0)
    agrees, regret = bench.top1([0.9, 0.2, 0.5], [0.6, 0.8, 0.7])
    assert not agrees and regret == pytest.approx(0.2)


def test_mac_levels_and_fidelity_sizes() -> None:
    bench = _load()
    levels = bench.mac_levels(1e7, 8e7, 4)
    assert levels[0] == 1e7 and levels[-1] == pytest.approx(8e7) and levels[1] == pytest.approx(2e7)
    assert bench.Fidelity("quick", 2000, 1, 16, 0.25).train_images == 1500
    assert bench.Fidelity("reference", 7500, 3, 64).train_images == 7500


def test_networks_span_the_blocks_and_the_mac_range() -> None:
    bench = _load()
    setup = bench.Setup(networks=6, resolution=16, max_macs=2e7)
    specs = bench.select_networks(setup, classes=10)
    assert specs == bench.select_networks(setup, classes=10)  # the seed fixes them
    assert [s.block for s in specs] == ["standard", "se", "condconv"] * 2
    assert len({s.spec_id for s in specs}) == 6
    macs = [count_spec(s).macs for s in specs]
    assert max(macs) <= 2e7 and max(macs) > 2 * min(macs)
    assert all(s.resolution == 16 and s.classes == 10 for s in specs)


def test_a_tiny_real_run_prints_the_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not REAL_FASHION_MNIST.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    bench = _load()
    out = tmp_path / "fidelity.json"
    argv = ["--networks", "3", "--resolution", "16", "--max-macs", "7e6", "--quick-images", "40"]
    argv += ["--sq-images", "40", "--reference-images", "32", "--reference-epochs", "1"]
    argv += ["--test-images", "20", "--bn-batches", "2", "--resamples", "20", "--json", str(out)]
    started = time.perf_counter()
    assert bench.main(argv) == 0
    assert time.perf_counter() - started < 120  # a few seconds on an idle machine
    report = json.loads(out.read_text())
    assert len(report["networks"]) == 3
    for network in report["networks"]:
        assert set(network["scores"]) == {"quick", "sq-cpu", "reference"}
        assert network["scores"]["quick"]["recalibrated"] is not None
        assert network["scores"]["reference"]["recalibrated"] is None
    names = [row["name"] for row in report["summary"]]
    assert names == [
        "quick",
        "quick +BN",
        "sq-cpu",
        "sq-cpu +BN",
        "reference",
        "MACs only",
        "params only",
    ]
    reference = next(row for row in report["summary"] if row["name"] == "reference")
    assert reference["tau"] == pytest.approx(1.0) and reference["rho"] == pytest.approx(1.0)
    assert reference["top1"] and reference["regret"] == 0.0
    printed = capsys.readouterr().out
    assert "Kendall tau" in printed and "params only" in printed
    # a finished run resumes without training anything
    assert bench.main([*argv, "--resume"]) == 0
    assert json.loads(out.read_text())["networks"] == report["networks"]
    capsys.readouterr()
    assert bench.main([*argv, "--summary-only"]) == 0  # the tables again, training nothing
    assert "Rankings against the reference, 3 networks" in capsys.readouterr().out
