"""A lock on one name in a study database, for a read-then-write that must not interleave.

`search final` queues one final per (trial, repeat) that has none: it reads what the companion
study holds, then enqueues the missing pairs. Two commands doing that at once would both find a
pair missing and both queue it, and the pair would count as two repeats. Optuna's storage has no
unique key on user attributes and no transaction around ``enqueue_trial``, so the read and the
writes run under :func:`study_lock`, which every driver of the same database takes on the same
name:

- PostgreSQL: a session advisory lock (``pg_advisory_lock`` on a 64-bit hash of the name, taken
  on a connection of its own; PostgreSQL docs, "Advisory Locks"), released when the block ends
  or the connection drops, so a killed driver never leaves it held;
- MySQL: ``GET_LOCK(name, timeout)``, the same idea;
- SQLite: an exclusive ``flock`` on a file beside the database (``<db>.effnas-lock``). Not on the
  database file itself: SQLite's own locks are POSIX ``fcntl`` locks, which a second descriptor
  on the same file in the same process would release when closed (SQLite docs, "How To Corrupt
  An SQLite Database File", 2.2). An SQLite database is used from one host, so a local file lock
  covers every driver that can open it; an in-memory database has a single process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy
from optuna.storages import RDBStorage

from common.errors import UserError

LOCK_TIMEOUT_S = 120.0  # another command holds the queue this long at most (a few writes)
LOCK_SUFFIX = ".effnas-lock"
Take = Callable[[sqlalchemy.Connection, str], bool]
Release = Callable[[sqlalchemy.Connection, str], None]


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.blake2b(f"effnas:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def study_lock(storage: RDBStorage, name: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock on ``name`` in ``storage``'s database while inside (see the module
    docstring); a ``UserError`` after ``timeout_s`` seconds of waiting."""
    engine = storage.engine
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with _file_lock(engine.url.database, name, timeout_s):
            yield
    elif dialect == "postgresql":
        with _server_lock(engine, name, timeout_s, _postgres_try, _postgres_release):
            yield
    elif dialect in ("mysql", "mariadb"):
        with _server_lock(engine, name, timeout_s, _mysql_try, _mysql_release):
            yield
    else:  # no lock primitive known for this database: queue without one
        yield


@contextlib.contextmanager
def _file_lock(database: str | None, name: str, timeout_s: float) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).expanduser()
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        _wait(lambda: _try_flock(fd), timeout_s, name)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _server_lock(
    engine: sqlalchemy.Engine, name: str, timeout_s: float, take: Take, release: Release
) -> Iterator[None]:
    with engine.connect() as connection:
        _wait(lambda: take(connection, name), timeout_s, name)
        try:
            yield
        finally:
            release(connection, name)


def _postgres_try(connection: sqlalchemy.Connection, name: str) -> bool:
    query = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
    taken = bool(connection.execute(query, {"key": lock_key(name)}).scalar())
    connection.commit()
    return taken


def _postgres_release(connection: sqlalchemy.Connection, name: str) -> None:
    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)})
    connection.commit()


def _mysql_try(connection: sqlalchemy.Connection, name: str) -> bool:
    query = sqlalchemy.text("SELECT GET_LOCK(:name, 0)")
    return connection.execute(query, {"name": f"effnas:{name}"[:64]}).scalar() == 1


def _mysql_release(connection: sqlalchemy.Connection, name: str) -> None:
    connection.execute(
        sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": f"effnas:{name}"[:64]}
    )


def _wait(take: Callable[[], bool], timeout_s: float, name: str) -> None:
    """Call ``take`` until it returns True, polling; UserError once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not take():
        if time.monotonic() > deadline:
            raise UserError(
                f"another command has held the lock on {name!r} in the study database for "
                f"{timeout_s:.0f} s; wait for it to finish, then run this command again"
            )
        time.sleep(0.05)
