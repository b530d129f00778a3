"""Start (or join) Ray for one search, quietly, on loopback, and always shut it down.

Ray's own console output is silenced because the search prints its own progress: no
dashboard, no worker logs forwarded to the driver, no Tune status tables, no result
loggers, no "Trial task failed" tracebacks. What Ray's driver-side loggers and the raylet's error
messages ("A worker died...", memory-monitor reports) would print goes to
``effnas-driver.log`` in Ray's session log directory instead (:func:`driver_log`), next to the
worker logs. A trial's fault reaches the user as one line, written by the searcher. Ctrl-C is
handled by ``search.driver.run`` (Tune's SIGINT handler is disabled) so that the running trials can
be recorded as interrupted and re-queued.

A local instance is always a fresh one (``address="local"``), sized to the search, so a search
never lands on someone else's running Ray by accident; ``--ray-address`` joins a cluster on
purpose. A local instance listens on loopback only: Ray binds its gRPC servers (GCS,
raylet node and object managers, every worker's core-worker server, the runtime-env and dashboard
agents) to 127.0.0.1 exactly when the node's IP is a loopback address, and it only lets a Linux
node take 127.0.0.1 as its IP in the "no cluster" mode of ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(ray/_private/services.py ``get_node_ip_address``), which is what it does on macOS and Windows.
A failure to start or join is a :class:`UserError`, raised before the study is written.

Before a local instance starts, what a killed driver's Ray left behind (its agents, which
outlive their raylet for about a minute) is ended (``search.driver.ray_orphans``), and said so
in the driver log.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from common.errors import UserError
from search.driver.ray_orphans import ray_temp_root, reap_orphans

RAY_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",  # the searcher stores and prints one line per fault
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
}
LOOPBACK = "127.0.0.1"
NO_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
DRIVER_LOG = "effnas-driver.log"


@contextmanager
def ray_session(
    address: str | None, num_cpus: int, num_gpus: int, object_store_bytes: int
) -> Iterator[None]:
    """``ray.init`` with the project's quiet settings; ``ray.shutdown`` on the way out."""
    os.environ.update(RAY_ENV)
    import ray

    reaped: list[int] = []
    init_args: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "configure_logging": True,
    }
    if address:
        init_args["address"] = address
        _check_reachable(address)
    else:
        reaped = reap_orphans(ray_temp_root())  # a killed driver's agents would linger a minute
        init_args.update(
            address="local",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            object_store_memory=max(128 * 2**20, object_store_bytes),
            _node_ip_address=LOOPBACK,
        )
    with _loopback_node(enabled=not address):
        try:
            ray.init(**init_args)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
            ray.shutdown()
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            where = "start a local Ray instance"
            if address:
                where = f"join the Ray cluster at {address}"
            hint = "; check --ray-address (ray status shows it)" if address else ""
            raise UserError(f"cannot {where}: {reason}{hint}") from exc
        with _quiet_driver():
            if reaped:
                logging.getLogger("ray").warning(
                    "ended %d processes of dead Ray sessions: pids %s", len(reaped), reaped
                )
            try:
                yield
            finally:
                ray.shutdown()


def driver_log() -> Path | None:
    """Where this session's silenced Ray messages go (None before ``ray.init``)."""
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return None
    return Path(node.get_logs_dir_path()) / DRIVER_LOG


@contextmanager
def _loopback_node(enabled: bool) -> Iterator[None]:
    """Ray's "no cluster" mode for the life of a local session: node IP 127.0.0.1.

    The environment variable reaches the processes Ray starts; the constant is patched too
    because Ray reads it once, when ``ray`` is first imported (possibly before this call)."""
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    saved_env = os.environ.get(NO_CLUSTER_ENV)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[NO_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(NO_CLUSTER_ENV, None)
        else:
            os.environ[NO_CLUSTER_ENV] = saved_env


@contextmanager
def _quiet_driver() -> Iterator[None]:
    """Send the "ray" loggers and the raylet's error messages to :func:`driver_log`.

    The raylet's messages are printed by the driver's ``listen_error_messages`` thread through
    ``ray._private.worker.print_to_stdstream`` (to stdout, whatever ``log_to_driver`` says); that
    module function is swapped for the session and put back afterwards."""
    import ray._private.worker as ray_worker

    path = driver_log()
    handler: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8") if path else logging.NullHandler()
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ray_logger = logging.getLogger("ray")
    saved_handlers, saved_level = list(ray_logger.handlers), ray_logger.level
    ray_logger.handlers = [handler]
    ray_logger.setLevel(logging.WARNING)
    printer = getattr(ray_worker, "print_to_stdstream", None)

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            ray_logger.warning("(%s) %s", data.get("pid", "ray"), line)

    if printer is not None:
        ray_worker.print_to_stdstream = to_log
    try:
        yield
    finally:
        if printer is not None:
            ray_worker.print_to_stdstream = printer
        ray_logger.handlers, ray_logger.level = saved_handlers, saved_level
        with suppress(OSError):
            handler.close()


def _check_reachable(address: str) -> None:
    """Fail fast on a ``host:port`` nobody listens on (``ray.init`` would retry for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # "auto" and other forms are Ray's to interpret
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(
            f"cannot join the Ray cluster at {address}: {exc.strerror or exc}; check "
            "--ray-address (`ray status` on the head node prints it)"
        ) from exc
