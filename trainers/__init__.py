"""Short training trials on real data: in-memory data sets, on-device augmentation, the recipe loop.

``load_dataset`` + ``train_val_split`` give :class:`ImageData` splits; ``train_trial`` trains one
:class:`space.ArchSpec` on them with a :class:`TrainConfig` and returns a :class:`TrialResult`,
reporting an :class:`EpochReport` after every epoch so a searcher can stop weak trials.
``available_memory_bytes`` gives the memory a trial may plan for (its
``TrainConfig.memory_limit_bytes``); the trainer's own faults are the :class:`TrialError`
subclasses of ``common.errors`` (re-exported here).
"""

from common.errors import Diverged, InsufficientMemory, TrialError, TrialTimeout
from trainers.data import (
    DATASETS,
    ImageData,
    check_classes,
    check_dataset,
    load_dataset,
    train_val_split,
)
from trainers.device import available_memory_bytes, resolve_device
from trainers.loop import EpochReport, TrainConfig, TrialResult, save_trial, train_trial

__all__ = [
    "DATASETS",
    "Diverged",
    "EpochReport",
    "ImageData",
    "InsufficientMemory",
    "TrainConfig",
    "TrialError",
    "TrialResult",
    "TrialTimeout",
    "available_memory_bytes",
    "check_classes",
    "check_dataset",
    "load_dataset",
    "resolve_device",
    "save_trial",
    "train_trial",
    "train_val_split",
]
