"""Simulated trials (``search.worker.curves``) through the real driver: inline and on the
simulated clock (``search.driver.simulated``), on a temporary SQLite study."""

from __future__ import annotations

import io
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.config import SearchConfig
from search.driver.inline import InlineExecutor
from search.driver.run import run_search
from search.driver.simulated import SimulatedExecutor
from search.worker.curves import Curve, CurveTrial, SyntheticCurves, curve_reports, unit_noise
from search.worker.trial import TrialSettings
from space import ArchSpec, count_spec
from space.searchspace import SearchSpace

SPACE = {"block": ["standard", "se"], "expansion": [1, 2], "mid_conv": "depthwise", "kernel": 3}


def _config(folder: Path, trials: int, epochs: int, concurrency: int = 1) -> SearchConfig:
    return SearchConfig(
        budget_macs=20_000_000,
        dataset="fashion-mnist",
        trials=trials,
        epochs=epochs,
        subset=200,
        val_fraction=0.25,
        seed=3,
        concurrency=concurrency,
        space=SearchSpace.from_mapping({**SPACE, "base_resolution": 16}),
        storage=f"sqlite:///{folder / 'sim.db'}",
        device="cpu",
    )


def _trials(config: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=config.study, storage=config.storage).trials


def test_noise_and_synthetic_curves_depend_only_on_their_key() -> None:
    assert unit_noise("a", 1) == unit_noise("a", 1) != unit_noise("a", 2)
    draws = [unit_noise("n", i) for i in range(4000)]
    mean = sum(draws) / len(draws)
    spread = math.sqrt(sum((d - mean) ** 2 for d in draws) / len(draws))
    assert abs(mean) < 0.06 and abs(spread - 1.0) < 0.05
    source = SyntheticCurves(noise=0.02, seconds_per_mmac=0.5, min_seconds=1.0)
    small = ArchSpec(expansion=1, base_resolution=8, classes=10)
    large = ArchSpec(expansion=4, alpha=1.2, beta=1.1, gamma=1.4, phi=3, base_resolution=8)
    large = large.replace(classes=10)
    curve = source.curve(small, seed=0, epochs=4)
    assert curve == source.curve(small, seed=0, epochs=4) != source.curve(small, seed=1, epochs=4)
    assert list(curve.accuracy) == sorted(curve.accuracy) and len(curve.seconds) == 4
    assert source.curve(large, 0, 4).accuracy[-1] > curve.accuracy[-1] + 0.1  # size pays
    assert source.curve(large, 0, 4).seconds[0] == pytest.approx(count_spec(large).macs / 2e6)
    with pytest.raises(ValueError, match="one accuracy and one duration"):
        Curve((0.5, 0.6), (1.0,))


def test_a_curve_reports_what_a_real_trial_reports() -> None:
    spec = ArchSpec(expansion=1, resolution=16, classes=10)
    settings = TrialSettings(epochs=3, batch_size=16, device="cpu", threads=1)
    curve = Curve((0.5, 0.6, 0.7), (2.0, 2.0, 3.0), (1.2, 1.0, 0.9))
    reports = list(curve_reports({"number": 7, "seed": 1}, settings, curve, spec))
    assert [seconds for _, seconds in reports] == [2.0, 2.0, 3.0]
    first, last = reports[0][0], reports[-1][0]
    assert first["final"] is False and (first["epoch"], first["accuracy"]) == (1, 0.5)
    assert last["final"] is True and last["done_epochs"] == 3 and last["accuracy"] == 0.7
    assert last["accuracy_per_epoch"] == [0.5, 0.6, 0.7] and last["seconds"] == 7.0
    assert last["macs"] == count_spec(spec).macs and last["number"] == 7
    # the keys of search.worker.trial.run_trial's reports
    assert {"epoch", "done_epochs", "accuracy", "loss", "epoch_seconds", "final"} <= set(first)
    assert {"accuracy", "epochs_run", "seconds", "macs", "params", "final"} <= set(last)


def test_simulated_trials_run_inline_through_the_searcher_and_mo_asha(tmp_path: Path) -> None:
    config = _config(tmp_path, trials=8, epochs=4)
    executor = InlineExecutor(trial=CurveTrial(SyntheticCurves()))
    summary = run_search(config, io.StringIO(), executor)
    counts = summary.counts
    assert counts.done == 8 and counts.complete + counts.pruned == 8 and counts.pruned >= 1
    source = SyntheticCurves()
    for trial in _trials(config):
        if trial.state != TrialState.COMPLETE:
            continue
        spec = ArchSpec.parse(trial.user_attrs["spec"])
        expected = source.curve(spec, trial.user_attrs["seed"], 4).accuracy
        assert trial.user_attrs["accuracy_per_epoch"] == list(expected)
        assert trial.values == [expected[-1], count_spec(spec).macs]


def test_the_simulated_clock_runs_trials_at_once_in_time_order(tmp_path: Path) -> None:
    config = _config(tmp_path, trials=12, epochs=4, concurrency=4)
    source = SyntheticCurves(seconds_per_mmac=1.0, min_seconds=1.0)
    executor = SimulatedExecutor(source, concurrency=4)
    summary = run_search(config, io.StringIO(), executor)
    assert summary.counts.done == 12 and summary.counts.running == 0
    ended = executor.finished
    assert len(ended) == 12 and [e.clock for e in ended] == sorted(e.clock for e in ended)
    trials = {t.number: t for t in _trials(config)}
    epochs = sum(trials[e.number].user_attrs["epochs_run"] for e in ended)
    assert ended[-1].epochs == executor.epochs_trained == epochs
    # four at a time: the last trial ends well before the sum of every trial's time
    total = sum(
        sum(source.curve(ArchSpec.parse(t.user_attrs["spec"]), t.user_attrs["seed"], 4).seconds)
        for t in trials.values()
        if t.user_attrs.get("status") != "infeasible"
    )
    assert executor.clock < 0.6 * total


def test_an_epoch_budget_stops_starting_trials(tmp_path: Path) -> None:
    config = _config(tmp_path, trials=20, epochs=2)
    executor = SimulatedExecutor(SyntheticCurves(), concurrency=1, scheduler=None, epoch_budget=6)
    summary = run_search(config, io.StringIO(), executor)
    counts = summary.counts
    assert (counts.complete, counts.pruned, counts.running) == (3, 0, 0)
    assert counts.waiting == 6 - 3  # the opening (6 trials for 20) not started
    assert executor.epochs_trained == 6
