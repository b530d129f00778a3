"""The Ray trainable without Ray: what it reports for a real tiny training run and for errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from search.worker.faults import TrialFailed
from search.worker.trial import TrialSettings, failure_reason, run_trial
from space import ArchSpec
from trainers.data import load_dataset, train_val_split


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    train, _ = load_dataset("fashion-mnist")
    return train_val_split(train, 0.25, seed=0, subset=80)


def spec(classes: int = 10) -> str:
    return ArchSpec(expansion=1, resolution=16, classes=classes).canonical()


def test_epochs_then_one_final_report(data: tuple[Any, Any], tmp_path: Path) -> None:
    reports: list[dict[str, Any]] = []
    settings = TrialSettings(2, batch_size=32, device="cpu", threads=1, weights_root=str(tmp_path))
    run_trial({"spec": spec(), "number": 3, "seed": 11}, *data, settings, reports.append)
    assert [r["final"] for r in reports] == [False, True]
    first, last = reports
    assert first["epoch"] == first["done_epochs"] == 1 and 0.0 <= first["accuracy"] <= 1.0
    assert last["done_epochs"] == last["epochs_run"] == 2 and last["number"] == 3
    assert last["accuracy_per_epoch"][0] == first["accuracy"]
    assert last["accuracy"] == last["accuracy_per_epoch"][-1]
    assert last["macs"] > 0 and last["images_per_second"] > 0
    assert last["weights_dir"] == str(tmp_path / "trial-3")
    assert (tmp_path / "trial-3" / "weights.pt").is_file()


def test_a_failing_trial_raises_its_one_line_reason(data: tuple[Any, Any]) -> None:
    reports: list[dict[str, Any]] = []
    settings = TrialSettings(epochs=1, batch_size=32, device="cpu", threads=1)
    with pytest.raises(TrialFailed) as failed:
        run_trial(
            {"spec": spec(classes=5), "number": 0, "seed": 1}, *data, settings, reports.append
        )
    assert reports == []  # no report without metrics: Ray's strict metric check would abort
    reason = str(failed.value)
    assert reason.startswith("UserError: the spec has classes=5") and "\n" not in reason


def test_out_of_memory_reasons() -> None:
    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB")).startswith(
        "out of memory: CUDA out of memory"
    )
    assert failure_reason(RuntimeError("DefaultCPUAllocator: out of memory")).startswith(
        "out of memory: "
    )
    assert failure_reason(ValueError("bad\nthing")) == "ValueError: bad thing"
    # trainer exceptions that already say what happened keep their message (trainers/errors.py)
    for message in ("diverged: loss is nan at step 3", "timeout: 61 s > 60 s", "memory: 3 GB"):
        assert failure_reason(RuntimeError(message)) == message
    assert failure_reason(KeyError()) == "KeyError"
