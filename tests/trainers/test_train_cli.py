"""`search train` end to end: records, --save / --spec round trip, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search.cli import main

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
