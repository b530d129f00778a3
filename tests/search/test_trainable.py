"""The Ray trainable without Ray: what it reports for a real tiny training run and for errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from common.errors import Diverged, FaultKind, InsufficientMemory, TrialFailed, TrialTimeout
from search.worker.faults import failure_fault, failure_reason
from search.worker.trial import TrialSettings, run_trial
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
    assert failed.value.kind == FaultKind.ERROR and failed.value.reason == reason


def test_out_of_memory_reasons() -> None:
    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB")).startswith(
        "out of memory: CUDA out of memory"
    )
    assert failure_reason(RuntimeError("DefaultCPUAllocator: out of memory")).startswith(
        "out of memory: "
    )
    assert failure_reason(ValueError("bad\nthing")) == "ValueError: bad thing"
    # trainer exceptions that already say what happened keep their message (common/errors.py)
    for fault in (
        Diverged(1, 3, float("nan")),
        TrialTimeout(60, 61, 1, 3),
        InsufficientMemory(3, 2),
    ):
        assert failure_reason(fault) == str(fault)
    assert failure_reason(KeyError()) == "KeyError"


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (Diverged(2, 5, float("inf")), FaultKind.DIVERGED, "diverged: loss is inf at epoch 2"),
        (TrialTimeout(60, 61.5, 1, 3), FaultKind.TIMEOUT, "timeout: 61.5 s exceeds"),
        (InsufficientMemory(2048, 1024), FaultKind.INFEASIBLE_MEMORY, "memory: needs 2.0 KiB"),
        (torch.OutOfMemoryError("CUDA out of memory."), FaultKind.MEMORY, "out of memory: CUDA"),
        (RuntimeError("CPUAllocator: out of memory"), FaultKind.MEMORY, "out of memory: CPU"),
        (ValueError("bad"), FaultKind.ERROR, "ValueError: bad"),
        # the kind comes from the type, never from how a message happens to start
        (RuntimeError("diverged: nan"), FaultKind.ERROR, "RuntimeError: diverged: nan"),
        (RuntimeError("memory: 3 GB"), FaultKind.ERROR, "RuntimeError: memory: 3 GB"),
    ],
)
def test_the_fault_kind_comes_from_the_exception_type(
    exc: BaseException, kind: FaultKind, reason: str
) -> None:
    fault = failure_fault(exc)
    assert fault.kind == kind and fault.reason.startswith(reason)
