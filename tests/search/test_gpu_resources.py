"""What a search on CUDA gives each trial, decided with a given GPU count instead of torch's.

``search.driver.run.resources_for`` takes the number of visible GPUs as an argument, so the
CUDA branch (GPU shares, each trial's memory share, the trial settings its workers get, whether
MPS starts) runs in the default tests on a machine without one.
"""

from __future__ import annotations

import pytest

from common.errors import UserError
from search.config import SearchConfig
from search.driver.mps import OPT_OUT, wants_mps
from search.driver.run import _trial_settings, memory_share, resources_for


def _config(**changes: object) -> SearchConfig:
    return SearchConfig(**{"budget_macs": 3e8, **changes})


def test_four_trials_share_one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """One GPU, four concurrent trials, ``--gpus-per-trial`` left to the default: a quarter of
    the GPU each, a quarter of its memory each, and MPS so their kernels run together."""
    monkeypatch.delenv(OPT_OUT, raising=False)
    config = _config(device="auto", concurrency=4)
    resources = resources_for(config, gpus=1)
    assert (resources.device, resources.gpus_per_trial, resources.num_gpus) == ("cuda", 0.25, 1)
    settings = _trial_settings(config, resources)
    assert (settings.device, settings.memory_share) == ("cuda", 0.25)
    assert wants_mps(resources.device, resources.gpus_per_trial)


def test_gpu_shares_follow_the_gpus_and_the_flag() -> None:
    two = resources_for(_config(device="cuda", concurrency=4), gpus=2)
    assert (two.gpus_per_trial, memory_share(two, 4)) == (0.5, 0.5)
    many = resources_for(_config(device="cuda", concurrency=2), gpus=8)
    assert (many.gpus_per_trial, memory_share(many, 2)) == (1.0, 1.0)  # never above one GPU
    pinned = resources_for(_config(device="cuda", concurrency=2, gpus_per_trial=0.5), gpus=1)
    assert pinned.gpus_per_trial == 0.5 and wants_mps(pinned.device, pinned.gpus_per_trial)
    joined = resources_for(_config(device="cuda", ray_address="10.0.0.1:6379"), gpus=0)
    assert (joined.device, joined.gpus_per_trial, joined.threads) == ("cuda", 1.0, 1)


def test_no_gpu_means_the_cpu_or_one_line() -> None:
    assert resources_for(_config(device="auto", concurrency=2), gpus=0).device == "cpu"
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        resources_for(_config(device="cuda"), gpus=0)
