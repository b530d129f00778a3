"""benchmarks/packing.py: the CPU smoke run, and on a GPU the 2x-at-4 goal under MPS."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load, run_json


def _load() -> ModuleType:
    return load("packing")


def test_cpu_smoke_run_reports_every_count_against_one_at_a_time() -> None:
    argv = ["--device", "cpu", "--counts", "2", "--steps", "2", "--warmup-steps", "1"]
    argv += ["--batch-size", "4", "--resolution", "16", "--json"]
    report = run_json("packing", argv)
    assert report["device"] == "cpu" and "says nothing about sharing a GPU" in report["note"]
    rows = report["rows"]
    assert [(r["mode"], r["processes"]) for r in rows] == [("timeslice", 1), ("timeslice", 2)]
    assert rows[0]["vs_one_at_a_time"] == 1.0
    assert all(r["aggregate_images_per_second"] > 0 for r in rows)
    ratio = rows[1]["aggregate_images_per_second"] / rows[0]["aggregate_images_per_second"]
    assert rows[1]["vs_one_at_a_time"] == pytest.approx(ratio)


def test_mps_is_dropped_on_the_cpu_and_one_is_always_measured() -> None:
    args = _load().parse_args(["--device", "cpu", "--counts", "4", "2", "--modes", "mps"])
    assert args.modes == [] and args.counts == [1, 2, 4]


@pytest.mark.gpu
def test_four_trials_per_gpu_under_mps_give_2x(capsys: pytest.CaptureFixture[str]) -> None:
    """The goal: at least 2x aggregate images/s at 4 trials per GPU (paper preset)."""
    if shutil.which("nvidia-cuda-mps-control") is None:
        pytest.skip("nvidia-cuda-mps-control is not installed")
    bench = _load()
    argv = ["--device", "cuda", "--counts", "1", "4", "--modes", "timeslice", "mps"]
    assert bench.main([*argv, "--steps", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    print(json.dumps(report, indent=1))
    rows = {(r["mode"], r.get("processes")): r for r in report["rows"]}
    assert ("mps", 4) in rows, rows
    assert rows[("mps", 4)]["vs_one_at_a_time"] >= 2.0


@pytest.mark.gpu
def test_real_mps_daemon_serves_a_cuda_process() -> None:
    """The real control daemon, started by search.driver.mps, gets a client from a CUDA process that
    inherited the variables (as Ray's workers do), and is stopped afterwards."""
    if shutil.which("nvidia-cuda-mps-control") is None:
        pytest.skip("nvidia-cuda-mps-control is not installed")
    from search.driver.mps import mps_daemon

    stream = io.StringIO()
    with mps_daemon(stream) as env:
        assert env, stream.getvalue()
        code = "import torch; print(float((torch.ones(4, device='cuda') * 2).sum()))"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
        assert done.stdout.strip() == "8.0"
        log = Path(env["CUDA_MPS_LOG_DIRECTORY"]) / "control.log"
        assert "server" in log.read_text().lower()
    assert not Path(env["CUDA_MPS_PIPE_DIRECTORY"]).exists()
