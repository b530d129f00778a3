"""`search train --test` and `search evaluate` end to end: the same test count, to the image, and
one-line errors for every bad input."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from search.cli import main
from tests.trainers.conftest import REAL_FASHION_MNIST, idx_bytes
from tests.trainers.test_train_cli import _one_error_line

FAST = ["--expansion", "1", "--resolution", "16", "--batch-size", "16", "--threads", "1"]
TRAIN, TEST = 300, 200


@pytest.fixture(scope="module")
def small_fashion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Fashion-MNIST directory of the first 300 training and 200 test images of the real data
    set (random 28 x 28 images in 10 classes where it is not installed)."""
    directory = tmp_path_factory.mktemp("fashion")
    if REAL_FASHION_MNIST.is_dir():
        from trainers import load_dataset

        train, test = load_dataset("fashion-mnist")
        splits = {"train": (train, TRAIN), "t10k": (test, TEST)}
        arrays = {
            prefix: (data.images[:count, 0].numpy(), data.labels[:count].numpy())
            for prefix, (data, count) in splits.items()
        }
    else:
        rng = np.random.default_rng(0)
        arrays = {
            prefix: (rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n))
            for prefix, n in (("train", TRAIN), ("t10k", TEST))
        }
    for prefix, (images, labels) in arrays.items():
        (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return directory


@pytest.fixture(scope="module")
def saved(small_fashion: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`search train --test --save DIR --json` once; returns (DIR, the printed record)."""
    directory = tmp_path_factory.mktemp("run") / "saved"
    argv = ["train", "--data-dir", str(small_fashion), "--epochs", "1", "--device", "cpu", *FAST]
    out = io.StringIO()  # capsys is per test; this fixture runs once per module
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main([*argv, "--lr", "0.05", "--test", "--save", str(directory), "--json"]) == 0
    return directory, json.loads(out.getvalue())


def test_train_test_equals_evaluate(
    saved: tuple[Path, dict], small_fashion: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, record = saved
    assert record["test_images"] == TEST and record["train_images"] == 270
    assert record["test_accuracy"] == record["test_correct"] / TEST
    assert (
        record["input"]["mean"]
        == json.loads((directory / "spec.json").read_text())["input"]["mean"]
    )
    result = json.loads((directory / "result.json").read_text())
    assert (result["test_correct"], result["test_images"]) == (record["test_correct"], TEST)

    argv = ["evaluate", "--weights", str(directory), "--data-dir", str(small_fashion)]
    counts = []
    for _ in range(2):  # deterministic: the same count twice
        assert main([*argv, "--threads", "1", "--json"]) == 0
        evaluated = json.loads(capsys.readouterr().out)
        counts.append(evaluated["test_correct"])
    assert counts == [record["test_correct"]] * 2
    assert evaluated["dataset"] == "fashion-mnist"  # from the input contract
    assert evaluated["test_images"] == TEST and evaluated["split"] == "test"
    assert evaluated["spec"] == record["spec"] and evaluated["device"] == "cpu"
    assert evaluated["weights"] == str(directory / "weights.pt")

    assert main([*argv, "--dataset", "fashion-mnist"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert rows["test_correct"] == str(record["test_correct"]) and rows["test_images"] == "200"
    assert rows["dataset"] == "fashion-mnist" and float(rows["test_accuracy"]) >= 0.0


def test_train_test_without_save(small_fashion: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--data-dir", str(small_fashion), "--epochs", "1", "--device", "cpu", *FAST]
    assert main([*argv, "--subset", "40", "--test"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert rows["test_images"] == str(TEST) and "weights_dir" not in rows
    assert json.loads(rows["input"])["resolution"] == 16


def test_without_test_flag_no_test_figures(
    small_fashion: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--data-dir", str(small_fashion), "--epochs", "1", "--device", "cpu", *FAST]
    assert main([*argv, "--subset", "40", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert not any(key.startswith("test_") for key in record)


def test_evaluate_errors_are_one_line(
    saved: tuple[Path, dict],
    small_fashion: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cifar_root: Callable[[str], Path],
) -> None:
    directory, _ = saved
    data = ["--data-dir", str(small_fashion)]

    def error(weights: Path, *flags: str) -> str:
        return _one_error_line(capsys, ["evaluate", "--weights", str(weights), *flags])

    assert "is not a directory" in error(tmp_path / "missing", *data)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no spec.json; it must hold spec.json and weights.pt" in error(empty, *data)

    document = json.loads((directory / "spec.json").read_text())
    weights = (directory / "weights.pt").read_bytes()

    def copy(name: str, spec: dict | str, weights_bytes: bytes | None = weights) -> Path:
        target = tmp_path / name
        target.mkdir()
        (target / "spec.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
        if weights_bytes is not None:
            (target / "weights.pt").write_bytes(weights_bytes)
        return target

    assert "has no weights.pt" in error(copy("no-weights", document, None), *data)
    old = {k: v for k, v in document.items() if k != "input"}
    assert "has no input contract" in error(copy("old", old), *data)
    assert "spec is not valid JSON" in error(copy("bad-json", "{"), *data)
    assert "is not a saved state dict" in error(copy("garbage", document, b"not torch"), *data)
    wider = copy("wider", {**document, "expansion": 2})
    assert "weights.pt does not match" in error(wider, *data)
    assert "unknown dataset 'imagenet'" in error(directory, "--dataset", "imagenet")
    assert "--threads" in error(directory, *data, "--threads", "0")
    cifar100 = ["--dataset", "cifar100", "--data-dir", str(cifar_root("cifar100"))]
    assert "has 100 classes but the network was built for classes=10" in error(directory, *cifar100)
    cifar10 = ["--dataset", "cifar10", "--data-dir", str(cifar_root("cifar10"))]
    assert "3-channel images" in error(directory, *cifar10)
    if not torch.cuda.is_available():
        assert "CUDA is not available" in error(directory, *data, "--device", "cuda")
