"""A throw-away PostgreSQL server for tests, started from the Debian ``postgresql`` binaries.

Why a real server and not a mock: the study schema is written through SQLAlchemy + psycopg, and
the things that break in practice (dialect quirks, concurrent writers, resume numbering) only
show up against the real thing. The server listens on 127.0.0.1 at a free port with ``trust``
auth, keeps its data and unix socket in a temporary directory, and is always stopped with
``pg_ctl stop -m immediate`` (PostgreSQL's documented "abort" shutdown, fine for scratch data).

``initdb`` refuses to run as root, so when the tests run as root every server command runs as the
``postgres`` system user (``runuser -u postgres --``) and the directory is chown'ed to it.
Import the fixture into a test module with ``from tests.fixtures_pg import postgres_url``.

``start_postgres`` also serves the two-host tests (tests/fixtures_hosts.py): there the server
runs inside a host's network namespace (every server command behind that host's ``prefix``) and
listens on that host's address instead of loopback.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")


def find_pg_bin() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres: $PG_BIN, Debian's layout, then $PATH."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(str(Path(pg_ctl).parent))
    for candidate in candidates:
        if all((Path(candidate) / tool).is_file() for tool in SERVER_TOOLS):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url(db)`` is the SQLAlchemy URL the `search` CLI takes."""

    pg_bin: Path
    root: Path
    port: int
    user: str
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()  # runs a command where the server lives (another namespace)

    def url(self, database: str = "effnas") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"


def _as_server_user(argv: list[str], prefix: Sequence[str] = ()) -> list[str]:
    """Prefix with ``runuser -u postgres --`` when we are root (initdb refuses root), behind
    ``prefix`` (e.g. ``nsenter ...`` into the server's host)."""
    if os.geteuid() != 0:
        return [*prefix, *argv]
    return [*prefix, "runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str], timeout: float = 60, prefix: Sequence[str] = ()) -> None:
    result = subprocess.run(
        _as_server_user(argv, prefix), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def start_postgres(
    pg_bin: Path, host: str = "127.0.0.1", port: int | None = None, prefix: Sequence[str] = ()
) -> PostgresServer:
    """initdb + pg_ctl start in a fresh temporary directory; creates database ``effnas``.

    The server listens on ``host`` at ``port`` (a free loopback port when None); every server
    command runs behind ``prefix``, so a server can live in another network namespace."""
    root = Path(tempfile.mkdtemp(prefix="effnas-pg-"))  # short path: socket names are <108 B
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        user = "postgres"
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
    data = root / "data"
    port = port or free_port()
    prefix = tuple(prefix)
    _run(
        [
            str(pg_bin / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ],
        timeout=120,
        prefix=prefix,
    )
    if host != "127.0.0.1":  # initdb trusts loopback only; also the hosts on the server's subnet
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all samenet trust\n")
    options = f"-c listen_addresses={host} -p {port} -k {root} -c fsync=off"
    _run(
        [
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=90,
        prefix=prefix,
    )
    server = PostgresServer(
        pg_bin=pg_bin, root=root, port=port, user=user, host=host, prefix=prefix
    )
    try:
        createdb = [str(pg_bin / "createdb"), "-h", host, "-p", str(port), "-U", user, "effnas"]
        _run(createdb, prefix=prefix)
    except Exception:
        stop_postgres(server)
        raise
    return server


def stop_postgres(server: PostgresServer) -> None:
    """``pg_ctl stop -m immediate``, then remove the directory; never raises."""
    data = server.root / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user(
                [str(server.pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                server.prefix,
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
    # The postmaster may take a moment to release the socket after an immediate stop.
    for _ in range(50):
        if not (data / "postmaster.pid").exists():
            break
        time.sleep(0.1)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server per test; skipped with the reason when the binaries are not installed."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
            "apt-get install postgresql, or set PG_BIN to their directory"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run initdb as")
    server = start_postgres(pg_bin)
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of database ``effnas`` on a fresh server (psycopg 3 driver)."""
    return postgres_server.url()
