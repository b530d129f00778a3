"""Image-folder trees (one folder per class, read with Pillow), e.g. Tiny-ImageNet.

Accepted layouts, in the spirit of torchvision's ``ImageFolder`` (not imported: it is not a
dependency of this project):

- ``root/train/<class>/**/<image>`` with optional held-out splits ``root/test`` and ``root/val``,
  each either ``<class>/**/<image>`` or Tiny-ImageNet's flat ``images/<file>`` plus
  ``val_annotations.txt`` (``file<TAB>class<TAB>...`` per line);
- ``root/<class>/**/<image>`` (no ``train/``).

Which labelled folder is what: a labelled ``test/`` is the test split; a labelled ``val/`` is
then the validation split (the search validates on it instead of carving one out of the training
images, and `search final` chooses by it). Without a labelled ``test/`` (Tiny-ImageNet's test
images carry no labels), a labelled ``val/`` is the only held-out split anyone can score on, so
it is the test split, as the data set's authors use it. Class indices follow the sorted training
folder names. Without any labelled held-out split, every tenth image of each class (in sorted
file order) is held out as the test split, so the split is the same on every machine. Images
are stored at the most common size among all the images (others are resized with Pillow's
antialiasing bilinear filter) and as 1 channel only when every image is grey. Unreadable images
raise :class:`UserError` naming the file.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from common.errors import UserError
from trainers.data import ImageData

EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
HOLD_OUT_EVERY = 10
_GREY_MODES = frozenset({"1", "L", "I", "I;16", "F"})

Labelled = list[tuple[Path, int]]


def load_folder(root: Path) -> tuple[ImageData, ImageData, ImageData | None]:
    """(train, test, validation or None) from an image-folder tree; see the module docstring
    for the layouts and which labelled folder is which split."""
    train_root = root / "train" if (root / "train").is_dir() else root
    classes = _class_folders(train_root)
    train_items = _scan_classes(train_root, classes)
    nested = train_root != root
    test_items = _labelled_split(root / "test", classes) if nested else None
    val_items = _labelled_split(root / "val", classes) if nested else None
    if test_items is None:
        test_items, val_items = val_items, None  # a labelled val/ alone is the test split
    if test_items is None:
        train_items, test_items = _hold_out(train_items)
    every = train_items + test_items + (val_items or [])
    channels, size = _storage_format([path for path, _ in every])
    name = f"folder:{root.name}"
    return (
        _decode(train_items, channels, size, len(classes), f"{name}:train"),
        _decode(test_items, channels, size, len(classes), f"{name}:test"),
        _decode(val_items, channels, size, len(classes), f"{name}:val") if val_items else None,
    )


def _class_folders(train_root: Path) -> list[str]:
    classes = sorted(
        entry.name
        for entry in train_root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and _images_under(entry)
    )
    if len(classes) < 2:
        raise UserError(
            f"{str(train_root)!r} has {len(classes)} class folder(s) with images; an image-folder "
            "data set needs train/<class>/<image> (or <class>/<image>) with at least 2 classes"
        )
    return classes


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def _scan_classes(folder: Path, classes: list[str]) -> Labelled:
    """(image, class index) for each image under ``folder/<class>``; absent classes are skipped."""
    return [
        (path, index)
        for index, name in enumerate(classes)
        if (folder / name).is_dir()
        for path in _images_under(folder / name)
    ]


def _labelled_split(folder: Path, classes: list[str]) -> Labelled | None:
    """The labelled images of ``folder`` (``root/test`` or ``root/val``); None when it is
    absent or unlabelled."""
    if not folder.is_dir():
        return None
    annotations = folder / "val_annotations.txt"
    if annotations.is_file():
        return _read_annotations(folder, annotations, classes)
    subfolders = [e.name for e in folder.iterdir() if e.is_dir() and _images_under(e)]
    unknown = sorted(set(subfolders) - set(classes))
    if unknown == ["images"]:
        return None  # Tiny-ImageNet's unlabelled test/images
    if unknown:
        raise UserError(
            f"{folder} has class folder(s) {unknown[:3]} that are not in train/; "
            "held-out classes must match the training classes"
        )
    return _scan_classes(folder, classes) if subfolders else None


def _read_annotations(folder: Path, annotations: Path, classes: list[str]) -> Labelled:
    index_of = {name: i for i, name in enumerate(classes)}
    items: Labelled = []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index_of:
            raise UserError(
                f"{annotations} line {number} is not 'file<TAB>class' with a class from train/"
            )
        path = folder / "images" / fields[0]
        if not path.is_file():
            path = folder / fields[0]
        items.append((path, index_of[fields[1]]))
    return items


def _hold_out(items: Labelled) -> tuple[Labelled, Labelled]:
    """Every HOLD_OUT_EVERY-th image of each class (in sorted order) goes to the test split."""
    seen: Counter[int] = Counter()
    kept: Labelled = []
    held: Labelled = []
    for path, label in items:
        seen[label] += 1
        (held if seen[label] % HOLD_OUT_EVERY == 0 else kept).append((path, label))
    return kept, held


def _storage_format(paths: list[Path]) -> tuple[int, tuple[int, int]]:
    """(channels, (width, height)) from the image headers (no decoding)."""
    sizes: Counter[tuple[int, int]] = Counter()
    grey = True
    for path in paths:
        with _open(path) as image:
            sizes[image.size] += 1
            grey = grey and image.mode in _GREY_MODES
    return (1 if grey else 3), sizes.most_common(1)[0][0]


def _decode(
    items: Labelled, channels: int, size: tuple[int, int], classes: int, name: str
) -> ImageData:
    mode = "L" if channels == 1 else "RGB"

    def read(path: Path) -> np.ndarray:
        with _open(path) as image:
            try:
                image = image.convert(mode)
                if image.size != size:
                    image = image.resize(size, Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8).reshape(size[1], size[0], channels)
            except (OSError, ValueError) as exc:
                raise _unreadable(path, exc) from exc

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(read, [path for path, _ in items]))
    images = np.stack(arrays) if arrays else np.zeros((0, size[1], size[0], channels), np.uint8)
    return ImageData(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor([label for _, label in items], dtype=torch.int64),
        classes=classes,
        name=name,
    )


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> UserError:
    return UserError(f"cannot read image {path} ({exc}); remove or replace the file")
