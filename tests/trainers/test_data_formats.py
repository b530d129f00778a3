"""Reading each on-disk format, its error messages, and the reproducible split."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import UserError
from trainers import ImageData, load_dataset, train_val_split
from trainers.data import load_splits, validation_split

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def write_image(path: Path, value: int, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, colour).save(path)


# ----- Fashion-MNIST (IDX) ------------------------------------------------------------------
def test_fashion_mnist_idx(fashion_dir: Path) -> None:
    train, test = load_dataset("fashion-mnist", fashion_dir)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (5, 1, 28, 28)
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert train.images[3].unique().tolist() == [60]
    assert (train.classes, train.name, test.name) == (
        10,
        "fashion-mnist:train",
        "fashion-mnist:test",
    )


def test_fashion_mnist_uncompressed(fashion_dir: Path) -> None:
    for path in fashion_dir.glob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    train, _ = load_dataset("fashion-mnist", fashion_dir)
    assert len(train) == 12


@pytest.mark.skipif(not REAL_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist() -> None:
    train, test = load_dataset("fashion-mnist")
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10


def test_fashion_mnist_truncated(fashion_dir: Path) -> None:
    path = fashion_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz is corrupt or truncated"):
        load_dataset("fashion-mnist", fashion_dir)


def test_fashion_mnist_short_data(fashion_dir: Path) -> None:
    path = fashion_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-28]))
    with pytest.raises(UserError, match=r"3892 data bytes for shape \(5, 28, 28\)"):
        load_dataset("fashion-mnist", fashion_dir)


def test_fashion_mnist_not_gzip(fashion_dir: Path) -> None:
    (fashion_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(UserError, match="cannot decompress"):
        load_dataset("fashion-mnist", fashion_dir)


def test_fashion_mnist_missing(tmp_path: Path, fashion_dir: Path) -> None:
    with pytest.raises(UserError, match=r"apt-get install dataset-fashion-mnist.*data_dir"):
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    (fashion_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte\[.gz\]"):
        load_dataset("fashion-mnist", fashion_dir)


# ----- CIFAR (pickles) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "train_n", "classes"), [("cifar10", 20, 10), ("cifar100", 6, 100)]
)
def test_cifar(cifar_root: Callable[[str], Path], name: str, train_n: int, classes: int) -> None:
    parent = cifar_root(name)
    train, test = load_dataset(name, parent)
    assert train.images.shape == (train_n, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.classes == classes and int(train.labels.max()) < classes
    directory = next(parent.iterdir())
    with (
        (directory / "test").open("rb")
        if name == "cifar100"
        else (directory / "test_batch").open("rb") as handle
    ):
        raw = pickle.load(handle, encoding="bytes")
    # row-major 1024 R, 1024 G, 1024 B bytes per image
    assert test.images[1, 2, 0, 5].item() == raw[b"data"][1][2048 + 5]
    assert test.images[2, 0, 31, 31].item() == raw[b"data"][2][1023]
    again, _ = load_dataset(name, directory)  # the pickle directory itself works too
    assert torch.equal(again.images, train.images)


def test_cifar_truncated(cifar_root: Callable[[str], Path]) -> None:
    path = cifar_root("cifar10") / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UserError, match=r"data_batch_3 is corrupt or truncated"):
        load_dataset("cifar10", path.parent)


def test_cifar_refuses_code(cifar_root: Callable[[str], Path]) -> None:
    path = cifar_root("cifar10") / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": os.getcwd}))  # a global outside numpy
    with pytest.raises(UserError, match=r"refusing to load"):
        load_dataset("cifar10", path.parent)


def test_cifar_missing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no cifar100 files .* cifar-100-python/test"):
        load_dataset("cifar100", tmp_path)
    with pytest.raises(UserError, match=r"needs data_dir"):
        load_dataset("cifar10")


# ----- image folders ------------------------------------------------------------------------
def test_folder_train_val(tmp_path: Path) -> None:
    for name, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            write_image(tmp_path / "train" / name / f"{i}.png", value)
        write_image(tmp_path / "val" / name / "x.jpg", value)
    train, test = load_dataset("folder", tmp_path)
    assert train.images.shape == (6, 3, 8, 8) and test.images.shape == (2, 3, 8, 8)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 1]
    assert train.images[4, :, 0, 0].tolist() == [200, 55, 7]
    assert abs(int(test.images[0, 0, 3, 3]) - 10) <= 2  # JPEG is lossy


def test_folder_with_labelled_val_and_test_tests_on_test_and_validates_on_val(
    tmp_path: Path,
) -> None:
    """Both held-out folders labelled: test/ is the test split (what `search final`, `--test`
    and `search evaluate` score), val/ the validation split (what a search validates on)."""
    for name, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            write_image(tmp_path / "train" / name / f"{i}.png", value)
        write_image(tmp_path / "val" / name / "v.png", value + 1)
        for i in range(2):
            write_image(tmp_path / "test" / name / f"t{i}.png", value + 2)
    train, test, val = load_splits("folder", tmp_path)
    assert (len(train), len(test)) == (6, 4) and val is not None and len(val) == 2
    assert test.images[:, 0, 0, 0].tolist() == [12, 12, 202, 202]  # test/, not val/
    assert val.images[:, 0, 0, 0].tolist() == [11, 201] and val.labels.tolist() == [0, 1]
    assert load_dataset("folder", tmp_path)[1].images.equal(test.images)
    searched, validating = validation_split(train, val, 0.1, seed=0, subset=4)
    assert (len(searched), validating) == (4, val)  # val/ whole; --subset caps training images
    carved, held = validation_split(train, None, 0.5, seed=0)
    assert (len(carved), len(held)) == (3, 3)  # no own val/: carved from the training images


def test_folder_tiny_imagenet_layout(tmp_path: Path) -> None:
    for wnid, value in (("n01", 30), ("n02", 90), ("n03", 150)):
        for i in range(2):
            write_image(tmp_path / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", value, (6, 6))
        (tmp_path / "train" / wnid / f"{wnid}_boxes.txt").write_text("ignored\n")
    write_image(tmp_path / "val" / "images" / "val_0.JPEG", 90, (6, 6))
    write_image(tmp_path / "val" / "images" / "val_1.JPEG", 150, (6, 6))
    (tmp_path / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn02\t0\t0\t5\t5\nval_1.JPEG\tn03\t1\t1\t4\t4\n"
    )
    write_image(tmp_path / "test" / "images" / "test_0.JPEG", 1, (6, 6))  # unlabelled
    train, test = load_dataset("folder", tmp_path)
    assert (train.classes, len(train), len(test)) == (3, 6, 2)
    assert test.labels.tolist() == [1, 2]  # the labelled val/ is the only split to test on
    assert load_splits("folder", tmp_path)[2] is None


def test_folder_without_split_holds_out_every_tenth(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for i in range(12):
            write_image(tmp_path / name / f"{i:02d}.png", 5 * i, mode="L")
    write_image(tmp_path / "b" / "big.png", 255, size=(16, 16), mode="L")  # resized to 8x8
    train, test = load_dataset("folder", tmp_path)
    assert train.images.shape[1:] == (1, 8, 8)  # all grey: stored with one channel
    assert (len(train), len(test)) == (23, 2)
    assert test.labels.tolist() == [0, 1]
    assert int(test.images[0].float().mean()) == 5 * 9  # 10th image of class a is 09.png


def test_folder_corrupt_image(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_image(tmp_path / "train" / name / "0.png", 1)
    (tmp_path / "train" / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=r"cannot read image .*1.png"):
        load_dataset("folder", tmp_path)


def test_folder_needs_two_classes(tmp_path: Path) -> None:
    write_image(tmp_path / "only" / "0.png", 1)
    with pytest.raises(UserError, match="at least 2 classes"):
        load_dataset("folder", tmp_path)


def test_unknown_dataset() -> None:
    with pytest.raises(UserError, match=r"unknown dataset 'mnist'.*fashion-mnist"):
        load_dataset("mnist")


# ----- split ----------------------------------------------------------------------------------
def _numbered(count: int) -> ImageData:
    images = torch.arange(count, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ImageData(
        images=images.view(count, 1, 1, 1).expand(count, 1, 2, 2).clone(),
        labels=torch.arange(count) % 3,
        classes=3,
        name="numbers",
    )


def test_split_is_reproducible_and_disjoint() -> None:
    data = _numbered(200)
    train, val = train_val_split(data, 0.1, seed=7, subset=100)
    again, val_again = train_val_split(data, 0.1, seed=7, subset=100)
    other, _ = train_val_split(data, 0.1, seed=8, subset=100)
    assert (len(train), len(val)) == (90, 10)
    assert torch.equal(train.images, again.images) and torch.equal(val.labels, val_again.labels)
    assert not torch.equal(train.images, other.images)
    ids = set(train.images[:, 0, 0, 0].tolist()) | set(val.images[:, 0, 0, 0].tolist())
    assert len(ids) == 100
    full_train, full_val = train_val_split(data, 0.25, seed=0)
    assert (len(full_train), len(full_val)) == (150, 50)
    assert np.array_equal(full_train.labels.numpy(), (full_train.images[:, 0, 0, 0] % 3).numpy())


@pytest.mark.parametrize(
    ("fraction", "subset", "fragment"),
    [(0.0, None, "strictly between 0 and 1"), (0.1, 1, "subset 1"), (0.1, 500, "subset 500")],
)
def test_split_errors(fraction: float, subset: int | None, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        train_val_split(_numbered(200), fraction, seed=0, subset=subset)
