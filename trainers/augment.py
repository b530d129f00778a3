"""Batched augmentation on the training device: resize, per-sample random crop + flip, normalise.

The recipe is docs/design.md sec. 6's "resize 64, crop 56", i.e. the EfficientNet/timm convention of
resizing to ``round(res / 0.875)`` and cropping ``res`` (timm's ``crop_pct=0.875``), with a random
crop and a random horizontal flip for training and the centre crop for evaluation.

Why batched: per-sample transforms in DataLoader workers starve a GPU on 28-64 px images. Here a
whole uint8 batch is resized with one ``F.interpolate`` call (antialiased when shrinking), then
each sample gets its own crop offsets and flip through two ``gather`` calls (a flip is just the
column index read backwards), so a batch costs a few kernel launches on any device. Sources that
are not square are squashed to a square (timm's "squash" resize mode). Grey images stay 1-channel
until after normalisation and are then repeated (as a broadcast ``expand``) to the 3 channels the
model expects. Random numbers come from the caller's ``torch.Generator`` so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

CROP_FRACTION = 0.875
MODEL_CHANNELS = 3


def resize_size(resolution: int) -> int:
    """The pre-crop size: 56 -> 64 (docs/design.md), 224 -> 256 (ImageNet)."""
    return round(resolution / CROP_FRACTION)


@dataclass(frozen=True)
class Normalization:
    """Per stored channel mean and standard deviation, in 0..255 pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> Normalization:
    """Mean/std of uint8 (N, C, H, W) images per channel, in float64 chunks (no full float copy)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].to(torch.float64)
        total += part.sum((0, 2, 3))
        squares += part.square().sum((0, 2, 3))
    count = max(1, images.shape[0] * images.shape[2] * images.shape[3])
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-6).sqrt().clamp_min(1.0)
    return Normalization(tuple(mean.tolist()), tuple(std.tolist()))


def crop_flip(
    images: torch.Tensor, size: int, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Per-sample ``size`` x ``size`` crops at (top, left), mirrored where ``flip`` is True."""
    batch, channels, _, width = images.shape
    steps = torch.arange(size, device=images.device)
    rows = top[:, None] + steps
    cols = torch.where(flip[:, None], left[:, None] + steps.flip(0), left[:, None] + steps)
    images = images.gather(2, rows[:, None, :, None].expand(batch, channels, size, width))
    return images.gather(3, cols[:, None, None, :].expand(batch, channels, size, size))


class BatchTransform:
    """uint8 (B, 1 or 3, H, W) batches -> normalised float (B, 3, res, res) model input."""

    def __init__(
        self,
        resolution: int,
        normalization: Normalization,
        device: torch.device,
        channels_last: bool = False,
    ) -> None:
        self.resolution = resolution
        self.size = resize_size(resolution)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(normalization.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(normalization.std, device=device).view(1, -1, 1, 1)

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Resize, random crop and random horizontal flip, each sample drawn independently."""
        resized = self._resize(images)
        batch, device = resized.shape[0], resized.device
        span = self.size - self.resolution + 1
        top = torch.randint(span, (batch,), generator=generator, device=device)
        left = torch.randint(span, (batch,), generator=generator, device=device)
        flip = torch.randint(2, (batch,), generator=generator, device=device).bool()
        return self._finish(crop_flip(resized, self.resolution, top, left, flip))

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """Resize and centre crop (deterministic)."""
        offset = (self.size - self.resolution) // 2
        window = slice(offset, offset + self.resolution)
        return self._finish(self._resize(images)[:, :, window, window])

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.float()
        if tuple(pixels.shape[-2:]) == (self.size, self.size):
            return pixels
        shrinking = max(pixels.shape[-2:]) > self.size
        return F.interpolate(
            pixels,
            size=(self.size, self.size),
            mode="bilinear",
            align_corners=False,
            antialias=shrinking,
        )

    def _finish(self, pixels: torch.Tensor) -> torch.Tensor:
        normalised = (pixels - self.mean) / self.std
        if normalised.shape[1] != MODEL_CHANNELS:
            normalised = normalised.expand(-1, MODEL_CHANNELS, -1, -1)
        return normalised.contiguous(memory_format=self.memory_format)
