"""Faults (kind and one-line reason, search/driver/watch.py) from Ray's errors, and --trial-timeout.

The texts are what Ray 2.60 wrote for real faults on this project's searches (memory monitor,
SIGKILL, ray.kill); the end-to-end behaviour is tested through real Ray in test_faults_ray.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import Fault, FaultKind, TrialFailed
from search.cli import main
from search.driver.run import storage_error_message
from search.driver.watch import lost_node, ray_error_fault
from search.study.database import StorageFault, storage_fault
from tests.fixtures_pg import PostgresServer, postgres_server  # noqa: F401 (a fixture)

MEMORY_MONITOR = """1 worker(s) were killed due to the node running low on memory. Memory on the
node (IP: 127.0.0.1, ID: 0827) was 2.92GB used / 23.54GB limit (0.123976)
OOM kill reason: Memory usage 3133689856B exceeded threshold of 1263825152B (5.0% of 2527650B
limit)
Object store memory usage: [- objects spillable: 0
Ray killed 1 worker(s) based on the killing policy"""

ACTOR_DIED = """The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
\tactor_id: 913e5c365c2feca38dcfc38901000000
\tpid: 13602
\tnamespace: 19099365
\tip: 127.0.0.1
The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit
detail: Worker unexpectedly exits with a connection error code 2. End of file."""


def ray_error_reason(error: BaseException | None, text: str, logs_dir: Path | None) -> str:
    return ray_error_fault(error, text, logs_dir).reason


def test_reasons_from_rays_error_texts(tmp_path: Path) -> None:
    oom = ray_error_reason(None, MEMORY_MONITOR, None)
    assert oom == (
        "out of memory: Ray's memory monitor killed the trial's worker (node memory 2.92GB used "
        "of 23.54GB, kill threshold 5.0%); lower --batch-size or --concurrency"
    )
    killed = ray_error_reason(None, ACTOR_DIED, tmp_path)
    assert killed.startswith("worker died: process 13602 was killed without a trace (SIGKILL")
    assert killed.endswith("Ray: SYSTEM_ERROR)")
    # the worker's faulthandler names a segfault in its log
    (tmp_path / "worker-abc-01000000-13602.err").write_text(
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x01 (most recent call first):\n"
    )
    crashed = ray_error_reason(None, ACTOR_DIED, tmp_path)
    assert crashed == "worker died: process 13602 crashed with SIGSEGV (Ray: SYSTEM_ERROR)"
    stopped = ACTOR_DIED.split("The actor is dead")[0] + "The actor is dead because it was killed"
    assert ray_error_reason(None, stopped + " by `ray.kill`.", None) == (
        "worker died: process 13602 was killed with ray.kill"
    )
    # the trainable's own line, when only the text of the traceback survived
    text = (
        "ray::ImplicitFunc.train() (pid=1)\n...\nsearch.worker.faults.TrialFailed: diverged: nan\n"
    )
    assert ray_error_reason(None, text, None) == "diverged: nan"
    assert ray_error_reason(TrialFailed("x"), "", None) == "TrialFailed: x"


def test_kinds_of_rays_own_faults(tmp_path: Path) -> None:
    assert ray_error_fault(None, MEMORY_MONITOR, None).kind == FaultKind.MEMORY
    assert ray_error_fault(None, ACTOR_DIED, tmp_path).kind == FaultKind.WORKER_DIED
    killed = ACTOR_DIED.split("The actor is dead")[0] + "killed by `ray.kill`."
    assert ray_error_fault(None, killed, None).kind == FaultKind.WORKER_DIED
    # an actor death that Ray's memory monitor caused is out of memory, not a vanished worker
    monitor_kill = ACTOR_DIED + "\nThe actor's worker was killed: the node is low on memory."
    assert ray_error_fault(None, monitor_kill, None).kind == FaultKind.MEMORY
    other = ray_error_fault(None, "ray.exceptions.RaySystemError: GCS down\nmore", None)
    assert other == Fault(FaultKind.ERROR, "Ray error: ray.exceptions.RaySystemError: GCS down")


# what a driver got when the Ray node running its trial was killed (test_two_hosts.py)
NODE_LOST = (
    "The actor ad4c8d1e7074880cfaa3d89e03000000 is unavailable: The actor is temporarily "
    "unavailable: RpcError: RPC error: recvmsg:Connection reset by peer rpc_code: 14. The task may "
    "or may not have been executed on the actor."
)


def test_a_dead_actor_on_a_lost_node_is_node_died() -> None:
    asked: list[str] = []

    def lost(actor_id: str) -> str | None:
        asked.append(actor_id)
        return "10.231.0.2 (id 90bc7475)"

    fault = ray_error_fault(None, NODE_LOST, None, lost)
    assert fault == Fault(
        FaultKind.NODE_DIED,
        "node died: Ray node 10.231.0.2 (id 90bc7475) was lost while the trial ran on it; "
        "the other nodes go on",
    )
    assert asked == ["ad4c8d1e7074880cfaa3d89e03000000"]
    assert ray_error_fault(None, ACTOR_DIED, None, lost).kind == FaultKind.NODE_DIED
    assert asked[-1] == "913e5c365c2feca38dcfc38901000000"  # from "actor_id: ..."
    # the node is alive (or cannot be told): the worker alone died
    alive = ray_error_fault(None, NODE_LOST, None, lambda actor_id: None)
    assert alive.kind == FaultKind.WORKER_DIED and alive.reason.startswith("worker died: ")
    assert ray_error_fault(None, ACTOR_DIED, None).kind == FaultKind.WORKER_DIED


def test_a_node_that_refuses_connections_is_lost() -> None:
    import socket

    from search.driver.watch import _answers

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _answers("127.0.0.1", port, 2.0)
    assert not _answers("127.0.0.1", port, 2.0)  # closed: refused at once
    assert lost_node("ad4c8d1e7074880cfaa3d89e03000000") is None  # no Ray session: unknown


def raised_in_a_ray_task(cause: BaseException) -> BaseException:
    """``cause`` as Ray hands it to the driver: a pickled ``RayTaskError`` dual instance."""
    import ray.cloudpickle as cloudpickle
    from ray.exceptions import RayTaskError

    try:
        raise cause
    except BaseException as exc:
        import traceback

        error = RayTaskError("train", traceback.format_exc(), exc).as_instanceof_cause()
    return cloudpickle.loads(cloudpickle.dumps(error))


@pytest.mark.parametrize("kind", list(FaultKind))
def test_a_pickled_trial_failed_gives_its_own_kind(kind: FaultKind) -> None:
    # the reason's wording does not matter: "memory: ..." under kind error stays an error
    error = raised_in_a_ray_task(TrialFailed("memory: needs 9 GiB at micro-batch 1", kind))
    fault = ray_error_fault(error, "", None)
    assert fault == Fault(kind, "memory: needs 9 GiB at micro-batch 1")


def test_the_kind_survives_in_rays_error_text_alone() -> None:
    error = raised_in_a_ray_task(TrialFailed("memory: needs 9 GiB", FaultKind.INFEASIBLE_MEMORY))
    text = str(error)  # what Ray writes to the trial's error.txt
    assert ray_error_fault(None, text, None) == Fault(
        FaultKind.INFEASIBLE_MEMORY, "memory: needs 9 GiB"
    )
    # a text without the note (an older worker) is a plain error: FAIL, never "infeasible"
    bare = "ray::ImplicitFunc.train()\nsearch.worker.faults.TrialFailed: memory: needs 9 GiB\n"
    assert ray_error_fault(None, bare, None) == Fault(FaultKind.ERROR, "memory: needs 9 GiB")


def test_another_exception_from_the_task_is_named_by_its_type() -> None:
    fault = ray_error_fault(raised_in_a_ray_task(ValueError("bad\nvalue")), "", None)
    assert fault == Fault(FaultKind.ERROR, "ValueError: bad value")


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e9"])
def test_trial_timeout_must_be_a_sane_number_of_seconds(
    value: str, tmp_path: Path, tiny_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    args = ["run", *tiny_args, "--trial-timeout", value, "--storage", f"sqlite:///{db}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: trial_timeout=")
    assert "pass --trial-timeout as a" in err and not db.exists()
    if value not in ("nan", "inf"):
        assert "(0, 604800]" in err


def test_a_storage_error_is_one_line_without_the_server_url() -> None:
    import sqlite3

    from optuna.exceptions import StorageInternalError

    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as full:
            raise StorageInternalError("An exception is raised during the commit.") from full
    except StorageInternalError as exc:
        on_sqlite = storage_error_message("sqlite:////data/s.db", exc)
        on_server = storage_error_message("postgresql+psycopg://me:s3cret@db.example/s", exc)
    assert on_sqlite.startswith("cannot write to the study database '/data/s.db': database or")
    assert "\n" not in on_sqlite and "run the same command to resume" in on_sqlite
    assert on_server.startswith("cannot write to the study database: database or disk is full")
    assert "s3cret" not in on_server and "db.example" not in on_server


def _wrapped(driver_error: BaseException, invalidated: bool = False) -> BaseException:
    """``driver_error`` as the searcher sees it: SQLAlchemy's error inside Optuna's."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    try:
        try:
            raise sqlalchemy.exc.OperationalError(
                "COMMIT", None, driver_error, connection_invalidated=invalidated
            ) from driver_error
        except sqlalchemy.exc.OperationalError as error:
            raise StorageInternalError("An exception is raised during the commit.") from error
    except StorageInternalError as exc:
        return exc


def _storage_errors() -> list[tuple[BaseException, StorageFault]]:
    """Errors of each kind; psycopg's own only where it is installed (the postgres extra)."""
    import errno
    import importlib.util
    import sqlite3

    errors = [
        (_wrapped(sqlite3.OperationalError("database or disk is full")), StorageFault.FULL),
        (OSError(errno.ENOSPC, "No space left on device", "/tmp/ray/x"), StorageFault.FULL),
        (_wrapped(RuntimeError("server closed"), invalidated=True), StorageFault.LOST),
        (ConnectionRefusedError(111, "Connection refused"), StorageFault.LOST),
        (_wrapped(sqlite3.OperationalError("readonly database")), StorageFault.OTHER),
    ]
    if importlib.util.find_spec("psycopg") is None:
        return errors
    import psycopg
    import psycopg.errors

    refused = 'connection failed: connection to server at "127.0.0.1", port 5 failed: refused'
    return [
        *errors,
        (_wrapped(psycopg.errors.DiskFull("could not extend file")), StorageFault.FULL),
        (_wrapped(psycopg.errors.AdminShutdown("terminating connection")), StorageFault.LOST),
        (_wrapped(psycopg.OperationalError(refused)), StorageFault.LOST),
    ]


@pytest.mark.parametrize(("error", "fault"), _storage_errors(), ids=lambda v: str(v)[:40])
def test_storage_errors_are_classified_by_their_chain(error: BaseException, fault: str) -> None:
    assert storage_fault(error) == fault
    message = storage_error_message("postgresql+psycopg://me:s3cret@db.example/s", error)
    assert "\n" not in message and "s3cret" not in message and "db.example" not in message
    assert message.endswith("run the same command to resume")
    assert ("free space" in message) == (fault == StorageFault.FULL)
    lost = message.startswith("lost the connection to the study database server: ")
    assert lost == (fault == StorageFault.LOST)


@pytest.mark.postgres
def test_a_stopped_postgresql_server_is_a_lost_connection(
    postgres_server: PostgresServer,  # noqa: F811 (the fixture imported above)
) -> None:
    """A real server stopped under an open study (``pg_ctl stop -m fast``, as an administrator
    or a host shutdown stops it): the next write names a lost connection, not a full disk."""
    import subprocess

    import optuna

    from search.study.database import open_storage
    from tests.fixtures_pg import _as_server_user

    url = postgres_server.url()
    study = optuna.create_study(
        storage=open_storage(url), study_name="s", directions=["maximize", "minimize"]
    )
    study.ask()
    data = str(postgres_server.root / "data")
    stop = [str(postgres_server.pg_bin / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]
    subprocess.run(_as_server_user(stop), check=True, capture_output=True, timeout=60)
    messages = []
    for _ in range(2):  # the open connection is terminated; the next one is refused
        with pytest.raises(optuna.exceptions.StorageInternalError) as caught:
            study.ask()
        assert storage_fault(caught.value) == StorageFault.LOST
        messages.append(storage_error_message(url, caught.value))
    assert "terminating connection due to administrator command" in messages[0]
    assert "Connection refused" in messages[1]
    for message in messages:
        assert message.startswith("lost the connection to the study database server: ")
        assert "free space" not in message and "\n" not in message
