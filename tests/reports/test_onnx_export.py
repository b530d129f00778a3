"""`search export --onnx`: model.onnx runs without this package and computes what PyTorch does."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from reports.onnx_export import ONNX_FILE, ONNX_RECORD, export_onnx
from search.cli import main
from space import ArchSpec, build_model
from trainers.augment import InputContract
from trainers.data import load_dataset
from trainers.device import cpu_threads

pytest.importorskip("onnxruntime")

SPEC = ArchSpec(block="condconv", expansion=1, resolution=32, classes=10)
CONTRACT = InputContract(32, 1, 10, (72.9,), (90.1,), "fashion-mnist")

STANDALONE = """
import sys, numpy as np, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
images = np.load(sys.argv[2])
batch = session.get_inputs()[0].shape[0]
logits = np.concatenate([session.run(None, {"images": images[i : i + batch]})[0]
                         for i in range(0, len(images), batch)])
print(" ".join(str(c) for c in logits.argmax(1)))
print("modules:", sorted(m for m in ("torch", "effnas", "space") if m in sys.modules))
"""


def _saved(
    directory: Path,
    spec: ArchSpec = SPEC,
    contract: InputContract = CONTRACT,
    steps: int = 20,
) -> Path:
    """A saved directory as `search final` writes it, with seeded weights trained ``steps``
    steps on real images: weights and running statistics that tell the test images apart (a
    random network puts them all in one class). Trained on 2 threads whatever the process's
    count: CPU training is reproducible per thread count, and on 1 thread these 20 steps leave a
    degenerate network (logits near 1e6) whose float32 rounding no tolerance can check."""
    directory.mkdir(parents=True)
    (directory / "spec.json").write_text(
        json.dumps({**spec.to_dict(), "input": contract.to_dict()}, sort_keys=True)
    )
    torch.manual_seed(3)
    model = build_model(spec)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics: the average over the steps
    train, _test = load_dataset("fashion-mnist")
    transform = contract.transform(torch.device("cpu"))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with cpu_threads(2):
        for step in range(steps):
            rows = slice(64 * step, 64 * (step + 1))
            loss = torch.nn.functional.cross_entropy(
                model(transform.eval(train.images[rows])), train.labels[rows]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    torch.save(model.state_dict(), directory / "weights.pt")
    return directory


def test_model_onnx_equals_pytorch_and_runs_with_onnxruntime_and_numpy_alone(
    tmp_path: Path,
) -> None:
    directory = _saved(tmp_path / "net")
    record = export_onnx(directory, batch=4, images=32)
    assert (record.opset, record.batch, record.images) == (18, 4, 32)
    assert record.input_shape == (4, 3, 32, 32) and record.dataset == "fashion-mnist"
    assert record.same_class == 32
    assert record.max_abs_diff <= 1e-4 + 1e-4 * record.max_abs_logit
    assert json.loads((directory / ONNX_RECORD).read_text())["max_abs_diff"] == record.max_abs_diff
    # the same test images, through PyTorch here and through onnxruntime in a process that
    # imports only onnxruntime and numpy (no torch, no effnas)
    _train, test = load_dataset("fashion-mnist")
    inputs = CONTRACT.transform(torch.device("cpu")).eval(test.images[:32])
    np.save(tmp_path / "images.npy", inputs.numpy())
    model = build_model(SPEC).eval()
    model.load_state_dict(torch.load(directory / "weights.pt"))
    with torch.no_grad():
        expected = model(inputs).argmax(1).tolist()
    done = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE, str(directory / ONNX_FILE), "images.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    classes, modules = done.stdout.strip().splitlines()
    assert [int(c) for c in classes.split()] == expected
    assert len(set(expected)) > 1  # the weights tell images apart: a real comparison
    assert modules == "modules: []"


def test_search_export_onnx_writes_and_states_the_check(
    make_study: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = InputContract(56, 1, 10, (72.9,), (90.1,), "fashion-mnist")
    saved = _saved(tmp_path / "search" / "trial-1", ArchSpec(classes=10), contract, 0)
    url = make_study(weights_dir=saved)
    out = tmp_path / "out"
    argv = ["export", "--study", "pareto-test", "--trial", "1", "--storage", url, "--onnx"]
    capsys.readouterr()
    assert main([*argv, "--out", str(out), "--onnx-batch", "8"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"wrote {out / ONNX_FILE}: opset 18, input images [8, 3, 56, 56]")
    assert "onnxruntime = PyTorch on 64 fashion-mnist test images" in last
    assert "same class 64/64" in last
    # a trial without saved weights: one line, exit 2
    assert main([*argv[:4], "0", *argv[5:], "--out", str(tmp_path / "none")]) == 2
    assert "--onnx needs the trial's weights" in capsys.readouterr().err
