"""Training images/second: a plain DataLoader loop versus the trainers' on-device fast path.

For the paper preset (docs/design.md sec. 1; standard and se blocks, 10 classes) this trains a fixed
number of SGD steps twice, from the same initial weights, on Fashion-MNIST (or synthetic uint8
images with ``--synthetic``):

(a) baseline: the textbook PyTorch input pipeline, a ``Dataset`` that resizes, randomly crops and
    flips one image at a time on the CPU, a ``DataLoader`` with ``--num-workers`` worker processes
    (pinned memory on CUDA), and a float32 NCHW training step;
(b) fast path: ``trainers``' own pieces, i.e. the whole data set on the device as uint8, batched
    augmentation there (``trainers.augment``), bf16 autocast and channels_last on CUDA, no workers.

Warm-up steps (worker start-up, cuDNN autotuning, allocator growth) are excluded from the timing,
and the device is synchronised before each clock read. Prints both figures and fast/baseline ratio
(one JSON object with ``--json``). Runs on the CPU too, e.g.::

    python benchmarks/trial_throughput.py --device cpu --synthetic --steps 3 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from space import ArchSpec, UserError, build_model, resolve
from trainers import ImageData, load_dataset
from trainers.augment import BatchTransform, Normalization, channel_stats, resize_size
from trainers.device import (
    cpu_threads,
    peak_memory_bytes,
    reproducible,
    reset_peak_memory,
    resolve_device,
    synchronize,
)
from trainers.steps import train_step


class PerSampleAugment(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One image at a time: resize to res/0.875, random crop, random flip, normalise (CPU)."""

    def __init__(self, data: ImageData, resolution: int, norm: Normalization) -> None:
        self.data, self.resolution, self.size = data, resolution, resize_size(resolution)
        self.mean = torch.tensor(norm.mean).view(-1, 1, 1)
        self.std = torch.tensor(norm.std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.data.images[index].float()[None]
        image = F.interpolate(image, size=(self.size, self.size), mode="bilinear")[0]
        top, left = torch.randint(self.size - self.resolution + 1, (2,)).tolist()
        image = image[:, top : top + self.resolution, left : left + self.resolution]
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        image = (image - self.mean) / self.std
        return image.expand(3, -1, -1).contiguous(), self.data.labels[index]


def _forever(loader: DataLoader[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def _timed(step: Any, warmup: int, steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``step()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - started


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)


def run_baseline(spec: ArchSpec, data: ImageData, args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    dataset = PerSampleAugment(data, resolve(spec).resolution, channel_stats(data.images))
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.num_workers > 0,
    )
    batches = _forever(loader)
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    optimizer, loss_fn = _optimizer(model), nn.CrossEntropyLoss()

    def step() -> None:
        inputs, targets = next(batches)
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        train_step(model, optimizer, loss_fn, inputs, targets, amp=False)

    reset_peak_memory(device)
    seconds = _timed(step, args.warmup_steps, args.steps, device)
    return _record(spec, "dataloader", seconds, args, peak_memory_bytes(device))


def run_fast(spec: ArchSpec, data: ImageData, args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    images, labels = data.images.to(device), data.labels.to(device)
    cuda = device.type == "cuda"
    transform = BatchTransform(
        resolve(spec).resolution, channel_stats(images), device, channels_last=cuda
    )
    generator = torch.Generator(device=device).manual_seed(0)
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer, loss_fn = _optimizer(model), nn.CrossEntropyLoss()
    runner: nn.Module = torch.compile(model) if args.compile else model  # type: ignore[assignment]
    order = torch.empty(0, dtype=torch.int64, device=device)
    position = 0

    def step() -> None:
        nonlocal order, position
        if position + args.batch_size > order.numel():  # a new epoch: reshuffle on the device
            order = torch.randperm(images.shape[0], generator=generator, device=device)
            position = 0
        index = order[position : position + args.batch_size]
        position += args.batch_size
        inputs = transform.train(images[index], generator)
        train_step(runner, optimizer, loss_fn, inputs, labels[index], amp=True)

    reset_peak_memory(device)
    seconds = _timed(step, args.warmup_steps, args.steps, device)
    return _record(spec, "fast", seconds, args, peak_memory_bytes(device))


def _record(
    spec: ArchSpec, path: str, seconds: float, args: argparse.Namespace, peak: int
) -> dict[str, Any]:
    return {
        "block": spec.block,
        "path": path,
        "images_per_second": args.steps * args.batch_size / seconds,
        "seconds": seconds,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "peak_memory_bytes": peak,
    }


def _data(args: argparse.Namespace) -> ImageData:
    if not args.synthetic:
        return load_dataset("fashion-mnist", args.data_dir)[0]
    count = max(2048, args.batch_size * 4)
    generator = torch.Generator().manual_seed(0)
    return ImageData(
        images=torch.randint(0, 256, (count, 1, 28, 28), generator=generator, dtype=torch.uint8),
        labels=torch.randint(0, 10, (count,), generator=generator),
        classes=10,
        name="synthetic",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per path")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=4, help="baseline DataLoader workers")
    parser.add_argument("--blocks", nargs="+", default=["standard", "se"])
    parser.add_argument("--resolution", type=int, default=None, help="pin (default: 56 px)")
    parser.add_argument("--synthetic", action="store_true", help="random uint8 28x28 images")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST directory")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if min(args.steps, args.batch_size) < 1 or min(args.warmup_steps, args.num_workers) < 0:
        parser.error("--steps and --batch-size must be >= 1, --warmup-steps/--num-workers >= 0")
    return args


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    args.device = str(device)
    data = _data(args)
    results, ratios = [], {}
    with reproducible(device, deterministic=False), cpu_threads(args.threads):
        for block in args.blocks:
            spec = ArchSpec(block=block, classes=10, resolution=args.resolution)
            baseline, fast = run_baseline(spec, data, args), run_fast(spec, data, args)
            results += [baseline, fast]
            ratios[block] = fast["images_per_second"] / baseline["images_per_second"]
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "data": data.name,
        "torch": torch.__version__,
        "num_workers": args.num_workers,
        "results": results,
        "ratio_fast_over_dataloader": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = benchmark(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"device {report['device']}, data {report['data']}, torch {report['torch']}")
    for row in report["results"]:
        print(
            f"{row['block']:<10}{row['path']:<12}{row['images_per_second']:>12.1f} images/s"
            f"  ({row['steps']} steps x {row['batch_size']}, {row['seconds']:.2f} s)"
        )
    for block, ratio in report["ratio_fast_over_dataloader"].items():
        print(f"{block:<10}fast / dataloader = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
