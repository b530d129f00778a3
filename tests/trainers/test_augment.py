"""Batched resize / crop / flip / normalise against slow per-sample references."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainers.augment import BatchTransform, Normalization, channel_stats, crop_flip, resize_size

CPU = torch.device("cpu")


def _grid(batch: int, channels: int, size: int) -> torch.Tensor:
    values = torch.arange(batch * channels * size * size) % 251
    return values.view(batch, channels, size, size).to(torch.uint8)


def test_resize_size_matches_design() -> None:
    assert (resize_size(56), resize_size(224), resize_size(32)) == (64, 256, 37)


def test_crop_flip_matches_slicing() -> None:
    images = torch.randn(3, 2, 10, 10)
    top, left = torch.tensor([0, 3, 5]), torch.tensor([5, 0, 2])
    flip = torch.tensor([False, True, True])
    out = crop_flip(images, 5, top, left, flip)
    for i in range(3):
        expected = images[i, :, top[i] : top[i] + 5, left[i] : left[i] + 5]
        if flip[i]:
            expected = expected.flip(-1)
        assert torch.equal(out[i], expected)


def test_channel_stats() -> None:
    images = torch.tensor([[[[0, 10]], [[4, 4]]]], dtype=torch.uint8).expand(3, 2, 1, 2)
    stats = channel_stats(images, chunk=2)
    assert stats.mean == (5.0, 4.0)
    assert stats.std == (5.0, 1.0)  # the second channel's 0 is floored to one pixel level


def test_eval_is_resize_then_centre_crop() -> None:
    images = _grid(2, 3, 28)
    norm = Normalization((10.0, 20.0, 30.0), (2.0, 4.0, 8.0))
    out = BatchTransform(56, norm, CPU).eval(images)
    resized = F.interpolate(images.float(), size=(64, 64), mode="bilinear", align_corners=False)
    expected = (resized[:, :, 4:60, 4:60] - torch.tensor([10.0, 20, 30]).view(1, 3, 1, 1)) / (
        torch.tensor([2.0, 4, 8]).view(1, 3, 1, 1)
    )
    assert out.shape == (2, 3, 56, 56) and out.dtype == torch.float32
    assert torch.allclose(out, expected)


def test_train_crops_each_sample_independently_and_reproducibly() -> None:
    images = _grid(1, 1, 64).expand(64, 1, 64, 64)  # already at the pre-crop size: no resize
    transform = BatchTransform(56, Normalization((0.0,), (1.0,)), CPU)
    out = transform.train(images, torch.Generator().manual_seed(3))
    again = transform.train(images, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    assert out.shape == (64, 3, 56, 56)
    assert torch.equal(out[:, 0], out[:, 2])  # grey repeated to 3 channels
    source = images[0, 0].float()
    found = set()
    for sample in out[:, 0]:
        for flip in (False, True):
            window = sample.flip(-1) if flip else sample
            for top in range(9):
                for left in range(9):
                    if torch.equal(window, source[top : top + 56, left : left + 56]):
                        found.add((top, left, flip))
    assert len(found) >= 40  # every sample is one exact crop; 64 draws from 162 crops
    assert {flip for _, _, flip in found} == {False, True}


def test_grey_input_and_channels_last() -> None:
    transform = BatchTransform(16, Normalization((0.0,), (1.0,)), CPU, channels_last=True)
    out = transform.train(_grid(4, 1, 28), torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 16, 16)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_shrinking_is_antialiased() -> None:
    stripes = torch.zeros(1, 1, 128, 128, dtype=torch.uint8)
    stripes[..., ::2] = 255  # one-pixel stripes: an aliasing trap when shrinking
    out = BatchTransform(28, Normalization((0.0,), (1.0,)), CPU).eval(stripes)
    assert out.shape == (1, 3, 28, 28)
    assert torch.allclose(out, torch.full_like(out, 127.5), atol=2.0)
