"""The learning-rate curve and the device helpers."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from common.errors import UserError
from trainers.device import peak_memory_bytes, reproducible, resolve_device
from trainers.schedule import learning_rate, warmup_epochs_used


def test_warmup_then_cosine() -> None:
    rates = [learning_rate(s, 10, 4, lr=0.01, final_lr=0.001) for s in range(10)]
    assert rates[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert rates[4] == pytest.approx(0.01)
    assert rates[-1] == pytest.approx(0.001)
    middle = 0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 2 / 5))
    assert rates[6] == pytest.approx(middle)
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(rates[3:]))


def test_warmup_is_clipped() -> None:
    assert (warmup_epochs_used(5, 55), warmup_epochs_used(5, 3), warmup_epochs_used(5, 1)) == (
        5,
        2,
        0,
    )


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(UserError, match=r"unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(UserError, match=r"'meta' is not supported"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_cuda() -> None:
    with pytest.raises(UserError, match=r"device cuda:1 was requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_reproducible_restores_global_state() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with reproducible(torch.device("cpu"), deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_cpu_peak_memory_is_the_process_peak() -> None:
    assert peak_memory_bytes(torch.device("cpu")) > 10 * 2**20
