"""Settings shared by every test: ``gpu`` tests are skipped, with the reason, without CUDA."""

from __future__ import annotations

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
