"""Measured latency: a real timing of small networks, threads pinned and restored, onnxruntime."""

from __future__ import annotations

import importlib.metadata
import socket

import pytest
import torch

import space.latency as latency
from common.errors import UserError
from space import ArchSpec, build_model
from space.latency import LatencyRecord, LatencySettings, measure_latency, this_machine

SMALL = ArchSpec(expansion=1, resolution=16, classes=10)


def test_a_measurement_is_the_median_of_pinned_repeats_and_round_trips() -> None:
    before = torch.get_num_threads()
    settings = LatencySettings(batch=2, threads=1, warmup=1, repeats=5)
    record = measure_latency(SMALL, settings)
    assert torch.get_num_threads() == before  # pinned inside only
    assert 0.0 < record.median_ms < 10_000 and record.cv >= 0.0
    assert (record.device, record.batch, record.threads, record.backend) == ("cpu", 2, 1, "torch")
    assert record.repeats == 5 and record.seconds * 1000 >= 5 * record.median_ms * 0.5
    versions = dict(record.versions)
    assert versions["torch"] == importlib.metadata.version("torch")
    assert "onnxruntime" not in versions and "python" in versions
    assert LatencyRecord.from_dict(record.to_dict()) == record
    assert settings.key() == "cpu:b2:torch"
    # where it was measured: this host and its CPU model
    assert record.host == socket.gethostname() and record.machine == this_machine()
    assert record.processor not in ("", "unknown")
    assert record.attempts >= 1 and record.loaded == (record.cv > latency.LOADED_CV)


@pytest.mark.parametrize(
    ("attempts", "kept", "loaded"),
    [
        ([(5.0, 0.02)], (5.0, 0.02), False),  # quiet: one attempt
        ([(5.0, 0.30), (4.0, 0.05)], (4.0, 0.05), False),  # disturbed, then quiet
        ([(5.0, 0.30), (6.0, 0.20), (5.5, 0.25)], (5.0, 0.30), True),  # loaded throughout
    ],
)
def test_a_measurement_disturbed_by_load_is_timed_again(
    attempts: list[tuple[float, float]],
    kept: tuple[float, float],
    loaded: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above a CV of 0.10 a measurement is repeated, at most twice more; the least disturbed
    (lowest median) is kept, and the record says how many attempts and whether it stayed loaded."""
    results = iter(attempts)
    monkeypatch.setattr(latency, "_timed", lambda run, settings: next(results))
    monkeypatch.setattr(latency, "RETIME_PAUSE_S", 0.0)
    record = measure_latency(SMALL, LatencySettings(warmup=0, repeats=2))
    assert (record.median_ms, record.cv) == kept
    assert (record.attempts, record.loaded) == (len(attempts), loaded)
    old = {k: v for k, v in record.to_dict().items() if k not in ("host", "processor", "load")}
    assert LatencyRecord.from_dict(old).host == "unknown"  # a record of an older effnas


def test_larger_networks_take_longer() -> None:
    """The figure measures the network: 16x the MACs is clearly slower on one thread."""
    settings = LatencySettings(warmup=2, repeats=7)
    small = measure_latency(SMALL, settings).median_ms
    large = measure_latency(SMALL.replace(expansion=6, resolution=64), settings).median_ms
    assert large > 2 * small


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"device": "tpu"}, "choose --latency-device from {cpu, cuda}"),
        ({"backend": "tensorrt"}, "choose --latency-backend from {torch, onnxruntime}"),
        ({"batch": 0}, "latency_batch=0 is out of range"),
        ({"repeats": 1}, "repeats=1 is out of range"),
    ],
)
def test_settings_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
        LatencySettings(**changes)  # type: ignore[arg-type]


def test_onnxruntime_times_the_exported_network_and_it_computes_the_same() -> None:
    pytest.importorskip("onnxruntime")
    from space.onnx import onnx_bytes, onnxruntime_session

    spec = ArchSpec(block="condconv", expansion=1, resolution=16, classes=10)
    model = build_model(spec).eval()
    images = torch.randn(3, 3, 16, 16)
    session = onnxruntime_session(onnx_bytes(model, images))
    (logits,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images).numpy()
    assert logits.shape == (3, 10)
    assert abs(logits - expected).max() < 1e-4
    record = measure_latency(spec, LatencySettings(backend="onnxruntime", warmup=1, repeats=3))
    assert record.backend == "onnxruntime" and record.median_ms > 0
    assert dict(record.versions)["onnxruntime"] != "not installed"
