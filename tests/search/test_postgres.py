"""`search run --storage postgresql+psycopg://...` against a real PostgreSQL server.

A throw-away server (tests/fixtures_pg.py) is started from the installed `postgresql` binaries;
the test is skipped, with the reason, where they are absent. The search runs as the real console
command in a subprocess (it starts its own local Ray runtime), then the study is read back with
``optuna.load_study`` and the same URL, as optuna-dashboard and `search report` would.

The URL carries a password (the server's trust auth ignores it), and the password test of
test_secrets.py holds for the real search: it appears nowhere in the command's output, in Ray's
session logs, or in any row of the study database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_pg import PostgresServer, free_port, postgres_server
from tests.search.test_secrets import SECRET, dump_database, no_secret_in, secret_url

__all__ = ["postgres_server"]  # fixture used by name

pytestmark = [pytest.mark.postgres, pytest.mark.ray, pytest.mark.timeout(600)]

STUDY = "pg-quick"
BUDGET = 30_000_000
# The quick preset, made smaller still: 200 images, one epoch, 32 px, expansion 1, and B0's
# coefficients pinned so no candidate breaks the compound constraint (block stays searched).
TINY = ["--preset", "quick", "--budget-flops", "3e7", "--subset", "200", "--expansion", "1"]
TINY += ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--device", "cpu"]


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The server's URL with a password in it."""
    return secret_url(postgres_server)


def search(*args: str, cwd: Path, ray_tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real `search` command line (``python -m search.cli``), output captured."""
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)} if ray_tmp else None
    result = subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
        env=env,
    )
    assert SECRET not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def tiny_search(
    url: str, trials: int, cwd: Path, ray_tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["run", *TINY, "--storage", url, "--study", STUDY, "--trials", str(trials)]
    return search(*argv, cwd=cwd, ray_tmp=ray_tmp)


def trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards --trials: complete, or pruned by the scheduler."""
    return [t for t in trials if t.user_attrs.get("status") in ("complete", "pruned")]


def test_search_and_resume_on_postgresql(postgres_url: str, tmp_path: Path, ray_tmp: Path) -> None:
    first = tiny_search(postgres_url, trials=1, cwd=tmp_path, ray_tmp=ray_tmp)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "dashboard: optuna-dashboard 'postgresql+psycopg://" in first.stderr
    assert ":***@127.0.0.1" in first.stderr
    assert no_secret_in(ray_tmp) > 10  # Ray's session: logs, metadata, the driver's records
    study = optuna.load_study(study_name=STUDY, storage=postgres_url)
    before = study.trials
    assert len(trained(before)) == 1
    assert [t.number for t in before] == list(range(len(before)))
    assert study.metric_names == ["accuracy", "macs"]
    assert study.user_attrs["config"]["dataset"] == "fashion-mnist"
    assert study.user_attrs["config"]["budget_macs"] == BUDGET

    second = tiny_search(postgres_url, trials=2, cwd=tmp_path)  # resume: one more trial
    assert second.returncode == 0, second.stderr[-3000:]
    after = optuna.load_study(study_name=STUDY, storage=postgres_url).trials
    assert [t.number for t in after] == list(range(len(after)))
    assert len(after) > len(before)
    for old, new in zip(before, after, strict=False):  # the first run's trials are kept as-is
        assert (old.number, old.state, old.values) == (new.number, new.state, new.values)
        assert old.user_attrs["spec"] == new.user_attrs["spec"]
    assert len(trained(after)) == 2
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in after)
    for trial in after:
        if trial.state.name == "COMPLETE":
            accuracy, macs = trial.values
            assert 0.0 <= accuracy <= 1.0
            assert 0 < macs <= BUDGET
            assert trial.user_attrs["status"] == "complete"
            assert trial.user_attrs["macs"] == macs
            assert trial.user_attrs["epochs_run"] == 1
            assert len(trial.user_attrs["accuracy_per_epoch"]) == 1
    assert any(t.state.name == "COMPLETE" for t in after)
    assert not list(tmp_path.glob("*.db")), "a PostgreSQL URL must not create an SQLite file"

    again = tiny_search(postgres_url, trials=2, cwd=tmp_path)  # nothing left to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name=STUDY, storage=postgres_url).trials) == len(after)
    assert SECRET not in dump_database(postgres_url)  # no study or trial attribute holds it


def test_unreachable_postgresql_is_one_error_line(tmp_path: Path) -> None:
    where = f"127.0.0.1:{free_port()}/effnas"
    result = tiny_search(f"postgresql+psycopg://postgres:{SECRET}@{where}", trials=1, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and f"postgres:***@{where}" in lines[0]
