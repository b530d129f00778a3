"""train_trial on real Fashion-MNIST and on tiny synthetic data (CPU, float32, deterministic)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from space import ArchSpec, build_model, count_spec
from tests.trainers.random_data import random_data
from trainers import EpochReport, ImageData, TrainConfig, load_dataset, train_trial, train_val_split

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# expansion 1 at 32 px: 21 MMACs, about 10x cheaper than the 56 px paper preset on 2 CPU cores;
# one thread, because other test processes may share the cores (see trainers.device.cpu_threads)
SMALL = ArchSpec(expansion=1, resolution=32, classes=10)
TINY = ArchSpec(expansion=1, resolution=8, classes=3)


@pytest.fixture(scope="module")
def fashion() -> ImageData:
    if not REAL_FASHION_MNIST.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    return load_dataset("fashion-mnist")[0]


def test_one_epoch_on_2000_real_images_learns(fashion: ImageData) -> None:
    train, val = train_val_split(fashion, 0.1, seed=0, subset=2000)
    reports: list[EpochReport] = []
    started = time.perf_counter()
    result = train_trial(
        SMALL,
        train,
        val,
        TrainConfig(epochs=1, batch_size=16, lr=0.02, threads=1),
        on_epoch=lambda r: reports.append(r) is not None,
    )
    elapsed = time.perf_counter() - started
    print(f"1 epoch, 1800 images: val accuracy {result.accuracy:.3f} in {elapsed:.1f} s")
    assert (len(train), len(val)) == (1800, 200)
    assert result.accuracy > 0.4  # chance is 0.1
    assert result.epochs_run == 1 and not result.stopped_early
    assert reports == [
        EpochReport(1, 1, result.accuracy, result.loss, reports[0].train_loss, reports[0].seconds)
    ]
    assert result.accuracy_per_epoch == (result.accuracy,)
    assert 0.0 < result.loss < 2.3 and result.images_per_second > 0
    counted = count_spec(SMALL)
    assert (result.macs, result.params) == (counted.macs, counted.params) == (21_077_760, 800_082)


def test_same_seed_same_accuracy(fashion: ImageData, tmp_path: Path) -> None:
    train, val = train_val_split(fashion, 0.25, seed=1, subset=400)
    spec = SMALL.replace(resolution=16)
    config = TrainConfig(epochs=2, warmup_epochs=1, batch_size=32, lr=0.03, seed=5, threads=1)
    first = train_trial(spec, train, val, config, save_dir=tmp_path / "a")
    second = train_trial(spec, train, val, config, save_dir=tmp_path / "b")
    other = train_trial(spec, train, val, dataclasses.replace(config, seed=6))
    assert first.accuracy_per_epoch == second.accuracy_per_epoch
    assert first.loss_per_epoch == second.loss_per_epoch
    assert first.loss_per_epoch != other.loss_per_epoch
    weights_a = torch.load(tmp_path / "a" / "weights.pt")
    weights_b = torch.load(tmp_path / "b" / "weights.pt")
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_callback_stops_early_and_save_dir(tmp_path: Path) -> None:
    train, val = random_data(40, 0), random_data(10, 1)
    seen: list[int] = []

    def stop_after_two(report: EpochReport) -> bool:
        seen.append(report.epoch)
        assert report.epochs == 5 and 0.0 <= report.accuracy <= 1.0
        return report.epoch == 2

    result = train_trial(
        TINY,
        train,
        val,
        TrainConfig(epochs=5, batch_size=16, threads=1),
        on_epoch=stop_after_two,
        save_dir=tmp_path / "out",
    )
    assert seen == [1, 2] and result.epochs_run == 2 and result.stopped_early
    assert len(result.accuracy_per_epoch) == 2
    assert ArchSpec.from_json((tmp_path / "out" / "spec.json").read_text()) == TINY
    model = build_model(TINY)
    model.load_state_dict(torch.load(tmp_path / "out" / "weights.pt"))
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert saved["accuracy_per_epoch"] == list(result.accuracy_per_epoch)


def test_stop_on_last_epoch_is_not_early() -> None:
    result = train_trial(
        TINY,
        random_data(20, 0),
        random_data(5, 1),
        TrainConfig(epochs=1, threads=1),
        on_epoch=lambda r: True,
    )
    assert result.epochs_run == 1 and not result.stopped_early


def test_classes_must_match() -> None:
    with pytest.raises(UserError, match=r"classes=10 but random has 3 classes; build the spec"):
        train_trial(TINY.replace(classes=10), random_data(8, 0), random_data(4, 1), TrainConfig())


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("epochs", 0, "epochs=0 must be a positive integer"),
        ("batch_size", -1, "batch_size=-1 must be a positive integer"),
        ("lr", 0.0, "lr=0.0"),
        ("label_smoothing", 1.0, "label_smoothing=1.0"),
    ],
)
def test_config_errors(field: str, value: float, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        TrainConfig(**{field: value})


@pytest.mark.gpu
def test_cuda_fast_path(fashion: ImageData) -> None:
    train, val = train_val_split(fashion, 0.1, seed=0, subset=5000)
    result = train_trial(
        ArchSpec(classes=10), train, val, TrainConfig(epochs=2, batch_size=128, device="cuda")
    )
    assert result.accuracy > 0.5 and result.peak_memory_bytes > 0


@pytest.mark.slow
def test_torch_compile_flag() -> None:
    """torch.compile on the CPU needs a C++ compiler and takes about two minutes here."""
    config = TrainConfig(epochs=2, batch_size=16, threads=1)
    data, val = random_data(40, 0), random_data(10, 1)
    eager = train_trial(TINY, data, val, config)
    compiled = train_trial(TINY, data, val, dataclasses.replace(config, compile=True))
    assert compiled.epochs_run == 2
    # the same first epoch; later ones drift apart (fused kernels round differently)
    assert compiled.loss_per_epoch[0] == pytest.approx(eager.loss_per_epoch[0], rel=1e-2)
