"""The password test: a storage password never reaches an output, a file or the study.

Every command a user runs with ``--storage postgresql+psycopg://user:SECRET@...`` is run through
the real console entry point, against an unreachable server (the error paths) and against a real
PostgreSQL server (tests/fixtures_pg.py; its trust auth ignores the password, so a URL with one
still connects): `search studies`, `best`, `report` (HTML, CSV, JSON), `export`, `run`'s
refusals, the final ``dashboard:`` line and the Ctrl-C resume hint. The full search on
PostgreSQL, with a password in its URL, is tests/search/test_postgres.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy

from search.cli import main, storage_urls
from search.cli.run import _hide_password_from_ray, dashboard_line, resume_line
from search.study.urls import mask_url, scrub, url_secrets
from tests.fixtures_pg import PostgresServer, free_port, postgres_server
from tests.reports.conftest import STUDY, write_study_at

__all__ = ["postgres_server"]  # fixture used by name

SECRET = "Sup3r-S3cret"
Run = Callable[[list[str]], tuple[int, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(argv) -> (exit code, stdout + stderr)``; asserts the secret is in neither."""

    def call(argv: list[str]) -> tuple[int, str]:
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        assert SECRET not in out + err, out + err
        return code, out + err

    return call


def no_secret_in(folder: Path) -> int:
    """Assert no file under ``folder`` holds the secret; returns how many files were read."""
    files = [path for path in folder.rglob("*") if path.is_file() and not path.is_socket()]
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    return len(files)


