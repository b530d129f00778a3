"""A real search on a real GPU (``pytest -m gpu``; skipped without CUDA): two trials sharing one
GPU through Ray's fractional GPUs, under a private MPS daemon when its tools are installed; and
the CUDA allocator's own out-of-memory error.

What the default tests cannot reach: Ray handing each trial its GPU share (``cuda:0`` in the
worker), the CUDA memory plan from the device's own free figure inside the worker, the
allocator's peak memory reported back, MPS serving real trial processes, and the allocator's
error as the worker sees it.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.cli import main
from search.study.schema import (
    COMPLETE,
    INFEASIBLE,
    MEMORY_ESTIMATE_BYTES,
    MICRO_BATCH,
    PEAK_MEMORY_BYTES,
    STATUS,
)

pytestmark = [pytest.mark.gpu, pytest.mark.ray]


def test_two_trials_share_a_gpu(tmp_path: Path, tiny_args: list[str]) -> None:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    import torch

    url = f"sqlite:///{tmp_path / 'gpu.db'}"
    args = ["run", *tiny_args, "--trials", "2", "--concurrency", "2", "--device", "cuda"]
    assert main([*args, "--gpus-per-trial", "0.5", "--study", "gpu", "--storage", url]) == 0
    study = optuna.load_study(study_name="gpu", storage=url)
    trained = [t for t in study.trials if t.user_attrs.get(STATUS) != INFEASIBLE]
    assert len(trained) == 2 and all(t.user_attrs[STATUS] == COMPLETE for t in trained)
    half = 0.9 * torch.cuda.mem_get_info()[1] * 0.5  # each trial plans for half the GPU
    for trial in trained:
        attrs = trial.user_attrs
        assert attrs[PEAK_MEMORY_BYTES] > 0 and 0 < attrs[MEMORY_ESTIMATE_BYTES] <= half
        assert attrs[MICRO_BATCH] == 64  # the tiny batch fits whole


def test_a_real_cuda_out_of_memory_is_a_memory_fault() -> None:
    """The allocator's own error (not one the tests construct): twice the GPU's memory in one
    tensor is ``torch.OutOfMemoryError``, which the worker names ``memory``."""
    import torch

    from common.errors import FaultKind
    from search.worker.faults import failure_fault

    total = torch.cuda.mem_get_info()[1]
    with pytest.raises(torch.OutOfMemoryError) as caught:
        torch.empty(2 * total, dtype=torch.uint8, device="cuda")
    fault = failure_fault(caught.value)
    assert fault.kind == FaultKind.MEMORY and fault.reason.startswith("out of memory: ")
