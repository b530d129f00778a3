"""benchmarks/learning_curves.py, surrogate.py and simulate.py: the draw of the table's networks,
a tiny real table that resumes, the surrogate's fit and noise on a table of known curves, and a
tiny simulated comparison with its statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from search.worker.curves import SyntheticCurves
from space import ArchSpec, count_spec, resolve
from tests.benchmarks.scripts import load

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _curves() -> ModuleType:
    return load("learning_curves")


def synthetic_table(path: Path, networks: int, replicas: int = 6, seeds: int = 3) -> Path:
    """A table in the format of learning_curves.py whose curves are ``SyntheticCurves``'."""
    curves = _curves()
    regime = curves.Regime()
    source = SyntheticCurves(noise=0.015, seconds_per_mmac=1.0, min_seconds=1.0)
    with path.open("w") as file:
        file.write(json.dumps({"regime": regime.identity()}) + "\n")
        for spec, seed in curves.jobs(curves.draw_networks(regime, networks), replicas, seeds):
            curve = source.curve(ArchSpec.parse(spec), seed, regime.epochs)
            record = {"spec": spec, "seed": seed, "accuracy": list(curve.accuracy)}
            file.write(json.dumps({**record, "epoch_seconds": list(curve.seconds)}) + "\n")
    return path


def test_the_table_draws_every_block_over_the_mac_range_within_the_budget() -> None:
    curves = _curves()
    regime = curves.Regime()
    networks = curves.draw_networks(regime, 30)
    assert networks == curves.draw_networks(regime, 30) and len(networks) == 30
    assert networks[0] == regime.space().smallest_spec(10)  # every search's first trial
    assert {s.block for s in networks} == {"standard", "se", "condconv"}
    assert all(s.base_resolution == 8 and s.mid_conv == "depthwise" for s in networks)
    macs = [count_spec(s).macs for s in networks]
    assert max(macs) <= regime.budget and max(macs) > 8 * min(macs)
    assert len({resolve(s).layout for s in networks}) == 30  # no network twice
    order = curves.jobs(networks, replicas=3, seeds=2)
    assert len(order) == 30 + 3 * 2 and order[0] == (networks[0].canonical(), 0)
    assert {seed for _, seed in order} == {0, 1, 2}


def test_a_tiny_real_table_resumes_and_packs(tmp_path: Path) -> None:
    if not REAL_FASHION_MNIST.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    curves = _curves()
    out = tmp_path / "curves.jsonl"
    argv = ["--out", str(out), "--networks", "2", "--replicas", "1", "--seeds", "1"]
    argv += ["--epochs", "2", "--subset", "120", "--batch-size", "32"]
    assert curves.main(argv) == 0
    records = list(curves.read_table(out))
    assert len(records) == 3 and {r["seed"] for r in records} == {0, 1}
    for record in records:
        assert len(record["accuracy"]) == len(record["epoch_seconds"]) == 2
        assert record["macs"] == count_spec(ArchSpec.parse(record["spec"])).macs
        assert (record["train_images"], record["val_images"]) == (90, 30)
    assert curves.main(argv) == 0 and len(list(curves.read_table(out))) == 3  # nothing again
    packed = tmp_path / "curves.jsonl.xz"
    assert curves.main([*argv, "--pack", str(packed)]) == 0
    assert sorted(map(json.dumps, curves.read_table(packed))) == sorted(map(json.dumps, records))
    with pytest.raises(SystemExit, match="another regime"):
        curves.main([*argv[:-2], "--batch-size", "16"])


def test_the_surrogate_learns_known_curves_and_draws_the_measured_noise(tmp_path: Path) -> None:
    surrogate = load("surrogate")
    table = synthetic_table(tmp_path / "table.jsonl", networks=60)
    records = list(_curves().read_table(table))
    report = surrogate.held_out(records, folds=5)
    epochs = _curves().Regime().epochs
    assert report["networks"] == 60
    assert [r["epoch"] for r in report["per_epoch"]] == list(range(1, epochs + 1))
    assert report["per_epoch"][-1]["tau"] > 0.6  # networks it was not fitted on
    ceiling = surrogate.seed_ceiling(records)
    noise = ceiling["per_epoch"][-1]["seed_std"]
    assert ceiling["seeds"] == 4 and 0.005 < noise < 0.03  # SyntheticCurves' 0.015
    model = surrogate.SurrogateCurves.fit(records)
    spec = ArchSpec.parse(records[5]["spec"])
    first, again, other = (model.curve(spec, s, epochs) for s in (0, 0, 1))
    assert first == again and first != other and len(first.seconds) == epochs
    draws = [model.curve(spec, s, epochs).accuracy[-1] for s in range(200)]
    mean = sum(draws) / len(draws)
    spread = math.sqrt(sum((d - mean) ** 2 for d in draws) / len(draws))
    assert spread == pytest.approx(noise, rel=0.25)
    with pytest.raises(ValueError, match=f"{epochs}-epoch"):
        model.curve(spec, 0, epochs + 1)


def test_simulated_comparison_and_its_statistics(tmp_path: Path) -> None:
    simulate = load("simulate")
    assert simulate.hv_at([(3, 0.2), (6, 0.5), (9, 0.6)], 7) == 0.5
    assert simulate.hv_at([(3, 0.2)], 2) == 0.0
    assert simulate.epochs_to_reach([(3, 0.2)], 0.3) is None
    versus = simulate.compare([0.6, 0.7, 0.8, 0.65, 0.75, 0.7], [0.5, 0.6, 0.7, 0.6, 0.7, 0.6])
    assert versus["wins"] == 6 and versus["wilcoxon_p"] < 0.05
    assert versus["ratio_ci"][0] < versus["ratio"] < versus["ratio_ci"][1]
    table = synthetic_table(tmp_path / "table.jsonl", networks=40)
    out = tmp_path / "sim.json"
    argv = ["--table", str(table), "--seeds", "2", "--trials", "8", "--json", str(out)]
    argv += ["--methods", "pareto", "random", "random_opening"]
    assert simulate.main(argv) == 0
    report = json.loads(out.read_text())
    assert len(report["runs"]) == 6
    rows = report["summary"]["8"]
    epochs = _curves().Regime().epochs
    assert rows["random"]["epochs"] == 8 * epochs and rows["pareto"]["epochs"] <= 8 * epochs
    assert set(rows["pareto"]["vs_random_opening"]) >= {"ratio", "ratio_ci", "wilcoxon_p"}
    for run in report["runs"]:
        epochs = [e for e, _ in run["curve"]]
        assert epochs == sorted(epochs) and epochs[-1] == run["epochs"]
    assert simulate.main([*argv, "--resume"]) == 0  # nothing runs again
    assert len(json.loads(out.read_text())["runs"]) == 6
