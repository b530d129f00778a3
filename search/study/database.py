"""The study database: check it, open it (to write, or read-only) and find a study in it.

The database is shared with `optuna-dashboard`, with later resumes and with other drivers, so
- a bad URL, a file that is not a study database, or a study name that already holds a different
  search must be refused *before* Optuna creates its tables; those checks read through a
  read-only connection (SQLite ``mode=ro``), so the file stays byte-identical;
- SQLite runs in WAL journaling with a 30 s busy timeout (SQLite's documented recipe for one
  writer plus concurrent readers), so the dashboard can read a running search without
  "database is locked"; only the driver process writes. Commits do not wait for an fsync
  (``synchronous=NORMAL``, see ``_WalConnection``).

Readers (`search report`, `search export`) go through :func:`open_existing` and
:func:`load_study`: a mistyped ``--storage`` or ``--study`` must say so instead of silently
creating an empty database or study (which is what ``optuna.storages.RDBStorage`` and
``optuna.create_study`` would do), so the storage is opened with ``skip_table_creation=True``
and studies are only ever loaded. Every URL in a message is masked (``search.study.urls``).
"""

from __future__ import annotations

import enum
import errno
import json
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from common.errors import UserError
from search.study.schema import CONFIG, DEFAULT_OBJECTIVES, directions_for, is_final_study
from search.study.urls import mask_url, parse_url, scrub, sqlite_path

DEFAULT_STORAGE = "sqlite:///search.db"  # the storage of every command that takes --storage
SQLITE_TIMEOUT_S = 30
# columns of Optuna's tables that tell them from another program's tables of the same names
OPTUNA_COLUMNS = {
    "studies": {"study_id", "study_name"},
    "trials": {"trial_id", "number", "study_id", "state"},
    "version_info": {"version_info_id", "schema_version", "library_version"},
}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OTHER_FILE = "pass the --storage of a study database (or, to `search run`, a new file name)"


