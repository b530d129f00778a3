"""Data sets held whole in memory as uint8 tensors, and the reproducible train/validation split.

Short search trials are dominated by input handling when images are decoded and augmented per
sample on the CPU; the small data sets of docs/design.md sec. 7 (Fashion-MNIST, CIFAR, TinyImageNet)
fit in memory as uint8, so every split is one :class:`ImageData` of tensors that the trainer can
move to the accelerator once (see ``trainers.augment`` for the batched, on-device augmentation).

Nothing here downloads anything: each format is read from files the user (or a Debian package)
already put on disk, and every problem with those files is a :class:`space.UserError` that names
the file and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import UserError

DATASETS: tuple[str, ...] = ("fashion-mnist", "cifar10", "cifar100", "folder")


@dataclass(frozen=True)
class ImageData:
    """One whole split: ``images`` uint8 (N, C, H, W) with C = 1 (grey) or 3, ``labels`` int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: int
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype}")
        if self.images.shape[1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {self.images.shape[1]}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be int64 with one label per image")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def take(self, indices: torch.Tensor, name: str | None = None) -> ImageData:
        """The images at ``indices`` (a copy), keeping the class count."""
        return ImageData(
            images=self.images[indices].contiguous(),
            labels=self.labels[indices].contiguous(),
            classes=self.classes,
            name=name or self.name,
        )


def load_dataset(name: str, data_dir: str | Path | None = None) -> tuple[ImageData, ImageData]:
    """(train, test) for 'fashion-mnist' | 'cifar10' | 'cifar100' | 'folder'; UserError on problems.

    ``data_dir`` defaults to the Debian package's directory for Fashion-MNIST and is required for
    the others (the CIFAR pickle directory or its parent; the root of an image-folder tree).
    """
    train, test, _ = load_splits(name, data_dir)
    return train, test


def load_splits(
    name: str, data_dir: str | Path | None = None
) -> tuple[ImageData, ImageData, ImageData | None]:
    """(train, test, validation) as :func:`load_dataset`; the validation split is the data
    set's own labelled one where it has one beside its test split (an image folder with labelled
    ``val/`` and ``test/``, ``trainers.folder``), else None: then a validation split is carved
    out of the training images (:func:`train_val_split`)."""
    check_dataset(name)
    if name == "fashion-mnist":
        from trainers.idx import load_fashion_mnist

        return (*load_fashion_mnist(data_dir), None)
    if name in ("cifar10", "cifar100"):
        from trainers.cifar import load_cifar

        return (*load_cifar(name, _required_dir(name, data_dir)), None)
    from trainers.folder import load_folder

    return load_folder(_required_dir(name, data_dir))


def check_dataset(name: str, setting: str = "dataset") -> str:
    """``name`` if it is one of ``DATASETS``; a UserError otherwise.

    ``setting`` is what the message calls the value: the CLI passes its flag (``--dataset``),
    library callers keep the setting's name.
    """
    if name not in DATASETS:
        raise UserError(
            f"unknown dataset {name!r}; choose {setting} from {{{', '.join(DATASETS)}}}"
        )
    return name


def check_classes(
    given: int | None, data: ImageData, dataset: str, setting: str = "classes"
) -> int:
    """``data``'s class count; a UserError when ``given`` (None: not given) differs from it.

    The one rule for a class count meeting a data set: `search train` and `search run` check the
    user's ``--classes`` with it once the data set is loaded (passing the flag as ``setting``),
    and the trainer checks the spec it is handed.
    """
    if given is not None and given != data.classes:
        raise UserError(
            f"{setting} {given} does not match {dataset}, which has {data.classes} classes; "
            f"leave {setting} out to use {data.classes}"
        )
    return data.classes


def _required_dir(name: str, data_dir: str | Path | None) -> Path:
    if data_dir is None:
        raise UserError(f"dataset {name!r} needs data_dir, the directory of its files")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise UserError(f"data_dir {str(path)!r} is not a directory; give the {name} directory")
    return path


def take_subset(
    data: ImageData, subset: int | None, seed: int, *, subset_setting: str = "subset"
) -> ImageData:
    """All of ``data``, or ``subset`` images of it picked by :func:`train_val_split`'s seeded
    permutation (without a validation split): a final training's images."""
    if subset is None:
        return data
    return data.take(_seeded_order(data, subset, seed, subset_setting), name=f"{data.name}:subset")


def _seeded_order(data: ImageData, subset: int, seed: int, subset_setting: str) -> torch.Tensor:
    """The indices of ``subset`` images of ``data`` in one seeded random order (a CPU
    ``torch.Generator``, so the same on every machine); a UserError when ``subset`` is not a
    count in [2, len(data)]."""
    total = len(data)
    if isinstance(subset, bool) or not isinstance(subset, int) or not (2 <= subset <= total):
        raise UserError(
            f"{subset_setting} {subset!r} is out of range: {data.name} has {total} training "
            f"images; pass an integer in [2, {total}]"
        )
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:subset]


def train_val_split(
    data: ImageData,
    val_fraction: float,
    seed: int,
    subset: int | None = None,
    *,
    subset_setting: str = "subset",
) -> tuple[ImageData, ImageData]:
    """Reproducible split; subset = number of training images kept (val is val_fraction of it).

    One seeded permutation (a CPU ``torch.Generator``, so the split is the same on every machine)
    picks ``subset`` images (all when None); the first ``round(val_fraction * n)`` of them, at
    least one, are the validation split and the rest the training split.

    ``subset`` is checked against the data set's size here, the first place that knows it (the
    CLI has already checked it against ``common.bounds.MAX_SUBSET``); ``subset_setting`` is what
    the message calls it (the CLI passes ``--subset``).
    """
    total = len(data)
    if not (0.0 < val_fraction < 1.0):
        raise UserError(
            f"val_fraction={val_fraction!r} must lie strictly between 0 and 1 (e.g. 0.1)"
        )
    kept = total if subset is None else subset
    order = _seeded_order(data, kept, seed, subset_setting)
    n_val = min(kept - 1, max(1, round(val_fraction * kept)))
    val = data.take(order[:n_val], name=f"{data.name}:val")
    train = data.take(order[n_val:], name=f"{data.name}:train")
    return train, val


def validation_split(
    data: ImageData,
    own_val: ImageData | None,
    val_fraction: float,
    seed: int,
    subset: int | None = None,
    *,
    subset_setting: str = "subset",
) -> tuple[ImageData, ImageData]:
    """(train, validation): the data set's own labelled validation split when it has one
    (``own_val``, see :func:`load_splits`; ``subset`` then caps the training images and
    ``val_fraction`` is not used), else :func:`train_val_split`'s carved one."""
    if own_val is None:
        return train_val_split(data, val_fraction, seed, subset, subset_setting=subset_setting)
    return take_subset(data, subset, seed, subset_setting=subset_setting), own_val
