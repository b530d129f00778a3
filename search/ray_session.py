"""Start (or join) Ray for one search, quietly, and always shut it down.

Ray's own console output is silenced because the search prints its own progress (issue 6,
item 7): no dashboard, no worker logs forwarded to the driver, no Tune status tables, no result
loggers. Ctrl-C is handled by ``search.run`` (Tune's SIGINT handler is disabled) so that the
running trials can be recorded as interrupted and re-queued.

A local instance is always a fresh one (``address="local"``), sized to the search, so a search
never lands on someone else's running Ray by accident; ``--ray-address`` joins a cluster on
purpose. A failure to start or join is a :class:`UserError`, raised before the study is written.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from space import UserError

RAY_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
}


@contextmanager
def ray_session(
    address: str | None, num_cpus: int, num_gpus: int, object_store_bytes: int
) -> Iterator[None]:
    """``ray.init`` with the project's quiet settings; ``ray.shutdown`` on the way out."""
    os.environ.update(RAY_ENV)
    import ray

    init_args: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "configure_logging": True,
    }
    if address:
        init_args["address"] = address
    else:
        init_args.update(
            address="local",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            object_store_memory=max(128 * 2**20, object_store_bytes),
        )
    if address:
        _check_reachable(address)
    try:
        ray.init(**init_args)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        ray.shutdown()
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
        hint = "; check --ray-address (ray status shows it)" if address else ""
        raise UserError(f"cannot {where}: {reason}{hint}") from exc
    try:
        yield
    finally:
        ray.shutdown()


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
