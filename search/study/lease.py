"""Leases on RUNNING trials: which ones a live driver is still training, on any host.

Several drivers may search one study at once, so "RUNNING" alone does not say
whether a trial is being trained or was left behind by a driver that died. Each driver renews a
lease on its live trials, the way Optuna's own heartbeat does it (``RDBStorage.record_heartbeat``
writes the ``trial_heartbeats`` table with the *database's* clock, ``func.now()``; see
``optuna.storages.fail_stale_trials``). Comparing the database's current time with the last
renewal needs no agreement between the hosts' clocks. A RUNNING trial is stale when

- its lease is older than ``grace_s`` by the database's clock (its driver, wherever it ran,
  stopped renewing it), or
- its driver was a process on this very machine (same host name, boot id and pid namespace)
  that no longer exists: a resume right after ``kill -9`` does not wait for the lease to expire.

A RUNNING trial without any lease (its driver died between creating it and the first renewal)
gets one the first time another driver sees it, so it expires ``grace_s`` later if nobody renews
it. Only stale trials are recovered (failed "interrupted" and re-queued once,
``search.study.ledger``); a live trial of another driver counts towards ``--trials`` and is left
alone.

The lease lasts ``GRACE_S`` (90 s), renewed every ``HEARTBEAT_S`` (10 s); ``EFFNAS_LEASE_S``
sets another length (:func:`lease_times`): shorter for faster recovery of a lost host's trials on
a reliable network (and for the two-host tests), longer where a driver may be cut off from the
database for minutes without being gone.

Optuna's heartbeat option on the storage itself is not used: it is meant for
``Study.optimize`` (``Study.ask`` warns) and never expires a trial that has no heartbeat row.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from common.bounds import check_float
from common.clock import DECISIONS
from common.errors import UserError
from search.study.schema import DRIVER

HEARTBEAT_S = 10.0
GRACE_S = 90.0
LEASE_ENV = "EFFNAS_LEASE_S"
MIN_LEASE_S, MAX_LEASE_S = 3.0, 24 * 3600.0  # a renewal every second at least; a day at most


def lease_times() -> tuple[float, float]:
    """(renewal interval, lease length) in seconds: the defaults, or ``EFFNAS_LEASE_S``.

    A lease set by the variable is renewed three times per length (at most every
    ``HEARTBEAT_S``), so one late renewal never lets a live trial expire. A value that is not a
    number in [3, 86400] is a ``UserError``: call this before anything is written."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return HEARTBEAT_S, GRACE_S
    try:
        number = float(raw)
    except ValueError:
        raise UserError(
            f"{LEASE_ENV}={raw!r} is not a number; set it to the lease length in seconds"
        ) from None
    grace = check_float(LEASE_ENV, number, MIN_LEASE_S, MAX_LEASE_S, f"{LEASE_ENV}=SECONDS")
    return min(HEARTBEAT_S, grace / 3), grace


@dataclass(frozen=True)
class Driver:
    """Who runs a trial: stored as the trial's "driver" user attr."""

    host: str
    pid: int
    machine: str  # boot id + pid namespace: equal only where ``pid`` means the same process

    @classmethod
    def here(cls) -> Driver:
        return cls(socket.gethostname(), os.getpid(), _machine_id())

    def attr(self) -> dict[str, Any]:
        return asdict(self)


def _machine_id() -> str:
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return ":".join(parts)


class Lease:
    """This driver's leases on its live trials, renewed every ``interval_s`` by a thread."""

    def __init__(
        self,
        storage: RDBStorage,
        driver: Driver | None = None,
        interval_s: float = HEARTBEAT_S,
        grace_s: float = GRACE_S,
    ) -> None:
        self.storage = storage
        self.driver = driver or Driver.here()
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.error: BaseException | None = None  # the last failed renewal, for diagnostics
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----- this driver's trials ---------------------------------------------------------------
    def hold(self, trial_id: int) -> None:
        """Take the lease of a trial this driver just started (renewed until released)."""
        with self._lock:
            self._held.add(trial_id)
        with DECISIONS.part("lease"):
            self.storage.record_heartbeat(trial_id)

    def release(self, trial_id: int) -> None:
        with self._lock:
            self._held.discard(trial_id)

    def holds(self, trial_id: int) -> bool:
        with self._lock:
            return trial_id in self._held

    def __enter__(self) -> Lease:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="effnas-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        self._thread = None

    def _renew(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                held = sorted(self._held)
            for trial_id in held:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as exc:  # a full disk or a locked database: the next try may do
                    self.error = exc

    # ----- everyone's trials ------------------------------------------------------------------
    def stale(self, study: optuna.Study) -> list[FrozenTrial]:
        """RUNNING trials of ``study`` that no live driver holds (see the module docstring)."""
        with DECISIONS.part("lease"):
            return self._stale(study)

    def _stale(self, study: optuna.Study) -> list[FrozenTrial]:
        running = {
            t._trial_id: t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not self.holds(t._trial_id)
        }
        if not running:
            return []
        now, beats = self._renewals(study._study_id)
        stale = []
        for trial_id, trial in sorted(running.items()):
            beat = beats.get(trial_id)
            if self._dead_here(trial):
                stale.append(trial)
            elif beat is None:
                self.storage.record_heartbeat(trial_id)  # start its clock: expires if not renewed
            elif (now - beat).total_seconds() > self.grace_s:
                stale.append(trial)
        return stale

    def _renewals(self, study_id: int) -> tuple[datetime, dict[int, datetime]]:
        """The database's current time and the last renewal of each RUNNING trial."""
        from optuna.storages._rdb import models

        trials = models.TrialModel.__table__
        beats = models.TrialHeartbeatModel.__table__
        query = (
            sqlalchemy.select(trials.c.trial_id, beats.c.heartbeat)
            .select_from(trials.join(beats, beats.c.trial_id == trials.c.trial_id))
            .where(trials.c.study_id == study_id, trials.c.state == TrialState.RUNNING)
        )
        with self.storage.engine.connect() as connection:
            now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
            rows = connection.execute(query).all()
        # naive, like Optuna's own comparison (PostgreSQL returns an aware "now")
        return _naive(now), {trial_id: _naive(beat) for trial_id, beat in rows}

    def _dead_here(self, trial: FrozenTrial) -> bool:
        """Whether the trial's driver was a process on this machine that is gone."""
        driver = trial.user_attrs.get(DRIVER) or {}
        pid = driver.get("pid")
        if driver.get("host") != self.driver.host or not isinstance(pid, int):
            return False
        if driver.get("machine", self.driver.machine) != self.driver.machine:
            return False  # same name, another machine or container
        if pid == self.driver.pid:
            return True  # this process holds it no more (an earlier search in this process)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, someone else's
        return False


def _naive(moment: Any) -> datetime:
    if isinstance(moment, str):  # a bare SQLite CURRENT_TIMESTAMP
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None)
