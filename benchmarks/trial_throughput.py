"""Training images/second: a plain DataLoader loop versus the trainers' on-device fast path.

For the paper preset (docs/design.md sec. 1; standard and se blocks, 10 classes) this trains a fixed
number of SGD steps twice, from the same initial weights, on Fashion-MNIST (or synthetic uint8
images with ``--synthetic``):

(a) baseline: the textbook PyTorch input pipeline, a ``Dataset`` that resizes, randomly crops and
    flips one image at a time on the CPU, a ``DataLoader`` with ``--num-workers`` worker processes
    (pinned memory on CUDA), and a float32 NCHW training step;
(b) fast path: ``trainers``' own pieces, i.e. the whole data set on the device as uint8, batched
    augmentation there (``trainers.augment``), no workers, and the settings ``trainers.speed``
    picks for the device (on CUDA: bf16 autocast, channels_last, cuDNN autotuning);
(c) with ``--compile``, the fast path again under ``torch.compile``: its compile time (the extra
    seconds of its warm-up steps over the eager ones) and the images after which it has paid
    for itself (compile seconds / seconds saved per image), the figure behind
    ``trainers.speed.COMPILE_MIN_IMAGES``.

Warm-up steps (worker start-up, cuDNN autotuning, allocator growth) are excluded from the timing,
and the device is synchronised before each clock read. Prints the figures and the fast/baseline
ratio (one JSON object with ``--json``). ``--epoch-trial`` instead trains the paper preset for one
epoch on all 60,000 Fashion-MNIST training images (validation: the 10,000 test images) through
``trainers.train_trial`` and reports the seconds since this script started (imports, data
loading, CUDA start-up, training, evaluation). Runs on the CPU too, e.g.::

    python benchmarks/trial_throughput.py --device cpu --synthetic --steps 3 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from common.errors import UserError
from space import ArchSpec, build_model, resolve
from trainers import ImageData, TrainConfig, load_dataset, train_trial
from trainers.augment import BatchTransform, Normalization, channel_stats, resize_size
from trainers.device import (
    cpu_threads,
    peak_memory_bytes,
    reproducible,
    reset_peak_memory,
    resolve_device,
    synchronize,
)
from trainers.speed import plan_speed
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


def run_fast(
    spec: ArchSpec, data: ImageData, args: argparse.Namespace, compile_: bool = False
) -> dict[str, Any]:
    device = torch.device(args.device)
    config = TrainConfig(compile=compile_, threads=args.threads, deterministic=False)
    plan = plan_speed(device, config, len(data))  # run under benchmark()'s reproducible(False)
    images, labels = data.images.to(device), data.labels.to(device)
    transform = BatchTransform(
        resolve(spec).resolution, channel_stats(images), device, channels_last=plan.channels_last
    )
    generator = torch.Generator(device=device).manual_seed(0)
    torch.manual_seed(0)
    model, runner = plan.prepare(build_model(spec).to(device))
    optimizer, loss_fn = _optimizer(model), nn.CrossEntropyLoss()
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
        train_step(runner, optimizer, loss_fn, inputs, labels[index], amp=plan.bf16)

    reset_peak_memory(device)
    warmup = _timed(step, 0, args.warmup_steps, device)  # compiles on its first step
    seconds = _timed(step, 0, args.steps, device)
    path = "compiled" if compile_ else "fast"
    record = _record(spec, path, seconds, args, peak_memory_bytes(device))
    return {**record, "settings": plan.describe(), "warmup_seconds": warmup}


def compile_cost(eager: dict[str, Any], compiled: dict[str, Any]) -> dict[str, float]:
    """Compile seconds (warm-up over eager's) and the images that pay them back."""
    compile_seconds = compiled["warmup_seconds"] - eager["warmup_seconds"]
    saved = 1 / eager["images_per_second"] - 1 / compiled["images_per_second"]
    return {
        "compile_seconds": compile_seconds,
        "speedup": compiled["images_per_second"] / eager["images_per_second"],
        "break_even_images": compile_seconds / saved if saved > 0 else float("inf"),
    }


def epoch_trial(args: argparse.Namespace) -> dict[str, Any]:
    """One epoch of the paper preset on all 60,000 Fashion-MNIST training images, timed from
    this process's start (``search train``'s path: ``trainers.train_trial``)."""
    train, test = load_dataset("fashion-mnist", args.data_dir)
    spec = ArchSpec(block=args.blocks[0], classes=train.classes, resolution=args.resolution)
    config = TrainConfig(
        epochs=1, batch_size=args.batch_size, device=args.device, threads=args.threads
    )
    result = train_trial(spec, train, test, config)
    return {
        "spec": spec.canonical(),
        "train_images": len(train),
        "val_images": len(test),
        "batch_size": args.batch_size,
        "trial_seconds": result.seconds,
        "seconds_since_process_start": process_seconds(),
        "images_per_second": result.images_per_second,
        "accuracy": result.accuracy,
    }


def process_seconds() -> float:
    """Seconds since this process started (Linux /proc; the clock ticks are 10 ms)."""
    stat = Path("/proc/self/stat").read_text()
    start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--compile", action="store_true", help="also the compiled fast path")
    parser.add_argument("--epoch-trial", action="store_true", help="one 60k-image epoch, timed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if min(args.steps, args.batch_size) < 1 or min(args.warmup_steps, args.num_workers) < 0:
        parser.error("--steps and --batch-size must be >= 1, --warmup-steps/--num-workers >= 0")
    return args


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    args.device = str(device)
    found: dict[str, Any] = {
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    if args.epoch_trial:
        return {**found, "epoch_trial": epoch_trial(args)}
    data = _data(args)
    results, ratios, compiled = [], {}, {}
    with reproducible(device, deterministic=False), cpu_threads(args.threads):
        for block in args.blocks:
            spec = ArchSpec(block=block, classes=10, resolution=args.resolution)
            baseline, fast = run_baseline(spec, data, args), run_fast(spec, data, args)
            results += [baseline, fast]
            ratios[block] = fast["images_per_second"] / baseline["images_per_second"]
            if args.compile:
                results.append(run_fast(spec, data, args, compile_=True))
                compiled[block] = compile_cost(fast, results[-1])
    return {
        **found,
        "data": data.name,
        "num_workers": args.num_workers,
        "results": results,
        "ratio_fast_over_dataloader": ratios,
        **({"compile": compiled} if compiled else {}),
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
    print(f"{report['date']}, device {report['device']}, torch {report['torch']}")
    if "epoch_trial" in report:
        trial = report["epoch_trial"]
        print(
            f"one epoch of {trial['spec']} on {trial['train_images']} images (batch "
            f"{trial['batch_size']}): {trial['trial_seconds']:.1f} s in train_trial, "
            f"{trial['seconds_since_process_start']:.1f} s since the process started, "
            f"{trial['images_per_second']:.0f} img/s, accuracy {trial['accuracy']:.4f}"
        )
        return 0
    print(f"data {report['data']}")
    for row in report["results"]:
        print(
            f"{row['block']:<10}{row['path']:<12}{row['images_per_second']:>12.1f} images/s"
            f"  ({row['steps']} steps x {row['batch_size']}, {row['seconds']:.2f} s)"
            f"  {row.get('settings', 'fp32 NCHW DataLoader')}"
        )
    for block, ratio in report["ratio_fast_over_dataloader"].items():
        print(f"{block:<10}fast / dataloader = {ratio:.2f}x")
    for block, cost in report.get("compile", {}).items():
        print(
            f"{block:<10}torch.compile: {cost['compile_seconds']:.1f} s to compile, "
            f"{cost['speedup']:.2f}x per step, pays back after "
            f"{cost['break_even_images']:,.0f} images"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
