"""Random uint8 image sets for trainer tests that need data but not real images."""

from __future__ import annotations

import torch

from trainers import ImageData


def random_data(count: int, seed: int, channels: int = 3, size: int = 9) -> ImageData:
    """``count`` random ``channels x size x size`` images in 3 classes, the same for a seed."""
    generator = torch.Generator().manual_seed(seed)
    shape = (count, channels, size, size)
    return ImageData(
        images=torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8),
        labels=torch.randint(0, 3, (count,), generator=generator),
        classes=3,
        name="random",
    )
