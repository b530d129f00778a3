"""End the processes that a dead local Ray session leaves behind, before a new one starts.

Why: a driver killed with SIGKILL takes its Ray head with it (Ray ties the GCS server, the
raylet and its monitors to the driver's life), but the raylet's children, the dashboard agent
and the runtime-env agent (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``), notice their
raylet's death only by polling and then spend about a minute trying to report it to the dead GCS
before they exit (how long, and the memory they hold, in benchmarks/RESULTS.md), longer for any
worker that lingers the same way. Nothing else ends them, so the next driver does, at Ray start-up.

Which processes: this user's processes that Ray titled ``ray::...`` (its workers and agents),
that hold a file of a session directory under Ray's temporary directory (their logs), where no
``raylet`` or ``gcs_server`` process of any user names that session any more. A live session, this
machine's or another user's, always has its raylet and GCS, so it is never touched. SIGTERM
first, SIGKILL after a grace period. Linux only (``/proc``); elsewhere nothing is reaped.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

PROC = Path("/proc")
RAY_TITLE = "ray::"  # the process title Ray gives its workers and agents
SESSION_OWNERS = ("raylet", "gcs_server")  # a session lives while one of these names it
SESSION_PREFIX = "session_"
GRACE_S = 2.0  # between SIGTERM and SIGKILL: the agents' own exit path waits on the dead GCS


def ray_temp_root() -> Path:
    """Where a local Ray session keeps its session directories (``RAY_TMPDIR``, ``TMPDIR`` or
    ``/tmp``, then ``ray``), as Ray itself picks it when ``ray.init`` is given no temp dir."""
    from ray._common.utils import get_default_ray_temp_dir

    return Path(get_default_ray_temp_dir())


def reap_orphans(temp_root: Path, grace_s: float = GRACE_S) -> list[int]:
    """End the processes of dead Ray sessions under ``temp_root`` (see the module docstring)
    and return their pids; waits at most ``grace_s`` (plus a moment for SIGKILL)."""
    orphans = find_orphans(temp_root)
    _end(orphans, grace_s)
    return orphans


def find_orphans(temp_root: Path) -> list[int]:
    """The pids of this user's ``ray::`` processes whose session has no raylet or GCS left."""
    live = live_sessions(temp_root)
    return sorted(
        pid for pid, session in ray_process_sessions(temp_root).items() if session not in live
    )


def ray_process_sessions(temp_root: Path) -> dict[int, str]:
    """This user's ``ray::`` processes that hold a file of a session under ``temp_root``:
    pid -> session directory name."""
    found: dict[int, str] = {}
    for pid in _pids():
        if pid == os.getpid() or not _own(pid):
            continue
        argv = _argv(pid)
        if not argv or not argv[0].startswith(RAY_TITLE):
            continue
        session = next(_sessions(_open_files(pid), temp_root), None)
        if session is not None:
            found[pid] = session
    return found


def live_sessions(temp_root: Path) -> set[str]:
    """Sessions under ``temp_root`` named on the command line of a running raylet or GCS."""
    live: set[str] = set()
    for pid in _pids():
        argv = _argv(pid)
        if argv and Path(argv[0]).name in SESSION_OWNERS and not _zombie(pid):
            live.update(_sessions(_split_args(argv), temp_root))
    return live


def _sessions(paths: Iterable[str], temp_root: Path) -> Iterable[str]:
    """The session directory names that ``paths`` lie in, under ``temp_root`` (as given or
    with its symbolic links resolved: open files are reported resolved)."""
    roots = {f"{temp_root}/", f"{temp_root.resolve()}/"}
    for path in paths:
        for root in roots:
            if path.startswith(root + SESSION_PREFIX):
                yield path[len(root) :].split("/", 1)[0]


def _split_args(argv: list[str]) -> list[str]:
    """Arguments with their ``--flag=`` part dropped, so ``--log_dir=/tmp/ray/...`` is a path."""
    return [arg.split("=", 1)[-1] for arg in argv]


def _end(pids: list[int], grace_s: float) -> None:
    """SIGTERM, up to ``grace_s`` for them to exit, then SIGKILL for the rest."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _alive(pid)]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def _pids() -> list[int]:
    try:
        return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]
    except OSError:  # no /proc: not Linux
        return []


def _own(pid: int) -> bool:
    with suppress(OSError):
        return (PROC / str(pid)).stat().st_uid == os.getuid()
    return False


def _argv(pid: int) -> list[str]:
    with suppress(OSError):
        raw = (PROC / str(pid) / "cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    return []


def _open_files(pid: int) -> list[str]:
    targets = []
    with suppress(OSError):
        for fd in (PROC / str(pid) / "fd").iterdir():
            with suppress(OSError):
                targets.append(os.readlink(fd))
    return targets


def _zombie(pid: int) -> bool:
    """True for an exited process not yet waited for (its state is Z or X)."""
    with suppress(OSError):
        stat = (PROC / str(pid) / "stat").read_text()
        return stat.rpartition(")")[2].split()[0] in ("Z", "X")
    return False


def _alive(pid: int) -> bool:
    return (PROC / str(pid)).exists() and not _zombie(pid)
