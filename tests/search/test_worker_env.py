"""The trial workers' environment: passive OpenMP waiting always, CUDA MPS for shared GPUs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from search.mps import ENV_KEYS
from search.worker_env import trial_worker_env
from tests.search.test_mps import fake_control


def test_openmp_waits_passively_and_the_user_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with trial_worker_env("cpu", 0.0, None, io.StringIO()) as env:
        assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with trial_worker_env("cpu", 0.0, None, io.StringIO()) as env:
        assert env == {} and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.ray
def test_the_variables_reach_ray_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local Ray started inside the context (as run_search does) hands them to its workers."""
    import ray

    from search.ray_session import ray_session

    fake_control(tmp_path, monkeypatch)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("EFFNAS_MPS", raising=False)
    keys = (*ENV_KEYS, "OMP_WAIT_POLICY")

    @ray.remote(num_cpus=1)
    def seen() -> list[str | None]:
        return [os.environ.get(key) for key in keys]

    with (
        trial_worker_env("cuda", 0.25, None, io.StringIO()) as env,
        ray_session(None, num_cpus=1, num_gpus=0, object_store_bytes=128 * 2**20),
    ):
        assert ray.get(seen.remote()) == [env[key] for key in keys]
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and all(key not in os.environ for key in keys)
