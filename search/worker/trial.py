"""One Ray trial as ``trainers.train_trial`` sees it, run by ``search.worker.trainable``.

It never touches the study (only the driver writes it); it only reports:
- after every epoch but the last, ``{"accuracy", "loss", "epoch", "done_epochs", ...}`` so the
  ASHA scheduler can stop weak trials and the driver can store the accuracy live (a final,
  which validates nothing while it trains, reports its epochs with ``"validated": False``: the
  driver's progress and its ETA only);
- after the last epoch, one final report with ``"final": True`` and the whole ``TrialResult``.
  The driver calls a trial COMPLETE only when it sees this report with ``done_epochs == epochs``;
  a trial stopped by the scheduler never sends it, so it is stored PRUNED, never COMPLETE with a
  half-trained accuracy (the trap of Ray's own OptunaSearch, which trusts any last result);
- on an error, no report: it raises :class:`~common.errors.TrialFailed` with the fault's kind
  and one-line reason (``search.worker.faults``: ``"out of memory: ..."`` for CUDA OOM, a
  trainer's "diverged: ..." as is), which Ray hands to the driver as the trial's error; the full
  traceback goes to the worker's log. (A report without the metrics would make Ray Tune's strict
  metric check abort the whole search.)
  Faults that kill the process (memory monitor, SIGKILL, segfault, ``--trial-timeout``) are
  named by the driver (``search.driver.watch``).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.errors import TrialFailed
from search.study import schema
from search.worker.faults import failure_fault
from space import ArchSpec
from trainers.data import ImageData
from trainers.device import available_memory_bytes
from trainers.evaluation import evaluate_saved, record_evaluation
from trainers.loop import EpochReport, TrainConfig, train_trial

Reporter = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one search shares (the per-trial part travels in Ray's config)."""

    epochs: int
    batch_size: int
    device: str  # "cpu" or "cuda" (Ray makes the trial's GPU share visible as cuda:0)
    threads: int  # torch CPU threads per trial, so concurrent trials don't thrash
    weights_root: str | None = None
    time_limit_s: float | None = None  # --trial-timeout (the driver enforces it too)
    memory_share: float = 1.0  # this trial's share of the device's memory (GPU or host RAM)
    # a final training (`search final`): ``val`` is the test split, evaluated once, on the saved
    # weights after training, and so is the final's held-out validation split when it has one
    # (``holdout``: what chooses among finals); ``recipe`` holds the TrainConfig fields it sets
    # beyond a trial's
    final: bool = False
    recipe: tuple[tuple[str, Any], ...] = ()


def run_trial(
    config: dict[str, Any],
    train: ImageData,
    val: ImageData,
    settings: TrialSettings,
    report: Reporter | None = None,
    holdout: ImageData | None = None,
) -> None:
    """Train ``config["spec"]`` with ``config["seed"]``: reports per epoch and a final report;
    a failure raises :class:`TrialFailed` with its kind and one-line reason. A final evaluates
    its saved weights on ``holdout`` (its validation split, when it has one) and on ``val`` (the
    test split)."""
    if report is None:
        from ray import tune

        report = tune.report
    torch.set_num_threads(max(1, settings.threads))
    spec = ArchSpec.parse(config["spec"])
    number = int(config["number"])
    common = {"number": number, "epochs": settings.epochs}
    save_dir = Path(settings.weights_root) / f"trial-{number}" if settings.weights_root else None

    def on_epoch(epoch: EpochReport) -> bool:
        if epoch.epoch < epoch.epochs:  # the last: in the final report
            report(
                {
                    **common,
                    "epoch": epoch.epoch,
                    "done_epochs": epoch.epoch,
                    "accuracy": epoch.accuracy,  # NaN for a final: it validates nothing
                    "loss": epoch.loss,
                    "train_loss": epoch.train_loss,
                    "epoch_seconds": epoch.seconds,
                    "final": False,
                    "validated": not settings.final,  # a final's report is progress only
                }
            )
        return False  # stopping is the scheduler's job

    try:
        train_config = TrainConfig(
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            seed=int(config["seed"]),
            device=settings.device,
            time_limit_s=settings.time_limit_s,
            # measured in the worker, at its start: what this trial may plan micro-batches for
            memory_limit_bytes=available_memory_bytes(settings.device, settings.memory_share),
            validate=not settings.final,
            **dict(settings.recipe),
        )
        result = train_trial(spec, train, val, train_config, on_epoch=on_epoch, save_dir=save_dir)
        tested = _test(save_dir, val, settings) if settings.final else {}
        if settings.final and holdout is not None:
            tested.update(_validate(save_dir, holdout, settings))
    except Exception as exc:  # any trial error fails this trial only; the search goes on
        traceback.print_exc(file=sys.stderr)  # Ray keeps the worker's stderr in its logs
        fault = failure_fault(exc)
        raise TrialFailed(fault.reason, fault.kind) from None
    report(
        {
            **common,
            **result.to_dict(),
            "epoch": result.epochs_run,
            "done_epochs": result.epochs_run,
            "final": True,
            "weights_dir": str(save_dir) if save_dir else None,
            **tested,
            **({schema.TRAIN_IMAGES: len(train)} if settings.final else {}),
        }
    )


def _validate(save_dir: Path | None, holdout: ImageData, settings: TrialSettings) -> dict[str, Any]:
    """A final's evaluation on its held-out validation split, through the same saved weights
    and input contract as the test: the figure that chooses among finals."""
    if save_dir is None:
        raise ValueError("a final training needs TrialSettings.weights_root")
    _, evaluation = evaluate_saved(save_dir, holdout, torch.device(settings.device))
    return {
        schema.VAL_ACCURACY: evaluation.accuracy,
        schema.VAL_CORRECT: evaluation.correct,
        schema.VAL_IMAGES: evaluation.images,
    }


def _test(save_dir: Path | None, test: ImageData, settings: TrialSettings) -> dict[str, Any]:
    """A final's one evaluation on the test split: its saved weights through its saved input
    contract (``trainers.evaluation``), the path `search evaluate` takes, so both count the
    same images correct."""
    if save_dir is None:
        raise ValueError("a final training needs TrialSettings.weights_root")
    _, evaluation = evaluate_saved(save_dir, test, torch.device(settings.device))
    record_evaluation(save_dir, evaluation)
    return {
        "accuracy": evaluation.accuracy,
        schema.TEST_CORRECT: evaluation.correct,
        schema.TEST_IMAGES: evaluation.images,
    }
