"""`search train` end to end: records, --save / --spec round trip, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from search.cli import main
from search.cli.train import parse_size
from space import ArchSpec
from space.memory import estimate_memory
from trainers.device import CPU_PLANNED_FRACTION

FAST = ["--expansion", "1", "--resolution", "8", "--batch-size", "4", "--threads", "1"]


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


def test_train_json_save_and_retrain(
    fashion_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save = tmp_path / "run"
    argv = ["train", "--data-dir", str(fashion_dir), "--epochs", "2", "--device", "cpu", *FAST]
    assert main([*argv, "--save", str(save), "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["spec"].endswith("res=8,classes=10")  # classes from the data set
    assert (record["train_images"], record["val_images"], record["epochs_run"]) == (11, 1, 2)
    assert record["weights_dir"] == str(save) and record["device"] == "cpu"
    assert len(record["accuracy_per_epoch"]) == 2 and record["macs"] > 0
    progress = captured.err.strip().splitlines()
    assert progress[0].startswith("training block=standard,e=1")
    assert [line.split()[1] for line in progress[1:]] == ["1/2", "2/2"]
    assert {p.name for p in save.iterdir()} == {"spec.json", "weights.pt", "result.json"}
    assert "classifier.weight" in torch.load(save / "weights.pt")

    retrain = ["train", "--data-dir", str(fashion_dir), "--epochs", "2", "--device", "cpu"]
    assert main([*retrain, "--batch-size", "4", "--spec", str(save / "spec.json"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["spec"] == record["spec"] and again["spec_id"] == record["spec_id"]


def test_train_table(fashion_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data-dir", str(fashion_dir), "--epochs", "1", *FAST]) == 0
    out = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert rows["dataset"] == "fashion-mnist" and rows["epochs_run"] == "1"
    assert 0.0 <= float(rows["accuracy"]) <= 1.0


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda b: b[: len(b) // 2], "train-images-idx3-ubyte.gz is corrupt or truncated"),
        (lambda b: b"garbage" + b, "cannot decompress"),
    ],
)
def test_corrupt_file_is_one_line(
    fashion_dir: Path, capsys: pytest.CaptureFixture[str], damage: object, fragment: str
) -> None:
    path = fashion_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    line = _one_error_line(capsys, ["train", "--data-dir", str(fashion_dir), "--epochs", "1"])
    assert fragment in line


def test_errors_are_one_line(
    fashion_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(fashion_dir)]
    assert "unknown dataset 'imagenet'" in _one_error_line(
        capsys, ["train", "--dataset", "imagenet"]
    )
    assert "apt-get install dataset-fashion-mnist" in _one_error_line(
        capsys, ["train", "--data-dir", str(tmp_path / "missing")]
    )
    assert "--classes 7 does not match fashion-mnist" in _one_error_line(
        capsys, ["train", *data, "--classes", "7"]
    )
    assert "--subset 99" in _one_error_line(capsys, ["train", *data, "--subset", "99"])
    assert "epochs=0" in _one_error_line(capsys, ["train", *data, "--epochs", "0"])
    assert "unknown device 'tpu9'" in _one_error_line(capsys, ["train", *data, "--device", "tpu9"])
    if not torch.cuda.is_available():
        assert "CUDA is not available" in _one_error_line(
            capsys, ["train", *data, "--device", "cuda"]
        )


def test_parse_size() -> None:
    assert parse_size("8GiB") == 8 * 2**30
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size("1.5g") == 3 * 2**29
    assert parse_size("1e9") == 10**9
    assert parse_size(" 12 ") == 12


def test_max_memory_plans_micro_batches(
    fashion_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12 Fashion-MNIST images (11 train, 1 val) of 28 x 28 bytes and int64 labels are on the
    device; a limit that fits the estimate at 2 images trains batch 4 as 2 x 2 (--max-memory
    plans for CPU_PLANNED_FRACTION of what it is given)."""
    estimate = estimate_memory(ArchSpec(expansion=1, resolution=8, classes=10))
    limit = 12 * (28 * 28 + 8) + estimate.bytes_at(2)
    given = math.ceil(limit / CPU_PLANNED_FRACTION)
    argv = ["train", "--data-dir", str(fashion_dir), "--epochs", "1", "--device", "cpu", *FAST]
    assert main([*argv, "--max-memory", str(given), "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert (record["micro_batch"], record["accumulation_steps"]) == (2, 2)
    assert record["memory_estimate_bytes"] == limit
    assert "micro-batch 2 x 2, memory " in captured.err.splitlines()[0]


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--max-memory", "lots"], "--max-memory 'lots' is not a memory size"),
        (["--max-memory", "8 potatoes"], "is not a memory size; pass e.g. 8GiB"),
        (["--max-memory", "0"], "must be at least 1 byte"),
        (["--max-memory", "1KB"], "memory: needs "),
        (["--time-limit", "0"], "--time-limit"),
    ],
)
def test_limits_are_one_line(
    fashion_dir: Path, capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    argv = ["train", "--data-dir", str(fashion_dir), "--epochs", "1", "--device", "cpu", *FAST]
    assert fragment in _one_error_line(capsys, [*argv, *flags])


def test_divergence_is_one_error_line(
    fashion_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--data-dir", str(fashion_dir), "--epochs", "1", "--device", "cpu", *FAST]
    assert main([*argv, "--lr", "1e9"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[1:] == [
        "error: diverged: loss is nan at epoch 1 step 2; "
        "a lower learning rate (lr) or a smaller network may train"
    ]
