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

:class:`InputContract` writes down what ``BatchTransform.eval`` does with the statistics a trainer
used, so that saved weights can be evaluated elsewhere (or by ``search evaluate``) on exactly the
input they were trained for; ``InputContract.transform`` rebuilds the same transform from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from common.errors import UserError

CROP_FRACTION = 0.875
MODEL_CHANNELS = 3

# How ``BatchTransform.eval`` turns a uint8 image into model input, as the input contract states
# it; an input contract naming anything else was written by code that evaluates differently.
EVAL_STEPS: dict[str, Any] = {
    "value_range": [0, 255],  # uint8 pixels as floats, not divided by 255; mean/std in these units
    "layout": "NCHW",  # channels in the data set's stored order (RGB for colour)
    "resize_mode": "squash",  # both sides to `resize`, the aspect ratio not kept
    "interpolation": "bilinear",  # torch.nn.functional.interpolate, align_corners=False
    "align_corners": False,
    "antialias": "when shrinking",  # antialias=True iff max(H, W) > resize; skipped at that size
    "crop": "centre",  # resolution x resolution at offset (resize - resolution) // 2, top and left
    "grey": "repeat",  # a 1-channel image is normalised, then repeated to the model's 3 channels
}
EVAL_FORMULA = "(centre_crop(resize(float(uint8 image))) - mean) / std, per channel"


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


@dataclass(frozen=True)
class InputContract:
    """What a trained network expects as input: the evaluation transform and the exact statistics.

    ``mean`` and ``std`` are the trainer's own floats (``channel_stats`` of its training images,
    in 0..255 pixel units, one per stored channel), so ``transform`` rebuilds the trainer's
    ``BatchTransform`` to the bit. ``channels`` is the stored channel count the statistics are for
    (1 grey, 3 colour); the model always takes ``MODEL_CHANNELS``. ``dataset`` names the data set
    the network was trained on (informational; a test split of the same data set fits it).
    ``to_dict`` adds ``resize``, the fixed steps of :data:`EVAL_STEPS` and a one-line formula,
    so the written contract says everything an outside evaluator has to do.
    """

    resolution: int
    channels: int
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str = ""

    @classmethod
    def of(
        cls, resolution: int, normalization: Normalization, classes: int, dataset: str = ""
    ) -> InputContract:
        """The contract of a trainer that normalised with ``normalization`` at ``resolution``."""
        return cls(
            resolution=resolution,
            channels=len(normalization.mean),
            classes=classes,
            mean=tuple(float(v) for v in normalization.mean),
            std=tuple(float(v) for v in normalization.std),
            dataset=dataset.split(":", 1)[0],
        )

    @property
    def normalization(self) -> Normalization:
        return Normalization(self.mean, self.std)

    def transform(self, device: torch.device, channels_last: bool = False) -> BatchTransform:
        """The ``BatchTransform`` the trainer used (``.eval`` is the evaluation input)."""
        return BatchTransform(self.resolution, self.normalization, device, channels_last)

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "resize": resize_size(self.resolution),
            "channels": self.channels,
            "model_channels": MODEL_CHANNELS,
            "classes": self.classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "dataset": self.dataset,
            **EVAL_STEPS,
            "formula": EVAL_FORMULA,
        }

    @classmethod
    def from_dict(cls, data: object, source: str) -> InputContract:
        """Read a written contract back; ``UserError`` naming ``source`` when it is not one this
        code can apply exactly (another transform, missing or malformed statistics)."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: the input contract must be a JSON object")
        steps = {key: data.get(key) for key in EVAL_STEPS}
        if steps != EVAL_STEPS:
            changed = sorted(key for key in EVAL_STEPS if data.get(key) != EVAL_STEPS[key])
            raise UserError(
                f"{source}: the input contract's {', '.join(changed)} differ from this "
                "version's evaluation transform; evaluate it with the version that trained it"
            )
        try:
            contract = cls(
                resolution=_integer(data["resolution"], "resolution", 1),
                channels=_integer(data["channels"], "channels", 1),
                classes=_integer(data["classes"], "classes", 2),
                mean=_floats(data["mean"], "mean"),
                std=_floats(data["std"], "std"),
                dataset=str(data.get("dataset", "")),
            )
        except KeyError as exc:
            raise UserError(f"{source}: the input contract has no {exc.args[0]!r}") from exc
        except ValueError as exc:
            raise UserError(f"{source}: the input contract's {exc}") from exc
        if contract.channels not in (1, MODEL_CHANNELS) or not (
            len(contract.mean) == len(contract.std) == contract.channels
        ):
            raise UserError(
                f"{source}: the input contract needs one mean and one std per channel "
                f"(channels {contract.channels}: 1 or {MODEL_CHANNELS})"
            )
        if min(contract.std) <= 0 or data.get("resize") != resize_size(contract.resolution):
            raise UserError(f"{source}: the input contract's std or resize is not the trainer's")
        return contract


def _integer(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} {value!r} is not an integer >= {low}")
    return value


def _floats(value: object, name: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ValueError(f"{name} {value!r} is not a list of finite numbers")
    return tuple(float(v) for v in value)


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
