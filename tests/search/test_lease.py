"""Leases on RUNNING trials (search/lease.py) on a real SQLite study, without Ray.

The clock is the database's (SQLite's CURRENT_TIMESTAMP, one-second resolution), so the
expiry tests use a one-second grace and wait a little over two seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from common.errors import UserError
from search.study.database import open_storage
from search.study.lease import GRACE_S, HEARTBEAT_S, LEASE_ENV, Driver, Lease, lease_times
from search.study.ledger import recover_stale
from search.study.schema import DIRECTIONS

HERE = Driver.here()


def study_at(tmp_path: Path) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    storage = open_storage(f"sqlite:///{tmp_path / 'lease.db'}")
    study = optuna.create_study(study_name="s", storage=storage, directions=list(DIRECTIONS))
    return study, storage


def running(study: optuna.Study, driver: Driver, lease: Lease | None = None) -> optuna.Trial:
    """A trial started by ``driver`` (it holds the lease when ``lease`` is given)."""
    trial = study.ask()
    trial.suggest_float("alpha", 1.0, 2.0)
    trial.set_user_attr("driver", driver.attr())
    trial.set_user_attr("stage", "joint")
    if lease is not None:
        lease.hold(trial._trial_id)
    return trial


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_live_trial_of_another_host_is_never_stale(tmp_path: Path) -> None:
    study, storage = study_at(tmp_path)
    there = Driver("other-host", HERE.pid, "another-machine")
    their_lease = Lease(storage, there, interval_s=0.2, grace_s=1.0)
    with their_lease:
        trial = running(study, there, their_lease)
        mine = Lease(storage, HERE, grace_s=1.0)
        time.sleep(2.5)  # past the grace: renewed by the other driver's thread meanwhile
        assert mine.stale(study) == []
    time.sleep(2.5)  # its driver stopped renewing: the lease expires, on any host
    assert [t.number for t in mine.stale(study)] == [trial.number]


def test_a_trial_without_a_lease_gets_one_and_expires(tmp_path: Path) -> None:
    study, storage = study_at(tmp_path)
    trial = running(study, Driver("other-host", 1, "another-machine"))  # died before renewing
    lease = Lease(storage, HERE, grace_s=1.0)
    assert lease.stale(study) == []  # first sight starts its clock
    time.sleep(2.5)
    assert [t.number for t in lease.stale(study)] == [trial.number]


def test_a_dead_driver_on_this_machine_is_stale_at_once(tmp_path: Path) -> None:
    study, storage = study_at(tmp_path)
    gone = running(study, Driver(HERE.host, dead_pid(), HERE.machine))
    same_name_elsewhere = running(study, Driver(HERE.host, dead_pid(), "another-machine"))
    leftover = running(study, HERE)  # this process, no lease held: an earlier search here
    held = Lease(storage, HERE)
    kept = running(study, HERE, held)
    for trial in (gone, same_name_elsewhere, leftover, kept):
        storage.record_heartbeat(trial._trial_id)  # fresh leases all
    stale = {t.number for t in held.stale(study)}
    assert stale == {gone.number, leftover.number}
    assert same_name_elsewhere.number not in stale and kept.number not in stale


def test_recovery_requeues_once_and_only_once(tmp_path: Path) -> None:
    study, storage = study_at(tmp_path)
    first = running(study, Driver(HERE.host, dead_pid(), HERE.machine))
    lease = Lease(storage, HERE)
    stale = lease.stale(study)
    assert recover_stale(study, 7, stale) == [(first.number, "interrupted")]
    assert recover_stale(study, 7, stale) == []  # a second recoverer of the same trial: no-op
    (replay,) = study.get_trials(states=(TrialState.WAITING,))
    assert replay.user_attrs["requeued_from"] == first.number
    # the replay starts, and its driver dies too: this time it fails for good
    again = study.ask()
    assert again.number == replay.number
    again.suggest_float("alpha", 1.0, 2.0)
    again.set_user_attr("driver", Driver(HERE.host, dead_pid(), HERE.machine).attr())
    [(number, reason)] = recover_stale(study, 7, lease.stale(study))
    assert number == replay.number
    assert reason == (
        f"interrupted twice: interrupted again; trial {first.number} was already re-queued once"
    )
    trials = study.trials
    assert trials[replay.number].state == TrialState.FAIL
    assert trials[replay.number].user_attrs["fail_reason"] == reason
    assert not study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))


def test_the_lease_length_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEASE_ENV, raising=False)
    assert lease_times() == (HEARTBEAT_S, GRACE_S) == (10.0, 90.0)
    monkeypatch.setenv(LEASE_ENV, "300")
    assert lease_times() == (10.0, 300.0)  # renewed as often as by default
    monkeypatch.setenv(LEASE_ENV, "6")
    assert lease_times() == (2.0, 6.0)  # three renewals per lease: one late one does not expire it
    for bad, says in (("soon", "is not a number"), ("1", "out of range"), ("nan", "finite")):
        monkeypatch.setenv(LEASE_ENV, bad)
        with pytest.raises(UserError, match=f"^{LEASE_ENV}=.*{says}") as error:
            lease_times()
        assert "\n" not in str(error.value)
