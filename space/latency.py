"""Measured inference latency of the network a spec builds: what a deployed classifier costs.

MACs are what the design constrains, but for this family they disagree with time: depthwise
convolutions, squeeze-excite and CondConv's routing are cheap in MACs and slow on a device (see
``benchmarks/latency.py`` for how far MACs rank networks like their latency). So a search can
also minimise, or cap, the latency measured here.

How one network is timed (:func:`measure_latency`): built from the spec with random weights (time
does not depend on their values), in eval mode, under ``torch.inference_mode``; threads pinned to
``LatencySettings.threads`` (``torch.set_num_threads``, or onnxruntime's intra-op threads) so a
figure does not move with what else the machine runs; ``warmup`` untimed forward passes (first
calls allocate and pick kernels), then ``repeats`` timed passes of one batch of
``LatencySettings.batch`` images at the spec's resolution; CUDA is synchronised around each timed
pass. The median is the figure (robust to a stray slow pass); the coefficient of variation of the
repeats says how far to trust it. The backend is eager PyTorch ("torch") or onnxruntime on the
model exported by :func:`space.onnx.onnx_bytes` ("onnxruntime").

Where a figure was measured is part of it: every record names the host, the processor (the CPU
model, or the GPU's name for ``cuda``), the thread count and the library versions
(:class:`Machine`), so figures from two machines are never taken for one (the study refuses to
mix them, ``search.study.latency``).

**Re-timing under load.** A pass disturbed by other work on the machine (a trial training beside
the driver, another user's job) is slower than the rest, which raises the repeats' coefficient of
variation. When the CV of a measurement exceeds :data:`LOADED_CV` it is taken again, after a
pause of :data:`RETIME_PAUSE_S`, at most :data:`RETIMES` more times; the attempt with the lowest
median is kept (the least disturbed), and the record says how many attempts it took and whether
even the kept one stayed above the threshold (``loaded``), beside the machine's load average per
CPU at that moment (``load``). A steady load (every pass equally slow) does not show in the CV;
``load`` is what tells it, and timing on a node where nothing trains (``--latency-resource``)
avoids it.

Only the built network is needed, never data or training, which is why it lives here and can
run before a candidate trains. Caching one measurement per network is the study's business
(``search.study.latency``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from common.bounds import MAX_LATENCY_BATCH, MAX_LATENCY_REPEATS, MAX_THREADS, check_int
from common.errors import UserError
from space.model import build_model
from space.plan import IN_CHANNELS, resolve
from space.spec import ArchSpec

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
LATENCY_DEVICES: tuple[str, ...] = ("cpu", "cuda")
LOADED_CV = 0.10  # above this within-run CV a measurement was disturbed: time it again
RETIMES = 2  # further attempts at most
RETIME_PAUSE_S = 0.5  # between attempts: a burst of other work may pass
UNKNOWN = "unknown"  # the host or processor of a record written before they were kept


@dataclass(frozen=True)
class Machine:
    """Where a network is timed: the host name and the processor (CPU model, or GPU name)."""

    host: str
    processor: str

    @property
    def label(self) -> str:
        return f"{self.host} ({self.processor})"

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "processor": self.processor}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Machine:
        return cls(str(data.get("host", UNKNOWN)), str(data.get("processor", UNKNOWN)))


def this_machine(device: str = "cpu") -> Machine:
    """This process's machine: its host name and its CPU model (``/proc/cpuinfo``'s "model
    name", else ``platform.processor()``), or the name of CUDA device 0 for ``cuda``."""
    if device == "cuda" and torch.cuda.is_available():
        return Machine(socket.gethostname(), torch.cuda.get_device_name(0))
    return Machine(socket.gethostname(), _cpu_model())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def load_per_cpu() -> float | None:
    """The 1-minute load average per CPU (None where the OS has none)."""
    try:
        return os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    except OSError:
        return None


@dataclass(frozen=True)
class LatencySettings:
    """Where and how a network is timed; the same settings give comparable figures."""

    device: str = "cpu"
    batch: int = 1
    backend: str = "torch"
    threads: int = 1  # one core: the most stable figure, and what an edge box gives one model
    warmup: int = 5
    repeats: int = 20

    def __post_init__(self) -> None:
        if self.device not in LATENCY_DEVICES:
            raise UserError(
                f"unknown latency device {self.device!r}; choose --latency-device from "
                f"{{{', '.join(LATENCY_DEVICES)}}}"
            )
        if self.backend not in BACKENDS:
            raise UserError(
                f"unknown latency backend {self.backend!r}; choose --latency-backend from "
                f"{{{', '.join(BACKENDS)}}}"
            )
        check_int("latency_batch", self.batch, 1, MAX_LATENCY_BATCH, "--latency-batch")
        check_int("threads", self.threads, 1, MAX_THREADS, "threads")
        check_int("warmup", self.warmup, 0, MAX_LATENCY_REPEATS, "warmup")
        check_int("repeats", self.repeats, 2, MAX_LATENCY_REPEATS, "repeats")

    def key(self) -> str:
        """What makes two measurements of one network comparable: device, batch and backend."""
        return f"{self.device}:b{self.batch}:{self.backend}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "batch": self.batch,
            "backend": self.backend,
            "threads": self.threads,
            "warmup": self.warmup,
            "repeats": self.repeats,
        }


