"""Settings shared by every test: ``gpu`` tests are skipped, with the reason, without CUDA;
``ray_tmp`` is a short temporary root for the tests that start Ray."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``pytest -m gpu`` on a machine without CUDA reports every GPU test as skipped (with why)
    instead of failing in its first CUDA call; torch is imported only when one was selected."""
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in gpu:
        item.add_marker(skip)


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A short temporary root for Ray's files (``RAY_TMPDIR``): Ray's socket paths must stay
    under 108 bytes, which pytest's own ``tmp_path`` can exceed."""
    path = Path(tempfile.mkdtemp(prefix="effnas-ray-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
