"""The study's latency cache: a network is timed once per device, batch and backend."""

from __future__ import annotations

from pathlib import Path

import optuna

from search.study.database import open_storage
from search.study.latency import LatencyCache, latency_key, stored_latencies
from space import ArchSpec
from space.latency import LatencyRecord, LatencySettings


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
    cache = LatencyCache(study, one, measure)
    plain = ArchSpec(classes=10)
    same_network = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15, phi=0.0, classes=10)  # phi 0
    assert plain.spec_id == same_network.spec_id
    assert cache.latency(plain).median_ms == 2.0
    assert cache.latency(same_network).median_ms == 2.0
    assert cache.latency(plain.replace(block="se")).median_ms == 3.0
    assert len(calls) == 2
    # a new driver (a resume) reads the study and times nothing it holds
    again = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    assert LatencyCache(again, one, measure).latency(plain).median_ms == 2.0
    assert len(calls) == 2
    # another batch, backend or device is another measurement
    for other in (LatencySettings(batch=8), LatencySettings(backend="onnxruntime")):
        LatencyCache(again, other, measure).latency(plain)
    assert len(calls) == 4 and calls[2:] == [
        (plain.spec_id, "cpu:b8:torch"),
        (plain.spec_id, "cpu:b1:onnxruntime"),
    ]
    stored = stored_latencies(again.user_attrs)
    assert len(stored) == 4
    assert stored[latency_key(plain.spec_id, one)]["median_ms"] == 2.0
    assert latency_key(plain.spec_id, one) == f"latency:{plain.spec_id}:cpu:b1:torch"