@dataclass(frozen=True)
class ExistingStudy:
    """What a read-only look at the database says about one study name."""

    name: str
    directions: tuple[str, ...]
    config: dict[str, Any] | None


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
            raise UserError(
                f"no study database at {str(path)!r}: the file does not exist; "
                f"check --storage {mask_url(url)}"
            )
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
            f"{str(path)!r} is not a study database (not an SQLite file); {_OTHER_FILE}"
        )
    columns = _sqlite_columns(path)
    if columns and not set(columns) >= set(OPTUNA_COLUMNS):
        raise UserError(
            f"{str(path)!r} is not a study database (it holds other tables: "
            f"{sorted(columns)[:5]}); {_OTHER_FILE}"
        )
    _check_schema(columns, repr(str(path)))


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    """Table name -> column names of an SQLite file, read through a read-only connection."""
    rows = _sqlite_query(
        path,
        "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
        "WHERE m.type = 'table'",
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    return columns


def _check_schema(columns: dict[str, set[str]], shown: str) -> None:
    """Refuse a database whose tables named like Optuna's lack Optuna's columns: it belongs to
    something else, and Optuna would fail on it (or try to write its own rows into it)."""
    for table, needed in OPTUNA_COLUMNS.items():
        missing = needed - columns.get(table, needed)
        if missing:
            raise UserError(
                f"{shown} is not a study database (its {table!r} table is not Optuna's: no "
                f"column(s) {sorted(missing)}); {_OTHER_FILE}"
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
            f"{str(path)!r} is not a readable study database ({exc}); {_OTHER_FILE}"
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
            "SELECT value_json FROM study_user_attributes WHERE study_id = ? AND key = ?",
            (study_id, CONFIG),
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
        study.user_attrs.get(CONFIG),
    )


def _direction_name(value: Any) -> str:
    text = str(value)
    if text.isdigit():  # very old schemas stored the enum value
        return optuna.study.StudyDirection(int(text)).name
    return text.rsplit(".", 1)[-1]


def check_compatible(
    existing: ExistingStudy,
    config: dict[str, Any],
    storage_url: str,
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES,
) -> None:
    """Refuse to merge different objectives or a different search configuration into an
    existing study (the objectives themselves are in the configuration too, when not the
    default, so ``accuracy,macs`` and ``accuracy,latency`` differ although their directions
    agree)."""
    wanted = tuple(d.name for d in directions_for(objectives))
    if existing.directions != wanted:
        raise UserError(
            f"study {existing.name!r} in {mask_url(storage_url)} has objective directions "
            f"{list(existing.directions)}, not {list(wanted)} (--objectives "
            f"{','.join(objectives)}); resume it with its own --objectives or pass a new "
            "--study name"
        )
    shown = config_changes(existing.config or {}, config)
    if shown:
        raise UserError(
            f"study {existing.name!r} was run with a different configuration ({shown}); "
            f"resume it with its original settings or pass a new --study name"
        )


# identity keys added after studies were first written: a stored config without one was written
# before it existed, so it says nothing about it; such a study resumes with the value of now and
# remembers it from then on (``adopt_late_keys``)
LATE_KEYS = ("device", "data_dir")


def config_changes(stored: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The first four keys in which a study's stored "config" attr and ``config`` differ, as
    ``key: stored -> new``; None when they agree (``config`` compared as JSON, as stored). A key
    of :data:`LATE_KEYS` that the stored config lacks is not a difference."""
    fresh = json.loads(json.dumps(config))
    differing = sorted(
        k
        for k in set(stored) | set(fresh)
        if stored.get(k) != fresh.get(k) and (k in stored or k not in LATE_KEYS)
    )
    if not differing:
        return None
    return ", ".join(f"{k}: {stored.get(k)!r} -> {fresh.get(k)!r}" for k in differing[:4])


def adopt_late_keys(study: optuna.Study, config: dict[str, Any]) -> None:
    """Write the :data:`LATE_KEYS` a resumed study's "config" attr lacks (an older study's), so
    that from now on a resume that changes them is refused like any other change."""
    stored = study.user_attrs.get(CONFIG)
    if not isinstance(stored, dict):
        return
    missing = {k: config[k] for k in LATE_KEYS if k in config and k not in stored}
    if missing:
        study.set_user_attr(CONFIG, {**stored, **json.loads(json.dumps(missing))})


def _connect_args(url: URL) -> dict[str, Any]:
    return {"timeout": SQLITE_TIMEOUT_S} if url.get_backend_name() == "sqlite" else {}


class _WalConnection(sqlite3.Connection):
    """Every SQLite connection the storage opens switches to WAL journaling with
    ``synchronous=NORMAL`` (a connect hook): SQLite's recommended pairing for WAL. A commit then
    waits for no fsync (about 3 ms each on the benchmark machine, a trial commits 3-6 times),
    the database cannot be corrupted, and a process killed at any moment loses nothing it
    committed; only a power loss or an OS crash may roll back the last commits (their trials are
    then recovered as interrupted, or run again)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


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


def open_existing(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url``, opened without creating anything (see module doc);
    ``UserError`` if it is not an existing Optuna database."""
    parsed = parse_url(url)  # the same URL checks (and messages) as `search run`
    shown = mask_url(url)  # the password never reaches a message or the report
    if parsed.get_backend_name() == "sqlite":
        if sqlite_path(parsed) is None:
            raise UserError(
                f"no study database at {shown}: an in-memory SQLite database holds no study; "
                "pass --storage sqlite:///PATH.db of a database written by `search run`"
            )
        check_database(url, must_exist=True)  # the file checks of `search studies` and `best`
    try:
        engine = sqlalchemy.create_engine(url)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise UserError(
            f"cannot open storage {shown}: {scrub(str(exc))}; use sqlite:///PATH.db or install the "
            "database driver (e.g. pip install 'effnas[postgres]')"
        ) from exc
    try:
        inspector = sqlalchemy.inspect(engine)
        columns = {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in OPTUNA_COLUMNS
            if inspector.has_table(table)
        }
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) is not None else exc).splitlines()[0]
        raise UserError(f"cannot read storage {shown}: {scrub(reason)}") from exc
    finally:
        engine.dispose()
    missing = sorted(set(OPTUNA_COLUMNS) - set(columns))
    if missing:
        raise UserError(
            f"{shown} is not an Optuna study database (no table(s) {missing}); "
            "pass the --storage URL that `search run` wrote to"
        )
    _check_schema(columns, shown)  # before Optuna, which would write its version row into it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except (SQLAlchemyError, RuntimeError) as exc:
        reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError(f"cannot open storage {shown}: {reason}") from exc


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies in ``storage``, sorted."""
    return sorted(optuna.get_all_study_names(storage))


def load_study(storage: optuna.storages.BaseStorage, name: str | None, url: str) -> optuna.Study:
    """Load study ``name``; with ``name=None`` the storage's only study.

    Companion studies of final trainings (``S:final``, ``schema.is_final_study``) belong to
    their search S, so with ``name=None`` they do not count: a storage holding S and S:final
    still names S. ``UserError`` (listing the studies that do exist) when the name is unknown or
    ambiguous.
    """
    names = study_names(storage)
    if name is None:
        searches = [n for n in names if not is_final_study(n)]
        if len(searches) == 1:
            name = searches[0]
        elif len(names) == 1:
            name = names[0]
        else:
            raise UserError(
                f"pass --study NAME: {mask_url(url)} holds {len(names)} studies "
                f"({', '.join(names) or 'none'})"
            )
    if name not in names:
        raise UserError(
            f"no study named {name!r} in {mask_url(url)}; existing studies: "
            f"{', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=reading(storage))


def reading(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage a reader loads a study through: an RDB storage behind
    ``search.study.snapshot.SnapshotStorage``, whose first read takes the whole study in six
    plain queries (``search.study.reader``; Optuna's own read of a 10,000-trial study takes tens
    of seconds), any other storage as it is."""
    from search.study.snapshot import SnapshotStorage

    return SnapshotStorage(storage) if isinstance(storage, optuna.storages.RDBStorage) else storage


class StorageFault(enum.StrEnum):
    """Why a study database could not be written, as far as the error says; each asks the user
    for something else (``search.driver.run.storage_error_message``)."""

    FULL = "full"
    """No space left: SQLite's "database or disk is full", ENOSPC / EDQUOT, PostgreSQL 53100."""
    LOST = "lost"
    """The connection to the database server was lost or refused (the server stopped)."""
    OTHER = "other"
    """Anything else: a broken file, permissions, a constraint."""


_SQLITE_FULL = 13  # SQLITE_FULL, sqlite3.Error.sqlite_errorcode
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_SQLSTATES = {"53100"}  # PostgreSQL disk_full
# PostgreSQL's class 08 (connection exception), admin_shutdown (a stopped server),
# crash_shutdown and cannot_connect_now (a server shutting down or starting up)
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def storage_fault(exc: BaseException) -> StorageFault:
    """Classify a storage error by the exceptions in its chain (Optuna's
    ``StorageInternalError`` wraps SQLAlchemy's error, which wraps the driver's): a full disk
    wins over a lost connection, which wins over anything else."""
    chain = list(error_chain(exc))
    if any(_is_full(error) for error in chain):
        return StorageFault.FULL
    if any(_is_lost(error) for error in chain):
        return StorageFault.LOST
    return StorageFault.OTHER


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its cause (or context), and so on to the root; a cycle ends the walk."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _is_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return True
    if isinstance(error, sqlite3.Error):  # the code, or SQLite's own text for it
        code = getattr(error, "sqlite_errorcode", None)
        return code == _SQLITE_FULL or "database or disk is full" in str(error)
    return getattr(error, "sqlstate", None) in _FULL_SQLSTATES


def _is_lost(error: BaseException) -> bool:
    if isinstance(error, ConnectionError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True  # SQLAlchemy's dialect recognised a disconnect
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_LOST_SQLSTATES):
        return True
    # psycopg's client-side connection failures ("Connection refused", "server closed the
    # connection unexpectedly") carry no SQLSTATE; psycopg is loaded only if a URL needed it
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.OperationalError) and not sqlstate
