"""Small data sets written in each on-disk format (IDX, CIFAR pickles, image folders)."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST directory: 12 train and 5 test images, pixel value = label * 20."""
    directory = tmp_path / "fashion"
    directory.mkdir()
    for prefix, count in (("train", 12), ("t10k", 5)):
        labels = np.arange(count) % 10
        images = np.repeat(labels * 20, 28 * 28).reshape(count, 28, 28)
        (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return directory


def _cifar_batch(count: int, label_key: bytes, classes: int, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, classes, count)],
        b"batch_label": b"testing batch",
    }


@pytest.fixture
def cifar_root(tmp_path: Path) -> Callable[[str], Path]:
    """Writes ``<tmp>/<name>/cifar-10-batches-py`` (or ``cifar-100-python``); returns the parent."""

    def write(name: str) -> Path:
        root = tmp_path / name
        if name == "cifar10":
            directory = root / "cifar-10-batches-py"
            files = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 3}
            key, classes = b"labels", 10
        else:
            directory = root / "cifar-100-python"
            files = {"train": 6, "test": 3}
            key, classes = b"fine_labels", 100
        directory.mkdir(parents=True)
        for seed, (file, count) in enumerate(files.items()):
            with (directory / file).open("wb") as handle:
                pickle.dump(_cifar_batch(count, key, classes, seed), handle, protocol=2)
        return root

    return write
