"""Fashion-MNIST from IDX files, as shipped by Debian's ``dataset-fashion-mnist`` package.

The IDX format is LeCun's MNIST container (http://yann.lecun.com/exdb/mnist/): two zero bytes, a
type byte (0x08 = unsigned byte), a dimension count, the dimensions as big-endian int32, then the
data. Zalando's Fashion-MNIST (Xiao et al., 2017) uses it unchanged. Files may be gzip-compressed
(``*.gz``, as Debian ships them) or plain. Truncated or corrupt files raise :class:`UserError`
naming the file; the images stay 1-channel (the trainer repeats them to 3 channels on the device).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from trainers.data import ImageData

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = 10
_INSTALL_HINT = (
    "install it with `apt-get install dataset-fashion-mnist` or give its directory as data_dir"
)


def load_fashion_mnist(data_dir: str | Path | None = None) -> tuple[ImageData, ImageData]:
    """(train, test): 60,000 and 10,000 grey 28x28 images with labels 0..9."""
    directory = DEFAULT_DIR if data_dir is None else Path(data_dir).expanduser()
    if not directory.is_dir():
        raise UserError(
            f"Fashion-MNIST directory {str(directory)!r} does not exist; {_INSTALL_HINT}"
        )
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"), dims=3)
        labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"), dims=1)
        if images.shape[0] != labels.shape[0]:
            raise UserError(
                f"{prefix} images and labels in {directory} disagree ({images.shape[0]} vs "
                f"{labels.shape[0]} items); they come from different data sets, re-install them"
            )
        if labels.size and int(labels.max()) >= CLASSES:
            raise UserError(
                f"{prefix} labels in {directory} exceed {CLASSES - 1}; not Fashion-MNIST"
            )
        split = "train" if prefix == "train" else "test"
        splits.append(
            ImageData(
                images=torch.from_numpy(images).unsqueeze(1),
                labels=torch.from_numpy(labels.astype(np.int64)),
                classes=CLASSES,
                name=f"fashion-mnist:{split}",
            )
        )
    return splits[0], splits[1]


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise UserError(f"missing {stem}[.gz] in {str(directory)!r}; {_INSTALL_HINT}")


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An unsigned-byte IDX array with ``dims`` dimensions; UserError if the file is damaged."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise _damaged(path, f"cannot decompress: {exc}") from exc
    if len(raw) < 4 + 4 * dims:
        raise _damaged(path, f"only {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != dims:
        raise _damaged(path, f"bad IDX header {raw[:4].hex()} (expected 000008{dims:02x})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    start = 4 + 4 * dims
    expected = int(np.prod(shape))
    if len(raw) - start != expected:
        raise _damaged(path, f"{len(raw) - start} data bytes for shape {shape} ({expected} needed)")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(shape).copy()


def _damaged(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} is corrupt or truncated ({why}); re-install dataset-fashion-mnist "
        "or replace the file"
    )