# ----- the masking function ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://me:pw@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
        ("postgresql+psycopg://me:p%40ss@db/x", "postgresql+psycopg://me:***@db/x"),
        ("postgresql+psycopg://me@db/x?password=pw", "postgresql+psycopg://me@db/x?password=***"),
        ("postgresql+psycopg://me:pw@db:port/x", "postgresql+psycopg://me:***@db:port/x"),
        ("sqlite:///search.db", "sqlite:///search.db"),
        ("postgresql+psycopg://me@db/x", "postgresql+psycopg://me@db/x"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_scrub_removes_passwords_as_written_and_decoded() -> None:
    url = "postgresql+psycopg://me:a%2Fb%40c@db/x"
    assert url_secrets(url) == {"a%2Fb%40c", "a/b@c"}
    text = "driver echoed a/b@c and a%2Fb%40c and postgresql://you:other@h/y"
    assert scrub(text, [url]) == "driver echoed *** and *** and postgresql://you:***@h/y"


def test_dashboard_line_and_resume_hint_mask_the_password() -> None:
    url = f"postgresql+psycopg://me:{SECRET}@db:5432/x"
    line = dashboard_line(url)
    assert line.startswith("dashboard: optuna-dashboard 'postgresql+psycopg://me:***@db:5432/x'")
    assert "PGPASSWORD" in line and SECRET not in line
    assert (
        dashboard_line("sqlite:///search.db") == "dashboard: optuna-dashboard sqlite:///search.db"
    )
    argv = ["run", "--storage", url, "--budget-flops", "3e8", f"--storage={url}"]
    hint = resume_line(url, argv)
    assert SECRET not in hint
    assert hint.count("me:***@db") == 2 and "--budget-flops 3e8" in hint
    assert storage_urls(argv) == [url, url]


def test_ray_gets_the_masked_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray._private.utils as ray_utils

    url = f"postgresql+psycopg://me:{SECRET}@db/x"
    monkeypatch.setattr(ray_utils, "get_entrypoint_name", lambda: f"search run --storage {url}")
    _hide_password_from_ray(url)  # what Ray stores as the job's entrypoint
    assert (
        ray_utils.get_entrypoint_name() == "search run --storage postgresql+psycopg://me:***@db/x"
    )


def test_a_crash_traceback_is_scrubbed(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://me:{SECRET}@127.0.0.1:{free_port()}/effnas"

    def crash(storage: str, must_exist: bool = False) -> None:
        raise RuntimeError(f"driver bug: cannot use {storage} (password {SECRET})")

    monkeypatch.setattr("search.cli.studies.check_database", crash)
    code, output = run(["studies", "--storage", url])
    assert code == 1 and "Traceback" in output and "RuntimeError: driver bug" in output


# ----- unreachable server and unparseable URLs: every command's error path -----------------------
def commands(url: str, out: Path) -> list[list[str]]:
    storage = ["--storage", url]
    return [
        ["studies", *storage],
        ["studies", *storage, "--json"],
        ["best", "--study", STUDY, *storage],
        ["report", "--study", STUDY, *storage, "--out", str(out / "r.html")],
        ["report", "--study", STUDY, *storage, "--format", "csv"],
        ["report", "--study", STUDY, *storage, "--format", "json", "--out", str(out / "r.json")],
        ["export", "--study", STUDY, "--trial", "1", *storage, "--out", str(out / "export")],
        ["run", "--preset", "quick", *storage, "--device", "cpu"],
        ["run", "--preset", "quick", f"--storage={url}", "--epochs", "0"],
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://me:{SECRET}@127.0.0.1:{{port}}/effnas",
        f"postgresql+psycopg://me@127.0.0.1:{{port}}/effnas?password={SECRET}",
        f"postgresql+psycopg://me:{SECRET}@127.0.0.1:port/effnas",
        f"foodb://me:{SECRET}@127.0.0.1/effnas",
        f"mysql+nosuchdriver://me:{SECRET}@127.0.0.1/effnas",
    ],
    ids=["unreachable", "query-password", "bad-port", "unknown-dialect", "unknown-driver"],
)
def test_error_paths_never_print_the_password(url: str, run: Run, tmp_path: Path) -> None:
    url = url.format(port=free_port())
    for argv in commands(url, tmp_path):
        code, output = run(argv)
        assert code == 2, output
        assert output.count("\n") == 1 and output.startswith("error: "), output
    no_secret_in(tmp_path)


# ----- a real PostgreSQL server ----------------------------------------------------------------
def secret_url(server: PostgresServer) -> str:
    """The server's URL with a password (trust auth accepts any)."""
    return f"postgresql+psycopg://{server.user}:{SECRET}@127.0.0.1:{server.port}/effnas"


def dump_database(url: str) -> str:
    """Every row of every table, as text (what an attacker with the database would see)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sqlalchemy.inspect(connection).get_table_names()
            rows = [
                repr(row)
                for table in tables
                for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
            ]
    finally:
        engine.dispose()
    assert "studies" in tables and rows
    return "\n".join(rows)


@pytest.mark.postgres
def test_every_command_on_postgresql_keeps_the_password_secret(
    postgres_server: PostgresServer, run: Run, tmp_path: Path
) -> None:
    url = secret_url(postgres_server)
    write_study_at(url)
    outputs = []
    for argv in commands(url, tmp_path)[:7]:  # studies, best, report x3, export: all succeed
        code, output = run(argv)
        assert code == 0, output
        outputs.append(output)
    assert "pareto-test" in outputs[0] and '"complete": 7' in outputs[1]
    assert "block=se,e=6" in outputs[2]
    html = (tmp_path / "r.html").read_text()
    assert "postgresql+psycopg://" in html and f"{postgres_server.user}:***@" in html
    assert (tmp_path / "export" / "trial.json").is_file()
    masked = f"{postgres_server.user}:***@"
    refusals = [
        (["best", "--study", "nope", "--storage", url], f"no study 'nope' in {mask_url(url)}"),
        (
            ["report", "--study", "nope", "--storage", url],
            f"'nope' in postgresql+psycopg://{masked}",
        ),
        (["export", "--trial", "99", "--storage", url, "--out", str(tmp_path / "e")], "trial 99"),
        (["run", "--storage", url, "--study", STUDY, "--budget-flops", "4e8"], "different config"),
    ]
    for argv, fragment in refusals:
        code, output = run(argv)
        assert code == 2 and fragment in output and output.count("\n") == 1, output
    no_secret_in(tmp_path)
    assert SECRET not in dump_database(url)
