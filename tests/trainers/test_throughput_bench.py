"""benchmarks/trial_throughput.py runs on the CPU and reports both paths and their ratio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "trial_throughput.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trial_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_cpu_json(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    argv = ["--device", "cpu", "--synthetic", "--steps", "2", "--warmup-steps", "1"]
    argv += ["--batch-size", "4", "--num-workers", "0", "--resolution", "16", "--threads", "1"]
    assert bench.main([*argv, "--json", "--blocks", "standard", "se"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(row["block"], row["path"]): row for row in report["results"]}
    assert set(rows) == {(b, p) for b in ("standard", "se") for p in ("dataloader", "fast")}
    assert all(row["images_per_second"] > 0 and row["steps"] == 2 for row in rows.values())
    for block in ("standard", "se"):
        ratio = (
            rows[(block, "fast")]["images_per_second"]
            / rows[(block, "dataloader")]["images_per_second"]
        )
        assert report["ratio_fast_over_dataloader"][block] == pytest.approx(ratio)


def test_per_sample_dataset_matches_the_batched_transform_shapes() -> None:
    bench = _load()
    data = bench._data(bench.parse_args(["--synthetic", "--batch-size", "8"]))
    dataset = bench.PerSampleAugment(data, 56, bench.channel_stats(data.images))
    image, label = dataset[3]
    assert image.shape == (3, 56, 56) and int(label) == int(data.labels[3])
    assert len(dataset) == 2048


@pytest.mark.gpu
def test_benchmark_cuda_fast_path_is_faster(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    argv = ["--device", "cuda", "--synthetic", "--steps", "20", "--num-workers", "2", "--json"]
    assert bench.main(argv) == 0
    ratios = json.loads(capsys.readouterr().out)["ratio_fast_over_dataloader"]
    assert set(ratios) == {"standard", "se"} and min(ratios.values()) > 1.0
