"""Simulated trials: a learning curve replayed epoch by epoch in place of a training.

The search's own machinery (searcher, planner, sampler, MO-ASHA, study, lease, executors) is what
benchmarks of search quality and of scale must exercise, over more seeds and trials than real
training affords. The field's answer is to replay learning curves, measured or predicted, through
the real optimiser (tabular and surrogate benchmarks: NAS-Bench-201, Dong & Yang 2020;
NAS-Bench-301, Siems et al. 2020; YAHPO Gym, Pfisterer et al. 2022; Syne Tune's simulator
backend, Salinas et al. 2022, on which MO-ASHA was evaluated). Here a :class:`CurveSource`
answers a network, a seed and an epoch count with a :class:`Curve`: the validation accuracy after
each epoch and the seconds each epoch took. :class:`CurveTrial` stands where
``search.worker.trial.run_trial`` stands and sends the very reports a real trial sends (the same
keys, the per-epoch reports, one final report on the last epoch), so the driver cannot tell them
apart; it sleeps ``pace`` times each epoch's seconds (0: instantly). It runs through the real
executors: ``search.worker.trainable.run_measured_trial(..., trial=CurveTrial(...))`` under Ray or
inline, or the simulated clock (``search.driver.simulated``).

A source must be deterministic in (network, seed, epochs) and picklable (Ray ships it to the
workers). :class:`SyntheticCurves` is a closed-form source for tests and scale benchmarks; a
table of measured curves and a model fitted to it (``benchmarks/``) are the others.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from search.worker.trial import Reporter, TrialSettings
from space import ArchSpec, count_spec, resolve
from trainers.data import ImageData


@dataclass(frozen=True)
class Curve:
    """A trial's course: validation accuracy and seconds per epoch, optionally the loss."""

    accuracy: tuple[float, ...]
    seconds: tuple[float, ...]
    loss: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.accuracy or len(self.seconds) != len(self.accuracy):
            raise ValueError("a curve needs one accuracy and one duration per epoch")
        if self.loss is not None and len(self.loss) != len(self.accuracy):
            raise ValueError("a curve's losses must match its epochs")


class CurveSource(Protocol):
    """Answers (network, seed, epochs) with a curve of exactly ``epochs`` epochs; the same
    arguments always give the same curve."""

    def curve(self, spec: ArchSpec, seed: int, epochs: int) -> Curve: ...


def unit_noise(*key: object) -> float:
    """A standard normal deviate that depends only on ``key`` (hash-seeded, process-independent,
    so a worker process and the driver draw the same)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "little") + 0.5) / 2**64
    u2 = (int.from_bytes(digest[8:], "little") + 0.5) / 2**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@dataclass(frozen=True)
class SyntheticCurves:
    """A closed-form source with the shape of this project's measured curves (tests, scale).

    Accuracy rises with log MACs and with the input resolution, CondConv learns more slowly, and
    every curve approaches its final value as ``1 - 0.5**epoch`` of the way from chance; seeded
    noise of ``noise`` (standard deviation) is shared by a curve's epochs, as a lucky
    initialisation is. Each epoch takes ``seconds_per_mmac`` seconds per million MACs (at least
    ``min_seconds``), so larger networks take longer, as they do on a real device."""

    noise: float = 0.01
    seconds_per_mmac: float = 0.0
    min_seconds: float = 0.0
    classes: int = 10

    def curve(self, spec: ArchSpec, seed: int, epochs: int) -> Curve:
        macs = count_spec(spec).macs
        resolution = resolve(spec).resolution
        chance = 1.0 / self.classes
        final = 0.55 + 0.04 * math.log2(max(macs, 1) / 1e6) + 0.04 * math.log2(resolution / 8)
        final -= 0.08 if spec.block == "condconv" else 0.0
        final += self.noise * unit_noise("synthetic", spec.spec_id, seed)
        final = min(0.99, max(chance, final))
        accuracy = tuple(
            chance + (final - chance) * (1.0 - 0.5**epoch) / (1.0 - 0.5**epochs)
            for epoch in range(1, epochs + 1)
        )
        seconds = max(self.min_seconds, self.seconds_per_mmac * macs / 1e6)
        return Curve(accuracy, (seconds,) * epochs)


def curve_reports(
    config: dict[str, Any], settings: TrialSettings, curve: Curve, spec: ArchSpec
) -> Iterator[tuple[dict[str, Any], float]]:
    """(report, seconds of the epoch it closes) for each epoch of ``curve``, as
    ``search.worker.trial.run_trial`` reports a real trial: one report per epoch, the last one
    the final report with the whole result."""
    epochs = settings.epochs
    if len(curve.accuracy) != epochs:
        raise ValueError(f"the curve has {len(curve.accuracy)} epochs, the trial {epochs}")
    losses = curve.loss or (math.nan,) * epochs
    common = {"number": int(config["number"]), "epochs": epochs}
    for epoch in range(1, epochs):
        yield (
            {
                **common,
                "epoch": epoch,
                "done_epochs": epoch,
                "accuracy": curve.accuracy[epoch - 1],
                "loss": losses[epoch - 1],
                "train_loss": math.nan,
                "epoch_seconds": curve.seconds[epoch - 1],
                "final": False,
            },
            curve.seconds[epoch - 1],
        )
    counted = count_spec(spec)
    seconds = sum(curve.seconds)
    yield (
        {
            **common,
            "accuracy": curve.accuracy[-1],
            "loss": losses[-1],
            "epochs_run": epochs,
            "seconds": seconds,
            "images_per_second": math.nan,
            "peak_memory_bytes": 0,
            "macs": counted.macs,
            "params": counted.params,
            "accuracy_per_epoch": list(curve.accuracy),
            "loss_per_epoch": list(losses),
            "stopped_early": False,
            "micro_batch": settings.batch_size,
            "accumulation_steps": 1,
            "memory_estimate_bytes": 0,
            "setup_seconds": 0.0,
            "input": None,
            "epoch": epochs,
            "done_epochs": epochs,
            "final": True,
            "weights_dir": None,
        },
        curve.seconds[-1],
    )


@dataclass(frozen=True)
class CurveTrial:
    """A trial function (``run_trial``'s signature) that replays ``source``'s curve of the
    trial's network and seed, sleeping ``pace`` x each epoch's seconds before its report."""

    source: CurveSource
    pace: float = 0.0

    def __call__(
        self,
        config: dict[str, Any],
        train: ImageData,
        val: ImageData,
        settings: TrialSettings,
        report: Reporter | None = None,
        holdout: ImageData | None = None,
    ) -> None:
        """Replay the curve of ``config``'s network (``holdout``, a final's validation split,
        plays no part: finals are not simulated)."""
        if report is None:
            from ray import tune

            report = tune.report
        spec = ArchSpec.parse(config["spec"])
        curve = self.source.curve(spec, int(config["seed"]), settings.epochs)
        for result, seconds in curve_reports(config, settings, curve, spec):
            if self.pace > 0:
                time.sleep(self.pace * seconds)
            report(result)
