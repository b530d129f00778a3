"""A real end-to-end search on the CPU (Ray Tune local, Fashion-MNIST) into a temporary SQLite file.

One search runs per module (Ray starts once); the tests then read its database with Optuna,
`search studies` / `search best`, and optuna-dashboard's server API.
"""

from __future__ import annotations

import io
import json
import time
import wsgiref.util
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.cli import main
from search.strategy.ranking import dominates
from space import ArchSpec, count_spec

pytestmark = pytest.mark.ray
BUDGET = 50_000_000  # about 4x the smallest network of the tiny space, so MAC targets spread
SMALLEST = 11_861_840  # standard block, expansion 1, 24 px, 10 classes


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> tuple[str, float]:
    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'search.db'}"
    args = ["run", *tiny_args, "--trials", "4", "--concurrency", "2", "--device", "cpu"]
    args += ["--study", "e2e", "--b0", "--budget-flops", "5e7", "--epochs", "2"]
    started = time.monotonic()
    assert main([*args, "--storage", url]) == 0
    return url, time.monotonic() - started


def test_search_stores_every_trial_with_the_schema(searched: tuple[str, float]) -> None:
    url, seconds = searched
    assert seconds < 120
    study = optuna.load_study(study_name="e2e", storage=url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["accuracy", "macs"]
    config = study.user_attrs["config"]
    assert config["budget_macs"] == BUDGET and config["dataset"] == "fashion-mnist"
    assert config["space"]["block"] == ["standard", "se"] and config["space"]["resolution"] == 24
    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    trained = [t for t in trials if t.user_attrs["status"] != "infeasible"]
    assert len(trained) == 4  # --trials 4, infeasible ones not counted
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trained)
    # B0's coefficients were the first trial
    first = ArchSpec.parse(trials[0].user_attrs["spec"])
    assert (first.alpha, first.beta, first.gamma) == (1.2, 1.1, 1.15)
    for trial in trials:
        attrs = trial.user_attrs
        spec = ArchSpec.parse(attrs["spec"])
        assert attrs["spec_json"] == spec.to_dict() and attrs["spec_id"] == spec.spec_id
        assert attrs["macs"] == count_spec(spec).macs and attrs["block"] == spec.block
        assert attrs["stage"] == "joint" and {"torch", "ray"} <= set(attrs["versions"])
        assert isinstance(attrs["seed"], int)
        if trial.state == TrialState.COMPLETE:
            assert attrs["status"] == "complete" and attrs["macs"] <= BUDGET
            assert trial.values == [attrs["accuracy_per_epoch"][-1], attrs["macs"]]
            assert 0.0 <= trial.values[0] <= 1.0 and attrs["epochs_run"] == 2
            assert attrs["images_per_second"] > 0 and attrs["seconds"] > 0
            # the whole batch fit (micro-batches planned from this machine's free memory)
            assert attrs["micro_batch"] == 64 and attrs["accumulation_steps"] == 1
            assert 0 < attrs["memory_estimate_bytes"] < 2**30
        elif attrs["status"] == "infeasible":
            assert trial.state == TrialState.PRUNED and attrs["constraint"]
            assert not attrs["constraint"].startswith("compound")  # feasible by construction
    # the MAC target spreads the trained networks over the range (not all near the budget)
    macs = sorted(t.user_attrs["macs"] for t in trained)
    assert len(set(macs)) >= 3 and macs[-1] >= 1.5 * macs[0]
    assert all(SMALLEST <= m <= BUDGET for m in macs)


def test_the_multi_objective_scheduler_stopped_only_dominated_trials(
    searched: tuple[str, float],
) -> None:
    # MO-ASHA judged every trial at epoch 1; one it stopped was dominated there by another
    # (not merely less accurate): its epoch-1 point is not on the epoch-1 front
    url, _ = searched
    trials = optuna.load_study(study_name="e2e", storage=url).trials
    points = {
        t.number: (t.user_attrs["accuracy_per_epoch"][0], t.user_attrs["macs"])
        for t in trials
        if t.user_attrs.get("accuracy_per_epoch")
    }
    for trial in trials:
        if trial.user_attrs["status"] == "pruned":
            assert trial.user_attrs["epochs_run"] == 1 and trial.values is None
            mine = points[trial.number]
            assert any(dominates(p, mine) for n, p in points.items() if n != trial.number)


def test_studies_and_best_commands(
    searched: tuple[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = searched
    capsys.readouterr()
    assert main(["studies", "--storage", url, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["study"] == "e2e" and row["complete"] + row["pruned"] == 4
    assert main(["best", "--study", "e2e", "--storage", url, "--json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert front and all(p["macs"] <= BUDGET for p in front)
    assert [p["macs"] for p in front] == sorted(p["macs"] for p in front)
    assert main(["best", "--study", "nope", "--storage", url]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


def test_optuna_dashboard_server_api_reads_the_study(searched: tuple[str, float]) -> None:
    from optuna_dashboard import wsgi

    url, _ = searched
    app = wsgi(url)
    environ: dict = {"PATH_INFO": "/api/studies", "REQUEST_METHOD": "GET"}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s) or io.BytesIO().write))
    assert status[0].startswith("200")
    studies = json.loads(body)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["e2e"]
    assert Path(url.removeprefix("sqlite:///")).exists()


def test_actors_and_cached_data_are_reused_and_overhead_is_stored(
    searched: tuple[str, float],
) -> None:
    """--concurrency 2: at most two worker processes, each fetching the data once; the driver
    stores every complete trial's overhead and its breakdown."""
    url, _ = searched
    study = optuna.load_study(study_name="e2e", storage=url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    # MO-ASHA always lets the first trial at a rung continue; how many others it stops at
    # epoch 1 depends on their accuracies, so only one complete trial is certain
    assert complete
    workers = set()
    for trial in complete:
        overhead = trial.user_attrs["overhead"]
        parts = sum(overhead[k] for k in ("start", "data", "setup", "finish"))
        assert trial.user_attrs["overhead_seconds"] == pytest.approx(parts, abs=1e-6)
        assert overhead["start"] >= 0 and overhead["setup"] > 0 and overhead["threads"] == 1
        assert overhead["data_cached"] == (overhead["trial_in_worker"] > 1)
        workers.add(overhead["worker_pid"])
    assert len(workers) <= 2  # reuse_actors: one process per concurrent slot