@dataclass(frozen=True)
class LatencyRecord:
    """One measurement: the median time of one batch and how it was taken."""

    median_ms: float
    cv: float  # standard deviation / mean of the repeated passes
    device: str
    batch: int
    threads: int
    backend: str
    repeats: int
    versions: tuple[tuple[str, str], ...]  # (package, version), sorted
    seconds: float  # what measuring cost, building and warm-up included
    host: str = UNKNOWN  # the machine that timed it (this_machine)
    processor: str = UNKNOWN
    attempts: int = 1  # measurements taken (more than one: re-timed under load)
    loaded: bool = False  # the kept attempt's CV still exceeded LOADED_CV
    load: float | None = None  # 1-minute load average per CPU when it was taken

    @property
    def machine(self) -> Machine:
        return Machine(self.host, self.processor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "processor": self.processor,
            "attempts": self.attempts,
            "loaded": self.loaded,
            "load": self.load,
            "median_ms": self.median_ms,
            "cv": self.cv,
            "device": self.device,
            "batch": self.batch,
            "threads": self.threads,
            "backend": self.backend,
            "repeats": self.repeats,
            "versions": dict(self.versions),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyRecord:
        return cls(
            median_ms=float(data["median_ms"]),
            cv=float(data["cv"]),
            device=str(data["device"]),
            batch=int(data["batch"]),
            threads=int(data["threads"]),
            backend=str(data["backend"]),
            repeats=int(data["repeats"]),
            versions=tuple(sorted((str(k), str(v)) for k, v in data["versions"].items())),
            seconds=float(data["seconds"]),
            host=str(data.get("host", UNKNOWN)),
            processor=str(data.get("processor", UNKNOWN)),
            attempts=int(data.get("attempts", 1)),
            loaded=bool(data.get("loaded", False)),
            load=float(data["load"]) if isinstance(data.get("load"), int | float) else None,
        )


def measure_latency(spec: ArchSpec, settings: LatencySettings) -> LatencyRecord:
    """Time the network ``spec`` builds (see the module docstring), re-timing a measurement
    disturbed by load; a ``LatencyRecord`` naming this machine."""
    started = time.perf_counter()
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--latency-device cuda but no CUDA GPU is visible here; pass cpu")
    resolution = resolve(spec).resolution
    model = build_model(spec).eval()
    images = torch.randn(settings.batch, IN_CHANNELS, resolution, resolution)
    attempts: list[tuple[float, float]] = []  # (median, cv) of each attempt
    load = load_per_cpu()
    with pinned_threads(settings.threads), torch.inference_mode():
        if settings.backend == "onnxruntime":
            run = _onnxruntime_pass(model, images, settings)
        else:
            run = _torch_pass(model, images, settings.device)
        while True:
            attempts.append(_timed(run, settings))
            if attempts[-1][1] <= LOADED_CV or len(attempts) > RETIMES:
                break
            time.sleep(RETIME_PAUSE_S)
    median, cv = min(attempts)
    machine = this_machine(settings.device)
    return LatencyRecord(
        median_ms=median,
        cv=cv,
        device=settings.device,
        batch=settings.batch,
        threads=settings.threads,
        backend=settings.backend,
        repeats=settings.repeats,
        versions=latency_versions(settings.backend),
        seconds=time.perf_counter() - started,
        host=machine.host,
        processor=machine.processor,
        attempts=len(attempts),
        loaded=cv > LOADED_CV,
        load=load,
    )


def _timed(run: Callable[[], None], settings: LatencySettings) -> tuple[float, float]:
    """(median ms, coefficient of variation) of ``settings.repeats`` passes after the warm-up."""
    for _ in range(settings.warmup):
        run()
    times = []
    for _ in range(settings.repeats):
        begin = time.perf_counter()
        run()
        times.append((time.perf_counter() - begin) * 1000.0)
    mean = statistics.fmean(times)
    return statistics.median(times), statistics.stdev(times) / mean if mean > 0 else 0.0


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def latency_versions(backend: str) -> tuple[tuple[str, str], ...]:
    """The library versions a figure depends on (the backend's runtime included)."""
    packages = ["torch", "numpy", *(["onnxruntime"] if backend == "onnxruntime" else [])]
    found = [("python", platform.python_version())]
    for package in packages:
        try:
            found.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            found.append((package, "not installed"))
    return tuple(sorted(found))


def _torch_pass(model: torch.nn.Module, images: torch.Tensor, device: str) -> Callable[[], None]:
    model = model.to(device)
    images = images.to(device)
    synchronise = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> None:
        synchronise()
        model(images)
        synchronise()

    return run


def _onnxruntime_pass(
    model: torch.nn.Module, images: torch.Tensor, settings: LatencySettings
) -> Callable[[], None]:
    from space.onnx import onnx_bytes, onnxruntime_session

    session = onnxruntime_session(onnx_bytes(model, images), settings.device, settings.threads)
    feed = {session.get_inputs()[0].name: images.numpy()}

    def run() -> None:
        session.run(None, feed)

    return run
