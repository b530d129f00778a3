"""The study's latency: a network is timed once per machine, device, batch and backend, and a
study measures on one machine (a driver that would time elsewhere is refused)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from common.errors import UserError
from search.study.database import open_storage
from search.study.latency import (
    LatencyCache,
    check_machine,
    latency_key,
    recorded_machines,
    stored_latencies,
    timing_record,
)
from space import ArchSpec
from space.latency import LatencyRecord, LatencySettings, Machine


def _record(settings: LatencySettings, median: float) -> LatencyRecord:
    return LatencyRecord(
        median, 0.01, settings.device, settings.batch, settings.threads, settings.backend, 20,
        (("torch", "x"),), 0.5,
    )  # fmt: skip


def test_each_network_is_timed_once_per_device_batch_and_backend(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    study = optuna.create_study(storage=open_storage(url), directions=["maximize", "minimize"])
    calls: list[tuple[str, str]] = []

    def measure(spec: ArchSpec, settings: LatencySettings) -> LatencyRecord:
        calls.append((spec.spec_id, settings.key()))
        return _record(settings, 1.0 + len(calls))

    one = LatencySettings()
    cache = LatencyCache(study, one, measure, "host-a")
    plain = ArchSpec(classes=10)
    same_network = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15, phi=0.0, classes=10)  # phi 0
    assert plain.spec_id == same_network.spec_id
    assert cache.latency(plain).median_ms == 2.0
    assert cache.latency(same_network).median_ms == 2.0
    assert cache.latency(plain.replace(block="se")).median_ms == 3.0
    assert len(calls) == 2
    # a new driver (a resume) reads the study and times nothing it holds
    again = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    assert LatencyCache(again, one, measure, "host-a").latency(plain).median_ms == 2.0
    assert len(calls) == 2
    # another batch, backend or device is another measurement
    for other in (LatencySettings(batch=8), LatencySettings(backend="onnxruntime")):
        LatencyCache(again, other, measure, "host-a").latency(plain)
    assert len(calls) == 4 and calls[2:] == [
        (plain.spec_id, "cpu:b8:torch"),
        (plain.spec_id, "cpu:b1:onnxruntime"),
    ]
    # another machine never reuses host A's figure: it times the network itself
    assert LatencyCache(again, one, measure, "host-b").latency(plain).median_ms == 6.0
    assert len(calls) == 5
    stored = stored_latencies(again.user_attrs)
    assert len(stored) == 5
    assert stored[latency_key(plain.spec_id, one, "host-a")]["median_ms"] == 2.0
    assert (
        latency_key(plain.spec_id, one, "host-a") == f"latency:{plain.spec_id}:host-a:cpu:b1:torch"
    )


A = Machine("host-a", "AMD EPYC 7B13")
B = Machine("host-b", "AMD EPYC 7B13")


def _timed_trial(record: dict, driver_host: str) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=TrialState.COMPLETE,
        values=[0.8, 1.0],
        user_attrs={"latency": record, "driver": {"host": driver_host, "pid": 1}},
    )


def test_a_study_measures_on_one_machine() -> None:
    recorded = {"latency_machine": timing_record(A, None)}
    assert recorded_machines(recorded, []) == [A]
    check_machine("s", [A], A, None)  # the same machine: fine
    check_machine("s", [], B, None)  # nothing timed yet: fine
    with pytest.raises(UserError) as refused:
        check_machine("lat", [A], B, None)
    assert str(refused.value) == (
        "study 'lat' measures latency on host-a (AMD EPYC 7B13), but this driver would time on "
        "host-b (AMD EPYC 7B13): one objective or --latency-budget-ms cannot compare figures "
        "from two machines; run this command on host-a, or time every candidate on one node: a "
        "new --study with --latency-resource NAME, the node started with ray start --resources "
        "'{\"NAME\": 1}'"
    )
    with pytest.raises(UserError, match="the node of --latency-resource timer would time on"):
        check_machine("lat", [A], B, "timer")


def test_an_older_study_is_judged_by_the_hosts_that_timed_its_trials() -> None:
    """Records written before hosts were kept: the driver that timed them names the host (an
    older driver timed on its own machine)."""
    old = {"median_ms": 1.0, "cv": 0.01}
    trials = [_timed_trial(old, "host-a"), _timed_trial(old, "host-a")]
    machines = recorded_machines({}, trials)
    assert machines == [Machine("host-a", "unknown")]
    check_machine("old", machines, A, None)  # the same host, processor unknown: fine
    with pytest.raises(UserError, match="measures latency on host-a \\(unknown\\)"):
        check_machine("old", machines, B, None)
    newer = {**old, "host": "host-b", "processor": B.processor}
    assert recorded_machines({}, [*trials, _timed_trial(newer, "host-a")]) == [
        Machine("host-a", "unknown"),
        B,
    ]
