"""Shared settings for the search tests: a tiny, real Fashion-MNIST search that runs on a CPU."""

from __future__ import annotations

import pytest

# 300 images (60 held out), one epoch, 24 px, a cheap slice of the space, a budget just above
# the smallest network: a trial trains in a few seconds on one CPU thread.
TINY_ARGS = [
    "--budget-flops",
    "2.5e7",
    "--subset",
    "300",
    "--val-fraction",
    "0.2",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--resolution",
    "24",
    "--mid-conv",
    "depthwise",
    "--kernel",
    "3",
]


SPACE_TOML = 'block = ["standard", "se"]\nexpansion = [1, 2]\nse_ratio = 4\n'


@pytest.fixture(scope="session")
def tiny_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The tiny search's flags, including ``--space`` with a two-block, two-expansion space."""
    space = tmp_path_factory.mktemp("space") / "space.toml"
    space.write_text(SPACE_TOML)
    return [*TINY_ARGS, "--space", str(space)]
