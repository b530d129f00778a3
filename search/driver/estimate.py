"""What a search or a final training will cost on this machine, said before the first trial.

`search run --budget-flops 2.6e9` on a laptop CPU is a search of weeks; nothing should start such
a run without saying so. Before the first trial the driver prints one line: the work (trials x
epochs x images at the MACs a trial will have on average) at a throughput measured here, on a
few training steps of a network of that size, and, when that exceeds :data:`LONG_CPU_S` on a
CPU, a second line with what to do instead.

**How.** A training image costs about three forward passes (forward, the backward's two), so
time per image grows with the network's MACs; the throughput is measured as seconds per image
per MAC on one network (:func:`measure_throughput`: ``trainers.train_trial`` itself on a few
batches of real images, two epochs of one batch each, the second timed so that the first
absorbs the warm-up) and applied to the MACs each trial will have. A joint search draws each
trial's MAC level log-uniformly between the space's cheapest network and the budget
(``search.strategy.planner``: a share of the log range), so the mean is the log-uniform mean
``(budget - base) / ln(budget / base)``; a pinned phi has one size. Evaluation is a forward pass
(a third of a training image). Trials run ``--concurrency`` at a time, each on its share of the
machine (the share the measurement used), and each adds its setup (model, data on the device).
The figure is an upper bound: MO-ASHA stops weak trials at epochs 1, 4, 16, ..., and TPE may
favour smaller networks than the log-uniform draw.

**Stored figure.** The measured seconds per MAC are kept in the study (study attr
:data:`~search.study.schema.THROUGHPUT`, per host, device and thread count), so a resume on the
same machine uses them instead of measuring again; `search final` measures on the very networks
it retrains.

Figures on how far the estimate lands from a real run are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from search.driver.progress import duration
from search.strategy.planner import stage_one_options
from search.study import schema
from space import ArchSpec, count_spec, fit_phi
from space.scaling import EFFICIENTNET_B0
from space.searchspace import SearchSpace
from trainers.data import ImageData
from trainers.device import available_memory_bytes
from trainers.loop import EpochReport, TrainConfig, train_trial

LONG_CPU_S = 3 * 3600.0  # above this on a CPU, the estimate says what to do instead
EVAL_COST = 1.0 / 3.0  # an evaluated image, in training images (one forward of three passes)
MEASURE_BATCH = 8  # images per measured step (a small batch: a large network is slow on a CPU)


@dataclass(frozen=True)
class Throughput:
    """Training speed measured on one network: seconds per image, and per image per MAC."""

    seconds_per_image: float
    macs: int
    spec: str
    device: str
    host: str
    threads: int
    setup_seconds: float  # a trial's set-up before its first step (model, data on the device)

    @property
    def seconds_per_mac(self) -> float:
        return self.seconds_per_image / max(1, self.macs)

    def key(self) -> str:
        return f"{self.host}:{self.device}:{self.threads}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds_per_image": self.seconds_per_image,
            "macs": self.macs,
            "spec": self.spec,
            "device": self.device,
            "host": self.host,
            "threads": self.threads,
            "setup_seconds": self.setup_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Throughput:
        return cls(
            float(data["seconds_per_image"]),
            int(data["macs"]),
            str(data["spec"]),
            str(data["device"]),
            str(data["host"]),
            int(data["threads"]),
            float(data.get("setup_seconds", 0.0)),
        )


def measure_throughput(
    spec: ArchSpec, train: ImageData, device: str, threads: int, memory_share: float = 1.0
) -> Throughput:
    """``spec``'s training speed on ``device``: two epochs of one batch of real images through
    ``train_trial``; the second epoch is timed (the first absorbs the warm-up)."""
    batch = min(MEASURE_BATCH, len(train))
    images = train.take(torch.arange(batch), name=f"{train.name}:throughput")
    timed: list[EpochReport] = []
    torch_threads = torch.get_num_threads()
    try:
        config = TrainConfig(
            epochs=2,
            warmup_epochs=0,
            batch_size=batch,
            device=device,
            threads=threads,
            validate=False,
            compile=False,
            memory_limit_bytes=available_memory_bytes(device, memory_share),
        )
        result = train_trial(spec, images, images, config, on_epoch=_keep(timed))
    finally:
        torch.set_num_threads(torch_threads)
    return Throughput(
        seconds_per_image=timed[-1].seconds / batch,
        macs=count_spec(spec).macs,
        spec=spec.canonical(),
        device=device,
        host=socket.gethostname(),
        threads=threads,
        setup_seconds=result.setup_seconds,
    )


def _keep(reports: list[EpochReport]) -> Any:
    def on_epoch(report: EpochReport) -> bool:
        reports.append(report)
        return False

    return on_epoch


def mean_search_macs(space: SearchSpace, classes: int, budget: int) -> tuple[float, ArchSpec]:
    """The MACs a trial of this search has on average, and a network of about that size to
    measure (the paper preset's options where the space allows them, B0's coefficients)."""
    options = stage_one_options(space, classes, budget).smallest_spec(classes)
    if "phi" in space.pins:
        return float(count_spec(options).macs), options
    pinned = {k: getattr(options, k) for k in ("alpha", "beta", "gamma") if k in space.pins}
    spec = options.replace(phi=0.0, **{**EFFICIENTNET_B0, **pinned})
    base = float(count_spec(spec).macs)
    mean = base if base >= budget else (budget - base) / math.log(budget / base)
    if base < mean:
        spec = fit_phi(spec, mean).spec
    return mean, spec


@dataclass(frozen=True)
class Estimate:
    """The expected wall time of ``runs`` trainings and how it was found."""

    seconds: float
    runs: int
    epochs: int
    train_images: int
    eval_images: int
    mean_macs: float
    concurrency: int
    throughput: Throughput
    stored: bool  # the throughput came from the study (measured by an earlier run here)
    what: str = "trial"

    @property
    def line(self) -> str:
        """The one line printed before the first trial."""
        t = self.throughput
        source = "stored for" if self.stored else "measured on"
        return (
            f"estimate: {self.runs} {self.what}(s) x {self.epochs} epoch(s) x "
            f"{self.train_images:,} images (+{self.eval_images:,} evaluated) at "
            f"{self.mean_macs:.3g} MACs on average: about {duration(self.seconds)} on "
            f"{t.device} ({t.threads} thread(s) per {self.what}, {self.concurrency} at a time; "
            f"{1 / t.seconds_per_image:.3g} images/s {source} {t.spec} at {t.macs:.3g} MACs)"
            + ("; an upper bound: early stopping shortens it" if self.what == "trial" else "")
        )

    @property
    def advice(self) -> str | None:
        """The second line when the run is long on a CPU; None otherwise."""
        if self.throughput.device != "cpu" or self.seconds <= LONG_CPU_S:
            return None
        return (
            f"note: {duration(self.seconds)} is long for a CPU; for a first look use "
            "--preset quick (about a minute), a GPU (--device cuda), or fewer images, "
            f"{self.what}s or epochs (--subset 5000, --trials, --epochs)"
        )


def estimate(
    macs: Sequence[float],
    epochs: int,
    train_images: int,
    eval_images: int,
    concurrency: int,
    throughput: Throughput,
    stored: bool = False,
    what: str = "trial",
) -> Estimate:
    """The wall time of one training per entry of ``macs`` (see the module docstring): a
    search trial evaluates its ``eval_images`` every epoch, a final once, after training."""
    per_epoch = eval_images if what == "trial" else eval_images / epochs
    images = train_images + EVAL_COST * per_epoch
    work = sum(epochs * images * m * throughput.seconds_per_mac for m in macs)
    work += len(macs) * throughput.setup_seconds
    mean = sum(macs) / len(macs) if macs else 0.0
    return Estimate(
        seconds=work / max(1, concurrency),
        runs=len(macs),
        epochs=epochs,
        train_images=train_images,
        eval_images=eval_images,
        mean_macs=mean,
        concurrency=concurrency,
        throughput=throughput,
        stored=stored,
        what=what,
    )


def stored_throughput(study: optuna.Study, device: str, threads: int) -> Throughput | None:
    """The figure an earlier run on this host, device and thread count kept in the study."""
    kept = study.user_attrs.get(schema.THROUGHPUT)
    key = f"{socket.gethostname()}:{device}:{threads}"
    if isinstance(kept, dict) and isinstance(kept.get(key), dict):
        try:
            return Throughput.from_dict(kept[key])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def store_throughput(study: optuna.Study, throughput: Throughput) -> None:
    kept = study.user_attrs.get(schema.THROUGHPUT)
    figures = dict(kept) if isinstance(kept, dict) else {}
    figures[throughput.key()] = throughput.to_dict()
    study.set_user_attr(schema.THROUGHPUT, figures)
