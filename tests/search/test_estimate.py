"""The estimate before the first trial and the ETA of the progress line."""

from __future__ import annotations

import io
import math
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from search.driver.estimate import (
    LONG_CPU_S,
    Throughput,
    estimate,
    mean_search_macs,
    measure_throughput,
    store_throughput,
    stored_throughput,
)
from search.driver.progress import Progress, duration
from space import ArchSpec, count_spec
from space.searchspace import SearchSpace
from trainers.data import ImageData

# 0.01 s per image of a 1e7-MAC network: 1e-9 s per image per MAC; 1 s of set-up per trial
SPEED = Throughput(0.01, 10_000_000, "block=standard,...", "cpu", "host-a", 2, 1.0)


def test_the_estimate_is_trials_times_epochs_times_images_at_the_mean_macs() -> None:
    # per trial: 2 epochs x (1000 + 300 / 3 evaluated) images x 2e7 MACs x 1e-9 s + 1 s set-up
    forecast = estimate([2e7] * 4, 2, 1000, 300, 2, SPEED)
    assert forecast.seconds == pytest.approx(4 * (2 * 1100 * 2e7 * 1e-9 + 1.0) / 2)
    assert forecast.line == (
        "estimate: 4 trial(s) x 2 epoch(s) x 1,000 images (+300 evaluated) at 2e+07 MACs on "
        "average: about 2 min on cpu (2 thread(s) per trial, 2 at a time; 100 images/s measured "
        "on block=standard,... at 1e+07 MACs); an upper bound: early stopping shortens it"
    )
    assert forecast.advice is None
    # a final evaluates once, after training, not every epoch
    final = estimate([2e7], 10, 1000, 300, 1, SPEED, stored=True, what="final")
    assert final.seconds == pytest.approx(10 * (1000 + 100 / 10) * 2e7 * 1e-9 + 1.0)
    assert "images/s stored for" in final.line and "upper bound" not in final.line


def test_a_long_cpu_run_says_what_to_do_instead() -> None:
    slow = estimate([2.6e9] * 64, 5, 54_000, 6_000, 1, SPEED)
    assert slow.seconds > LONG_CPU_S
    assert slow.advice == (
        f"note: {duration(slow.seconds)} is long for a CPU; for a first look use --preset quick "
        "(about a minute), a GPU (--device cuda), or fewer images, trials or epochs "
        "(--subset 5000, --trials, --epochs)"
    )
    on_gpu = Throughput(0.01, 10_000_000, "x", "cuda", "host-a", 1, 1.0)
    assert estimate([2.6e9] * 64, 5, 54_000, 6_000, 1, on_gpu).advice is None
    assert [duration(s) for s in (45, 600, 3 * 3600, 40 * 86400)] == [
        "45 s", "10 min", "3.0 h", "40 days",
    ]  # fmt: skip


def test_the_mean_macs_of_a_joint_search_are_the_log_uniform_mean() -> None:
    budget = int(2.6e9)
    mean, spec = mean_search_macs(SearchSpace(), 10, budget)
    base = count_spec(ArchSpec(classes=10, alpha=1.2, beta=1.1, gamma=1.15)).macs
    assert mean == pytest.approx((budget - base) / math.log(budget / base))
    assert count_spec(spec).macs <= mean and spec.block == "standard" and spec.expansion == 4
    pinned = SearchSpace.from_mapping({"phi": 1.0}, "test")
    mean, spec = mean_search_macs(pinned, 10, budget)
    assert mean == count_spec(spec).macs and spec.phi == 1.0


def test_throughput_is_measured_on_real_training_steps_and_kept_per_host(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=generator)
    data = ImageData(images, torch.arange(16) % 10, 10, "random")
    spec = ArchSpec(expansion=1, resolution=16, classes=10)
    measured = measure_throughput(spec, data, "cpu", threads=1)
    assert 0 < measured.seconds_per_image < 10 and measured.macs == count_spec(spec).macs
    assert measured.spec == spec.canonical() and measured.setup_seconds > 0
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    assert stored_throughput(study, "cpu", 1) is None
    store_throughput(study, measured)
    assert stored_throughput(study, "cpu", 1) == measured
    assert stored_throughput(study, "cpu", 2) is None  # another share of the machine


def _trial(state: TrialState, epochs: int) -> optuna.trial.FrozenTrial:
    attrs = {"status": state.name.lower(), "epochs_run": epochs}
    values = [0.8, 1e7] if state == TrialState.COMPLETE else None
    return create_trial(state=state, values=values, user_attrs=attrs)


def test_the_eta_comes_from_the_epochs_measured_in_this_run(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'p.db'}", directions=["maximize", "minimize"]
    )
    study.add_trial(_trial(TrialState.COMPLETE, 4))  # done before this run: not timed by it
    progress = Progress(study, trials=5, stream=io.StringIO(), epochs=4)
    progress.estimate_s = 1200.0
    assert progress.eta(progress.tally.update(), elapsed=200.0) == ", ETA 17 min (estimate)"
    study.add_trial(_trial(TrialState.COMPLETE, 4))
    study.add_trial(_trial(TrialState.PRUNED, 1))  # stopped early after one epoch
    study.add_trial(_trial(TrialState.RUNNING, 2))
    # 7 epochs in 700 s: 100 s each; left: 2 of the running trial, 4 of the one not started
    assert progress.eta(progress.tally.update(), elapsed=700.0) == (", ETA 10 min (from 7 epochs)")
    no_eta = Progress(study, 5, io.StringIO())
    assert no_eta.eta(no_eta.tally.update(), 1.0) == ""
