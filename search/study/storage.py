"""Open the Optuna storage safely: check first (read-only), then create or load the study.

Why the care: the study database is shared with `optuna-dashboard` and with later
resumes, so
- a bad URL, a file that is not a study database, or a study name that already holds a different
  search must be refused *before* Optuna creates its tables; those checks read through a
  read-only connection (SQLite ``mode=ro``), so the file stays byte-identical;
- SQLite runs in WAL journaling with a 30 s busy timeout (SQLite's documented recipe for one
  writer plus concurrent readers), so the dashboard can read a running search without
  "database is locked"; only the driver process writes.

A storage URL may carry a password (``postgresql+psycopg://user:PASSWORD@host/db``), and it must
never reach an output, a log, a report or a stored attribute. Every URL shown to the
user goes through :func:`mask_url` (SQLAlchemy's ``render_as_string(hide_password=True)``, the
same ``***`` the HTML report shows), and every error message goes through :func:`scrub` before
it is printed (``search.cli``), which removes the passwords of every URL this process has parsed.
Better still, keep the password out of the URL: psycopg reads ``PGPASSWORD`` and ``~/.pgpass``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from common.errors import UserError

DIRECTIONS = (optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE)
METRIC_NAMES = ["accuracy", "macs"]
SQLITE_TIMEOUT_S = 30
_OPTUNA_TABLES = {"studies", "trials", "version_info"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
MASK = "***"
# a URL's password in free text: scheme://user:PASSWORD@ and ?password=... / &password=...
_AUTHORITY_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^\s:/@]*:)[^\s@]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&\s'\"]*", re.IGNORECASE)
_SECRETS: set[str] = set()  # passwords of every storage URL this process has seen (for scrub)


@dataclass(frozen=True)
class ExistingStudy:
    """What a read-only look at the database says about one study name."""

    name: str
    directions: tuple[str, ...]
    config: dict[str, Any] | None


def _parsed_or_none(url: str) -> URL | None:
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None


def url_secrets(url: str) -> set[str]:
    """The password(s) in ``url``, as written and as decoded (empty when it has none)."""
    found = {m.group(0)[len(m["head"]) : -1] for m in _AUTHORITY_PASSWORD.finditer(url)}
    found |= {m.group(0)[len(m["head"]) :] for m in _QUERY_PASSWORD.finditer(url)}
    parsed = _parsed_or_none(url)
    if parsed is not None:
        found.add(parsed.password or "")
        query = parsed.query.get("password")
        found.update([query] if isinstance(query, str) else list(query or ()))
    return {secret for secret in found if secret and secret != MASK}


def remember_secrets(urls: Iterable[str]) -> None:
    """Register the passwords of ``urls`` so that :func:`scrub` removes them from any text."""
    for url in urls:
        _SECRETS.update(url_secrets(url))


def mask_url(url: str) -> str:
    """The URL as safe to print: its password (and any ``password=`` query value) is ``***``.

    The one masking function of the project: the CLI's messages, the final ``dashboard:`` line,
    the resume hint and the HTML report all use it. A URL without a password is returned as
    given; one SQLAlchemy cannot parse is masked by pattern.
    """
    remember_secrets([url])
    parsed = _parsed_or_none(url)
    if parsed is None:
        return _mask_patterns(url)
    if parsed.password is None and "password" not in parsed.query:
        return url
    return _mask_patterns(parsed.render_as_string(hide_password=True))


def _mask_patterns(text: str) -> str:
    text = _AUTHORITY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def scrub(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with every known storage password replaced by ``***`` (the last line of defence).

    Known: the passwords of ``urls`` and of every URL parsed or masked in this process so far;
    any other ``scheme://user:PASSWORD@`` in the text is masked by pattern too.
    """
    remember_secrets(urls)
    text = _mask_patterns(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, or a UserError naming the bad text (password masked) and the form."""
    shown = mask_url(url)  # also registers the password for scrub()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise UserError(
            f"bad --storage URL {shown!r}: {exc}; use e.g. sqlite:///search.db or "
            "postgresql+psycopg://user@host/db"
        ) from exc
    try:
        parsed.get_dialect()
    except NoSuchModuleError as exc:
        raise UserError(
            f"bad --storage URL {shown!r}: unknown database dialect {parsed.drivername!r}; "
            "use sqlite:///FILE or postgresql+psycopg://..."
        ) from exc
    except ImportError as exc:
        raise UserError(
            f"--storage URL {shown!r} needs the database driver {exc.name!r}, which is not "
            "installed; install it or use sqlite:///FILE"
        ) from exc
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The database file of an SQLite URL (None for other dialects and in-memory SQLite)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def check_database(url: str, must_exist: bool = False) -> URL:
    """Refuse what is not (or cannot become) a study database, without writing anything."""
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        _check_sqlite_file(path, url, must_exist)
    else:
        _check_server(parsed, url)
    return parsed


def _check_sqlite_file(path: Path, url: str, must_exist: bool) -> None:
    if not path.exists():
        if must_exist:
            raise UserError(f"no study database at {str(path)!r}; check --storage {mask_url(url)}")
        if not path.parent.is_dir():
            raise UserError(
                f"cannot create {str(path)!r}: directory {str(path.parent)!r} does not exist"
            )
        return
    if path.is_dir():
        raise UserError(f"--storage {mask_url(url)} points at a directory, not a database file")
    with path.open("rb") as handle:
        header = handle.read(len(_SQLITE_MAGIC))
    if not header:
        return  # an empty file is a fresh SQLite database
    if header != _SQLITE_MAGIC:
        raise UserError(
            f"{str(path)!r} is not a study database (not an SQLite file); "
            "pass a new file name to --storage"
        )
    tables = set(_sqlite_query(path, "SELECT name FROM sqlite_master WHERE type = 'table'"))
    if tables and not {t[0] for t in tables} >= _OPTUNA_TABLES:
        names = sorted(t[0] for t in tables)[:5]
        raise UserError(
            f"{str(path)!r} is not a study database (it holds other tables: {names}); "
            "pass a new file name to --storage"
        )


def _check_server(parsed: URL, url: str) -> None:
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=_connect_args(parsed))
        with engine.connect():
            pass
        engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot reach --storage {mask_url(url)}: {scrub(reason)}") from exc


def _sqlite_query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one query on a read-only connection (never creates or changes the file)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(
            f"{str(path)!r} is not a readable study database ({exc}); "
            "pass a new file name to --storage"
        ) from exc


def find_study(url: str, name: str) -> ExistingStudy | None:
    """Look a study up through a read-only query of Optuna's tables (None when absent)."""
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    study_sql = "SELECT study_id FROM studies WHERE study_name = ?"
    if path is not None:
        if not path.exists() or path.stat().st_size == 0:
            return None
        tables = {t[0] for t in _sqlite_query(path, "SELECT name FROM sqlite_master")}
        if "studies" not in tables:
            return None
        rows = _sqlite_query(path, study_sql, (name,))
        if not rows:
            return None
        study_id = rows[0][0]
        directions = _sqlite_query(
            path,
            "SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective",
            (study_id,),
        )
        config = _sqlite_query(
            path,
            "SELECT value_json FROM study_user_attributes WHERE study_id = ? AND key = 'config'",
            (study_id,),
        )
        return ExistingStudy(
            name,
            tuple(_direction_name(d[0]) for d in directions),
            json.loads(config[0][0]) if config else None,
        )
    # servers: Optuna's own read path is read-only for an existing study
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return ExistingStudy(
        name,
        tuple(d.name for d in study.directions),
        study.user_attrs.get("config"),
    )


def _direction_name(value: Any) -> str:
    text = str(value)
    if text.isdigit():  # very old schemas stored the enum value
        return optuna.study.StudyDirection(int(text)).name
    return text.rsplit(".", 1)[-1]


def check_compatible(existing: ExistingStudy, config: dict[str, Any], storage_url: str) -> None:
    """Refuse to merge a different objective or search configuration into an existing study."""
    wanted = tuple(d.name for d in DIRECTIONS)
    if existing.directions != wanted:
        raise UserError(
            f"study {existing.name!r} in {mask_url(storage_url)} has objective directions "
            f"{list(existing.directions)}, not {list(wanted)} (maximise accuracy, minimise "
            "MACs); pass a new --study name"
        )
    stored = existing.config or {}
    fresh = json.loads(json.dumps(config))
    differing = sorted(k for k in set(stored) | set(fresh) if stored.get(k) != fresh.get(k))
    if differing:
        shown = ", ".join(f"{k}: {stored.get(k)!r} -> {fresh.get(k)!r}" for k in differing[:4])
        raise UserError(
            f"study {existing.name!r} was run with a different configuration ({shown}); "
            f"resume it with its original settings or pass a new --study name"
        )


def _connect_args(url: URL) -> dict[str, Any]:
    return {"timeout": SQLITE_TIMEOUT_S} if url.get_backend_name() == "sqlite" else {}


class _WalConnection(sqlite3.Connection):
    """Every SQLite connection the storage opens switches to WAL journaling (a connect hook)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage; SQLite gets WAL journaling and a busy timeout (see module doc)."""
    parsed = parse_url(url)
    connect_args = _connect_args(parsed)
    if parsed.get_backend_name() == "sqlite":
        connect_args["factory"] = _WalConnection
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect_args})
    except (SQLAlchemyError, OSError) as exc:
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError(f"cannot open --storage {mask_url(url)}: {reason}") from exc
