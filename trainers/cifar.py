"""CIFAR-10 / CIFAR-100 from the standard python-pickle directories (Krizhevsky, 2009).

Layout, as distributed at https://www.cs.toronto.edu/~kriz/cifar.html:
``cifar-10-batches-py/{data_batch_1..5, test_batch}`` with ``b"labels"`` and
``cifar-100-python/{train, test}`` with ``b"fine_labels"`` (the 100-class labels); each pickle
holds ``b"data"``, an (N, 3072) uint8 array of 1024 red, 1024 green, 1024 blue bytes per image.
``data_dir`` may be that directory or its parent.

Pickles can run code when loaded, so a restricted unpickler only rebuilds numpy arrays, lists,
dicts, strings and numbers (what the real files contain); anything else is a :class:`UserError`.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import UserError
from trainers.data import ImageData

_LAYOUT: dict[str, tuple[str, tuple[str, ...], str, bytes, int]] = {
    # name: (directory, training files, test file, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ("train",), "test", b"fine_labels", 100),
}
_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core")
        if (canonical, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if canonical.startswith("numpy.core") and hasattr(np, "_core"):
            module = canonical.replace("numpy.core", "numpy._core")  # numpy 2 name, no warning
        return getattr(importlib.import_module(module), name)


def load_cifar(name: str, data_dir: Path) -> tuple[ImageData, ImageData]:
    """(train, test) for ``cifar10`` (50,000 / 10,000) or ``cifar100`` (50,000 / 10,000)."""
    folder, train_files, test_file, label_key, classes = _LAYOUT[name]
    directory = data_dir if (data_dir / test_file).is_file() else data_dir / folder
    if not (directory / test_file).is_file():
        raise UserError(
            f"no {name} files in {str(data_dir)!r}: expected {folder}/{test_file} (the python "
            "version from https://www.cs.toronto.edu/~kriz/cifar.html); give that directory as "
            "data_dir"
        )
    train = _read_split([directory / f for f in train_files], label_key, classes, f"{name}:train")
    test = _read_split([directory / test_file], label_key, classes, f"{name}:test")
    return train, test


def _read_split(paths: list[Path], label_key: bytes, classes: int, name: str) -> ImageData:
    images, labels = [], []
    for path in paths:
        data, batch_labels = _read_batch(path, label_key)
        if batch_labels.size and (batch_labels.min() < 0 or batch_labels.max() >= classes):
            raise _damaged(path, f"labels outside 0..{classes - 1}")
        images.append(data)
        labels.append(batch_labels)
    return ImageData(
        images=torch.from_numpy(np.concatenate(images)).reshape(-1, 3, 32, 32),
        labels=torch.from_numpy(np.concatenate(labels)),
        classes=classes,
        name=name,
    )


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise UserError(f"missing CIFAR file {path}; the directory is incomplete — re-extract it")
    try:
        with path.open("rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean "damaged"
        raise _damaged(path, str(exc) or type(exc).__name__) from exc
    if not isinstance(batch, dict):
        raise _damaged(path, "not a dict")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    if b"data" not in batch or label_key not in batch:
        raise _damaged(path, f"no {b'data'!r} / {label_key!r} entries")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise _damaged(path, f"data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise _damaged(path, f"{labels.shape[0]} labels for {data.shape[0]} images")
    return data, labels


def _damaged(path: Path, why: str) -> UserError:
    return UserError(f"{path} is corrupt or truncated ({why}); re-extract the CIFAR archive")
