"""`search run` drivers as subprocesses, watched from outside (for the fault tests).

A test starts real drivers (``python -m search.cli run ...``), reads their study through a
read-only SQLite connection while they run, finds their Ray processes with psutil (Ray's own
copy; every Ray process of a local search descends from its driver: GCS, raylet, agents and the
trial workers), and reads what they printed. Nothing here fakes a fault: a test kills or stops a
real worker process, limits a real driver's file size, or gives a driver another host name.

``other_host_env`` gives a driver another host name the honest way for a test on one machine: a
``sitecustomize`` module on its ``PYTHONPATH`` replaces ``socket.gethostname`` in that driver
(and in the Ray processes it starts) before anything else runs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray  # noqa: F401 - puts Ray's bundled psutil on sys.path

# isort: split
import psutil

OTHER_HOST = "effnas-other-host"
# what `search run` itself prints on stderr: progress events, the summary table and its tally
OWN_LINES = re.compile(
    r"^(trial \d+ [a-z-]+: .*"
    r"|re-queued trial\(s\) \[.*"
    r"|\s+#\s+status\s+stage\s+accuracy.*"
    r"|[* ] +\d+  [a-z]+ .*"
    r"|\.\.\. \d+ more trial\(s\).*"
    r"|study '.*': \d+/\d+ trials done .*"
    r"|note: .*"
    r"|estimate: .*"
    r"|latency: .*"
    r"|dashboard: optuna-dashboard .*"
    r"|interrupted; resume with: .*"
    r"|stopping: running trials will be re-queued.*"
    r"|error: .*)$"
)


@dataclass
class Driver:
    """One running `search run` process; stderr and stdout go to files next to the study."""

    process: subprocess.Popen[bytes]
    err: Path
    out: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.pid)
            raise AssertionError(f"still running after {timeout} s:\n{self.stderr()}") from None

    def alive(self) -> bool:
        return self.process.poll() is None


def start_driver(
    args: list[str],
    folder: Path,
    name: str,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> Driver:
    """``search run ARGS`` in its own session (so teardown can kill exactly its tree), behind
    ``prefix`` when given (e.g. ``nsenter`` into another simulated host)."""
    err, out = folder / f"{name}.err", folder / f"{name}.out"
    process = subprocess.Popen(
        [*prefix, sys.executable, "-m", "search.cli", "run", *args],
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
    )
    return Driver(process, err, out)


def other_host_env(folder: Path) -> dict[str, str]:
    """Environment for a driver whose ``socket.gethostname()`` says :data:`OTHER_HOST`."""
    site = folder / "other-host-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        f"import socket\nsocket.gethostname = lambda: {OTHER_HOST!r}\n"
    )
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{site}{os.pathsep}{path}" if path else str(site)}


@dataclass(frozen=True)
class Row:
    """One trial as the database has it right now."""

    number: int
    state: str
    attrs: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.attrs.get("fail_reason", ""))

    @property
    def training(self) -> bool:
        """RUNNING and handed to Ray ("driver" is the last attr written when a trial starts)."""
        return self.state == "RUNNING" and "driver" in self.attrs


def trials(db: Path, study: str) -> list[Row]:
    """The study's trials with their user attrs, read through a read-only connection."""
    if not db.exists():
        return []
    query = (
        "SELECT t.trial_id, t.number, t.state FROM trials t JOIN studies s "
        "ON s.study_id = t.study_id WHERE s.study_name = ? ORDER BY t.number"
    )
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30) as connection:
            found = connection.execute(query, (study,)).fetchall()
            attrs: dict[int, dict[str, Any]] = {trial_id: {} for trial_id, _, _ in found}
            for trial_id, key, value in connection.execute(
                "SELECT trial_id, key, value_json FROM trial_user_attributes"
            ):
                if trial_id in attrs:
                    attrs[trial_id][key] = json.loads(value)
    except sqlite3.OperationalError:  # tables not created yet
        return []
    return [Row(number, state, attrs[trial_id]) for trial_id, number, state in found]


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    drivers: list[Driver],
    what: str,
    poll_s: float = 0.05,
) -> Any:
    """Poll ``condition`` every ``poll_s`` until it returns something truthy; fail if a driver
    exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        for driver in drivers:
            assert driver.alive(), f"driver exited before {what}:\n{driver.stderr()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(poll_s)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def trial_workers(driver: Driver, training: bool = True) -> list[psutil.Process]:
    """The driver's Ray workers that host a trial (``ray::ImplicitFunc``), those inside
    ``train`` only when ``training``."""
    title = "ray::ImplicitFunc.train" if training else "ray::ImplicitFunc"
    found = []
    for process in descendants(driver.pid):
        with contextlib.suppress(psutil.Error, IndexError):
            if process.cmdline()[0].startswith(title):
                found.append(process)
    return found


def freeze_training_trial(
    driver: Driver, db: Path, study: str, wanted: Callable[[Row], bool]
) -> tuple[int, psutil.Process] | None:
    """(number, worker) of the one trial that is ``wanted`` and training, its worker frozen with
    SIGSTOP and the trial checked again to be still RUNNING: a stop or kill that follows hits
    that trial, which cannot finish in between. None (nothing frozen) when there is none."""
    workers = trial_workers(driver)
    running = [r.number for r in trials(db, study) if r.training and wanted(r)]
    if len(workers) != 1 or len(running) != 1:
        return None
    worker = workers[0]
    with contextlib.suppress(psutil.Error):
        worker.suspend()
        if any(r.number == running[0] and r.training for r in trials(db, study)):
            return running[0], worker
        worker.resume()
    return None


def listening_sockets(driver: Driver) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket the driver's processes listen on."""
    found = []
    for process in [psutil.Process(driver.pid), *descendants(driver.pid)]:
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    found.append((process.name(), connection.laddr.ip, connection.laddr.port))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def foreign_lines(text: str) -> list[str]:
    """Lines of a driver's output that `search run` did not write itself (Ray's noise)."""
    return [line for line in text.splitlines() if line.strip() and not OWN_LINES.match(line)]


def kill_tree(pid: int) -> None:
    """SIGKILL a driver and every process it started (they share its session)."""
    for process in [*descendants(pid), *_session(pid)]:
        with contextlib.suppress(psutil.Error):
            process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _session(pid: int) -> list[psutil.Process]:
    """Processes still in the driver's session (Ray workers re-parented after its death)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if process.pid != os.getpid() and os.getsid(process.pid) == pid:
                found.append(process)
    return found
