"""`search macs` and `search space fit` from the command line."""

from __future__ import annotations

import json

import pytest

from search.cli import main
from space import ArchSpec
from space.memory import estimate_memory


def test_macs_json_paper_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["macs", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["macs"] == 193_898_304
    assert record["params"] == 2_029_572
    assert isinstance(record["macs"], int) and isinstance(record["params"], int)
    assert [layer["name"] for layer in record["layers"]][:2] == ["stem", "stage1.standard+skip"]
    assert sum(layer["macs"] for layer in record["layers"]) == record["macs"]


def test_macs_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["macs", "--block", "se", "--classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "stem" in out and "classifier" in out
    lines = out.strip().splitlines()
    assert lines[-2].split()[1] == f"{195_178_816 - 1280 * 90:,}"
    assert lines[-1].startswith("memory: ") and "at batch 256 (fp32)" in lines[-1]


def test_macs_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["macs"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "memory: 7450.1 MiB for training at batch 256 (fp32): 26.6 MiB fixed + 29.00 MiB per image"
    )
    assert main(["macs", "--json", "--batch-size", "64", "--precision", "bf16"]) == 0
    record = json.loads(capsys.readouterr().out)["memory"]
    estimate = estimate_memory(ArchSpec(), "bf16")
    assert record == {"batch_size": 64, "bytes": estimate.bytes_at(64), **estimate.to_dict()}
    assert record["bytes"] == record["fixed_bytes"] + 64 * record["per_image_bytes"]
    assert record["precision"] == "bf16" and record["per_image_bytes"] < 29.00 * 2**20 / 1.9


def test_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["space", "fit", "--budget-flops", "2.6e9", "--b0", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["phi"] == 4.14 and record["macs"] <= 2.6e9 and record["resolution"] == 96


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["space", "fit", "--budget-flops", "-1"], "not a positive number"),
        (["space", "fit", "--budget-flops", "1e6"], "below the smallest network"),
        (["macs", "--alpha", "0.5"], "alpha=0.5"),
        (["macs", "--block", "resnet"], "block='resnet'"),
        (["macs", "--expansion", "many"], "'many' is not a valid integer"),
        (["macs", "--nope"], "No such option"),
        (["macs", "--precision", "fp16"], "'fp16' is not one of 'fp32', 'bf16'"),
        (["macs", "--batch-size", "0"], "--batch-size 0 must be a positive integer"),
    ],
)
def test_bad_values_one_line_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert fragment in err
