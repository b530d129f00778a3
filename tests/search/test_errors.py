"""`search run` user errors: one stderr line, exit 2, the database untouched (or not created)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search.cli import main
from search.study.database import open_storage
from search.study.schema import DIRECTIONS


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run_error(
    tiny_args: list[str], capsys: pytest.CaptureFixture[str]
) -> Callable[[list[str]], str]:
    """Run `search run` (tiny settings + ``args``); assert one error line and exit 2."""

    def run(args: list[str]) -> str:
        capsys.readouterr()
        assert main(["run", *tiny_args, "--trials", "2", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")
        return err

    return run


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", "bad --storage URL"),
        ("foodb://host/x", "unknown database dialect 'foodb'"),
        ("postgresql+psycopg://nobody@127.0.0.1:9/none", "cannot reach --storage"),
    ],
)
def test_bad_storage_url(url: str, message: str, run_error: Callable[[list[str]], str]) -> None:
    assert message in run_error(["--storage", url])


def test_bad_values_never_create_the_database(
    tmp_path: Path, run_error: Callable[[list[str]], str]
) -> None:
    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    assert "trials=0" in run_error(["--storage", url, "--trials", "0"])
    assert "concurrency=0" in run_error(["--storage", url, "--concurrency", "0"])
    assert "unknown dataset 'mnist'" in run_error(["--storage", url, "--dataset", "mnist"])
    err = run_error(["--storage", url, "--budget-flops", "1e6"])
    assert "below the smallest network" in err
    assert "expansion value(s) [5]" in run_error(["--storage", url, "--expansion", "5"])
    err = run_error(["--storage", url, "--ray-address", "127.0.0.1:1"])
    assert "cannot join the Ray cluster at 127.0.0.1:1" in err
    missing = f"sqlite:///{tmp_path / 'no' / 'dir.db'}"
    assert "does not exist" in run_error(["--storage", missing])
    assert not db.exists()


def test_a_text_file_is_not_a_study_database(
    tmp_path: Path, run_error: Callable[[list[str]], str]
) -> None:
    text = tmp_path / "notes.db"
    text.write_text("just some notes\n")
    before = digest(text)
    assert "not a study database" in run_error(["--storage", f"sqlite:///{text}"])
    assert digest(text) == before


def test_an_unrelated_sqlite_database_is_refused(
    tmp_path: Path, run_error: Callable[[list[str]], str]
) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    before = digest(other)
    err = run_error(["--storage", f"sqlite:///{other}"])
    assert "other tables: ['customers']" in err
    assert digest(other) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def make_study(path: Path, directions: list, config: dict | None) -> str:
    url = f"sqlite:///{path}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="taken", storage=storage, directions=directions)
    if config is not None:
        study.set_user_attr("config", config)
    storage.engine.dispose()
    return url


def test_a_study_with_another_objective_is_refused(
    tmp_path: Path, run_error: Callable[[list[str]], str]
) -> None:
    db = tmp_path / "s.db"
    url = make_study(db, ["minimize"], None)
    before = digest(db)
    err = run_error(["--storage", url, "--study", "taken"])
    assert "objective directions ['MINIMIZE']" in err and "new --study" in err
    assert digest(db) == before


def test_a_study_with_another_config_is_refused_naming_the_keys(
    tmp_path: Path, run_error: Callable[[list[str]], str]
) -> None:
    from search.cli.run import build_config

    db = tmp_path / "s.db"
    options = {"budget_flops": 3e7, "epochs": 3, "resolution": 24}
    config = build_config(options).identity()
    url = make_study(db, list(DIRECTIONS), config)
    before = digest(db)
    err = run_error(["--storage", url, "--study", "taken"])
    assert "budget_macs: 30000000 -> 25000000" in err and "epochs: 3 -> 1" in err
    assert "new --study" in err
    assert digest(db) == before
