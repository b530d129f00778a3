"""Opening storages and studies never creates anything; mistakes are one-line UserErrors."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from common.errors import UserError
from search.study.database import load_study, open_existing
from search.study.urls import mask_url


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(UserError, match="does not exist"):
        open_existing(f"sqlite:///{path}")
    assert not path.exists()


def test_non_optuna_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("create table t (x int)").connection.commit()
    with pytest.raises(UserError, match="not a study database"):  # as `search studies` says
        open_existing(f"sqlite:///{path}")
    tables = sqlite3.connect(path).execute("select name from sqlite_master").fetchall()
    assert tables == [("t",)]


def test_not_a_database_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("hello, not sqlite " * 100)
    with pytest.raises(UserError, match="not a study database"):
        open_existing(f"sqlite:///{path}")


@pytest.mark.parametrize("url", ["search.db", "nosuchdriver://x/y", "://"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(UserError):
        open_existing(url)


def test_unknown_study_lists_existing(make_study: Callable[..., str]) -> None:
    url = make_study()
    storage = open_existing(url)
    with pytest.raises(UserError, match=r"no study named 'nope'.*existing studies: pareto-test"):
        load_study(storage, "nope", url)
    assert load_study(storage, None, url).study_name == "pareto-test"


def test_password_is_masked() -> None:
    assert mask_url("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
