"""``run_search`` with the inline executor: a tiny real search in this process, no Ray.

The same driver set-up and study as `search run` (temporary SQLite file, the tiny search of
``conftest.py``); the trials run one after another through the searcher, the scheduler and the
trainable. Checks the stored trials, the resume rules, that a trial's error is that trial's FAIL,
and the benchmark hooks (an epoch budget, no early stopping).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from common.errors import UserError
from search.cli.run import build_config, run_command
from search.config import SearchConfig
from search.driver.inline import InlineExecutor
from search.driver.run import Baseline, run_search
from search.study.schema import Counts
from space import ArchSpec, count_spec
from space.latency import this_machine

SMALLEST = 11_861_840  # standard block, expansion 1, 24 px, 10 classes (the opening's first)


def _config(args: list[str], folder: Path, *more: str) -> SearchConfig:
    """``search run``'s configuration for these flags, on a SQLite file in ``folder``."""
    flags = [*args, "--device", "cpu", "--concurrency", "1", "--study", "inline", *more]
    flags += ["--storage", f"sqlite:///{folder / 'search.db'}"]
    with run_command.make_context("run", flags) as context:
        return build_config(context.params)


def _refused_resume(
    capsys: pytest.CaptureFixture[str], tiny_args: list[str], db: Path, *changed: str
) -> str:
    """`search run` resuming the "inline" study of ``db`` with ``changed`` flags: exit 2 and
    one error line, which it returns."""
    from search.cli import main

    flags = [*tiny_args, "--device", "cpu", "--study", "inline", "--trials", "3"]
    capsys.readouterr()
    assert main(["run", *flags, "--storage", f"sqlite:///{db}", *changed]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _trials(config: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=config.study, storage=config.storage).trials


def test_a_tiny_search_runs_inline_stores_every_trial_and_resumes(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    import ray

    config = _config(tiny_args, tmp_path, "--trials", "2")
    stream = io.StringIO()
    ray_before = ray.is_initialized()
    summary = run_search(config, stream, executor="inline")
    assert ray.is_initialized() == ray_before  # no Ray started for it
    # one epoch: MO-ASHA has no rung below it, so every trial trains to the end
    assert summary.counts == Counts(complete=2) and not summary.interrupted
    assert summary.pareto and summary.best_accuracy is not None
    trials = _trials(config)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert trials[0].user_attrs["macs"] == SMALLEST  # the opening: the cheapest network first
    for trial in trials:
        attrs: dict[str, Any] = trial.user_attrs
        spec = ArchSpec.parse(attrs["spec"])
        assert attrs["status"] == "complete" and attrs["stage"] == "joint"
        assert attrs["macs"] == count_spec(spec).macs <= config.budget_macs
        assert trial.values == [attrs["accuracy_per_epoch"][-1], attrs["macs"]]
        assert len(attrs["accuracy_per_epoch"]) == attrs["epochs_run"] == 1
        assert 0.0 < trial.values[0] <= 1.0 and attrs["seconds"] > 0
        assert isinstance(attrs["seed"], int) and attrs["driver"]
        # the trainable's clock readings became the overhead attrs, as under Ray
        assert attrs["overhead_seconds"] >= 0 and attrs["overhead"]["data_cached"] is True
    assert "trial 0 started" in stream.getvalue() and "trial 1 complete" in stream.getvalue()

    again = run_search(config, io.StringIO(), executor="inline")  # the count is reached
    assert again.counts == summary.counts and len(_trials(config)) == 2

    more = run_search(replace(config, trials=3), io.StringIO(), executor="inline")
    assert more.counts == Counts(complete=3)
    trials = _trials(config)
    assert len(trials) == 3 and trials[2].state == TrialState.COMPLETE
    assert trials[2].user_attrs["spec"] not in {t.user_attrs["spec"] for t in trials[:2]}


def test_the_parameter_budget_rejects_before_training_and_the_study_remembers_it(
    tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:

    # standard and se at expansion 1 have 800,082 and 881,764 parameters, expansion 2 more
    config = _config(tiny_args, tmp_path, "--trials", "2", "--budget-params", "1e6")
    summary = run_search(config, io.StringIO(), executor="inline")
    assert summary.counts.complete == 2
    trials = _trials(config)
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert trial.user_attrs["params"] <= 1_000_000
        else:  # rejected by counting: never trained
            assert trial.user_attrs["status"] == "infeasible" and "params" in trial.constraints
            assert trial.user_attrs["constraint"].endswith("> --budget-params 1,000,000")
            assert "epochs_run" not in trial.user_attrs
    db = tmp_path / "search.db"
    before = db.read_bytes()
    err = _refused_resume(capsys, tiny_args, db, "--budget-params", "2e6")
    assert "budget_params: 1000000 -> 2000000" in err, err
    assert db.read_bytes() == before and len(_trials(config)) == len(trials)


def test_a_resume_that_changes_the_device_or_the_data_is_one_line(
    tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The device that trained (cpu: float32, cuda: bf16) and the data directory are part of a
    study: another is one line, exit 2, nothing written. A study of an older effnas, whose
    config has neither, resumes and remembers them from then on."""
    config = _config(tiny_args, tmp_path, "--trials", "1")
    run_search(config, io.StringIO(), executor="inline")
    study = optuna.load_study(study_name=config.study, storage=config.storage)
    stored = study.user_attrs["config"]
    assert (stored["device"], stored["data_dir"]) == ("cpu", None)
    study.set_user_attr("config", {**stored, "device": "cuda"})  # as if a GPU had run it
    db = tmp_path / "search.db"
    before = db.read_bytes()
    err = _refused_resume(capsys, tiny_args, db)
    assert "different configuration (device: 'cuda' -> 'cpu')" in err, err
    study.set_user_attr("config", stored)
    before = db.read_bytes()
    err = _refused_resume(capsys, tiny_args, db, "--data-dir", "/usr/share/datasets/fashion-mnist")
    assert "data_dir: None -> '/usr/share/datasets/fashion-mnist'" in err, err
    assert db.read_bytes() == before
    older = {k: v for k, v in stored.items() if k not in ("device", "data_dir")}
    study.set_user_attr("config", older)
    summary = run_search(replace(config, trials=2), io.StringIO(), executor="inline")
    assert summary.counts.complete == 2
    remembered = optuna.load_study(study_name="inline", storage=config.storage).user_attrs
    assert remembered["config"] == {**older, "device": "cpu", "data_dir": None}


def test_latency_as_an_objective_is_measured_once_per_network_and_remembered(
    tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from search.study.latency import stored_latencies

    config = _config(tiny_args, tmp_path, "--trials", "2", "--objectives", "accuracy,latency")
    stream = io.StringIO()
    summary = run_search(config, stream, executor="inline")
    assert summary.counts.complete == 2
    here = this_machine()
    assert (
        f"latency: candidates are timed on this machine, {here.label}, 1 thread(s); a driver on "
        "another host is refused (time on one node: --latency-resource NAME)\n"
    ) in stream.getvalue()
    study = optuna.load_study(study_name=config.study, storage=config.storage)
    assert study.metric_names == ["accuracy", "latency"] and len(study.directions) == 2
    measured = stored_latencies(study.user_attrs)
    for trial in _trials(config):
        attrs = trial.user_attrs
        record = attrs["latency"]
        assert trial.values == [attrs["accuracy_per_epoch"][-1], attrs["latency_ms"]]
        assert record["median_ms"] == attrs["latency_ms"] > 0
        assert (record["device"], record["batch"], record["threads"]) == ("cpu", 1, 1)
        assert record["backend"] == "torch" and record["versions"]["torch"]
        assert (record["host"], record["processor"]) == (here.host, here.processor)
        assert measured[f"latency:{attrs['spec_id']}:{here.host}:cpu:b1:torch"] == record
    assert len(measured) == len({t.user_attrs["spec_id"] for t in _trials(config)})
    assert study.user_attrs["latency_machine"] == {**here.to_dict(), "resource": None}
    db = tmp_path / "search.db"
    before = db.read_bytes()
    for objectives, fragment in (
        ("accuracy,macs", "objectives: ['accuracy', 'latency'] -> None"),
        (
            "accuracy,macs,latency",
            "directions ['MAXIMIZE', 'MINIMIZE'], not ['MAXIMIZE', 'MINIMIZE', 'MINIMIZE']",
        ),
    ):
        err = _refused_resume(capsys, tiny_args, db, "--objectives", objectives)
        assert fragment in err, err
    assert db.read_bytes() == before
    # the study's latencies as if host-b had timed them: this host may not add its own
    elsewhere = {"host": "host-b", "processor": here.processor, "resource": None}
    study.set_user_attr("latency_machine", elsewhere)
    before = db.read_bytes()
    err = _refused_resume(capsys, tiny_args, db, "--objectives", "accuracy,latency")
    assert err == (
        f"error: study 'inline' measures latency on host-b ({here.processor}), but this driver "
        f"would time on {here.label}: one objective or --latency-budget-ms cannot compare "
        "figures from two machines; run this command on host-b, or time every candidate on one "
        "node: a new --study with --latency-resource NAME, the node started with ray start "
        "--resources '{\"NAME\": 1}'\n"
    )
    assert db.read_bytes() == before


def test_a_trial_error_is_that_trials_fail_and_the_search_goes_on(
    tmp_path: Path, tiny_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.worker.trial as worker

    real = worker.train_trial

    def train_trial(spec: ArchSpec, *args: Any, **kwargs: Any) -> Any:
        if count_spec(spec).macs == SMALLEST:
            raise RuntimeError("boom")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(worker, "train_trial", train_trial)
    config = _config(tiny_args, tmp_path, "--trials", "2")
    summary = run_search(config, io.StringIO(), executor="inline")
    assert summary.counts == Counts(complete=1, failed=1)
    failed, complete = _trials(config)
    assert failed.state == TrialState.FAIL and failed.user_attrs["status"] == "failed"
    assert failed.user_attrs["fail_reason"] == "RuntimeError: boom"  # the worker's reason
    assert complete.state == TrialState.COMPLETE


def test_benchmark_hooks_epoch_budget_and_no_early_stopping(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    # an epoch budget of 2 with 2-epoch trials: one trial, although --trials allows 3
    config = _config(tiny_args, tmp_path, "--trials", "3", "--epochs", "2")
    budgeted = InlineExecutor(epoch_budget=2)
    summary = run_search(config, io.StringIO(), executor=budgeted)
    # the opening trials not started stay queued
    assert summary.counts == Counts(complete=1, waiting=2) and budgeted.epochs_trained == 2

    # random search without the opening and without a scheduler: every trial trains all epochs
    plain = replace(config, study="random", trials=2)
    executor = InlineExecutor(scheduler=None)
    summary = run_search(plain, io.StringIO(), executor, Baseline("random", opening=False))
    assert summary.counts == Counts(complete=2) and executor.epochs_trained == 4
    assert all(t.user_attrs["epochs_run"] == 2 for t in _trials(plain))


def test_the_inline_executor_refuses_concurrency_before_touching_the_database(
    tmp_path: Path, tiny_args: list[str]
) -> None:
    config = _config(tiny_args, tmp_path, "--trials", "2")
    with pytest.raises(UserError, match="one trial at a time"):
        run_search(replace(config, concurrency=2), io.StringIO(), executor="inline")
    assert not (tmp_path / "search.db").exists()
