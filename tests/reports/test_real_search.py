"""Reports from a study written by a real (tiny) `search run`: Ray, Optuna and a CPU trainer.

The `quick` preset's cheap slice (32 px), pinned to expansion 1 under a 3e7-MAC budget, keeps it
to well under a minute on a 2-core CPU, so it stays in the default test run.
Skipped only while the `run` command is not registered in the CLI.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from reports.pareto import dominates
from reports.records import study_data
from search.cli import cli, main
from search.study.database import load_study, open_existing

pytestmark = [pytest.mark.ray]

STUDY = "tiny-real"
TRIALS = 4


@pytest.fixture(scope="module")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    if "run" not in cli.commands:
        pytest.skip("`search run` is not available yet")
    url = f"sqlite:///{tmp_path_factory.mktemp('real') / 'search.db'}"
    command = [
        sys.executable, "-m", "search.cli", "run", "--preset", "quick",
        "--budget-flops", "3e7", "--expansion", "1",
        "--dataset", "fashion-mnist", "--subset", "300",
        "--epochs", "1", "--trials", str(TRIALS), "--study", STUDY, "--storage", url,
        "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=590)
    assert done.returncode == 0, done.stderr[-3000:]
    return url


def test_pareto_set_matches_optuna(real_study: str) -> None:
    study = optuna.load_study(study_name=STUDY, storage=real_study)
    data = study_data(load_study(open_existing(real_study), STUDY, real_study), real_study)
    counts = data.counts()
    # `--trials` counts trained trials; over-budget candidates are extra "infeasible" records
    assert counts["complete"] + counts["pruned"] + counts["failed"] == TRIALS, counts
    assert sum(counts.values()) == len(data.trials) and data.running == 0
    completed = [t for t in data.trials if t.measured]
    assert completed, data.counts()
    for trial in completed:
        assert 0.0 <= (trial.accuracy or 0.0) <= 1.0 and 0 < (trial.macs or 0) <= 3e7
        assert trial.spec is not None and trial.spec.classes == 10
    front = {t.number for t in completed if not any(dominates(other, t) for other in completed)}
    assert front == {t.number for t in study.best_trials}
    return_code = main(["report", "--study", STUDY, "--storage", real_study, "--format", "json"])
    assert return_code == 0


def test_html_and_csv(real_study: str, tmp_path: Path, capsys) -> None:
    study = optuna.load_study(study_name=STUDY, storage=real_study)
    out = tmp_path / "report.html"
    assert main(["report", "--study", STUDY, "--storage", real_study, "--out", str(out)]) == 0
    html = out.read_text()
    for div_id in ("pareto", "curves", "coefficients"):
        assert f'<div id="{div_id}"' in html
    assert "Pareto front" in html and "cdn.plot.ly" not in html
    assert "search still running" not in html
    capsys.readouterr()
    assert main(["report", "--study", STUDY, "--storage", real_study, "--format", "csv"]) == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(int(r["trial"]) for r in records) == list(range(len(study.get_trials())))
    on_front = {int(r["trial"]) for r in records if r["pareto"] == "True"}
    assert on_front == {t.number for t in study.best_trials}
    by_number = {t.number: t for t in study.get_trials()}
    for row in records:
        trial = by_number[int(row["trial"])]
        assert row["state"] == trial.state.name
        assert row["spec"] == trial.user_attrs["spec"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert float(row["accuracy"]) == trial.values[0]
            assert int(row["macs"]) == int(trial.values[1])


def test_export_a_completed_trial(real_study: str, tmp_path: Path) -> None:
    study = optuna.load_study(study_name=STUDY, storage=real_study)
    number = study.best_trials[0].number
    out = tmp_path / "export"
    args = ["export", "--study", STUDY, "--trial", str(number), "--storage", real_study]
    assert main([*args, "--out", str(out)]) == 0
    assert json.loads((out / "spec.json").read_text())["classes"] == 10
    assert json.loads((out / "trial.json").read_text())["number"] == number
