"""Several trials on one GPU: aggregate training images/s for 1, 2, 4 and 8 at once.

Each "trial" is a separate process (as Ray runs them) that trains the paper preset (docs/design.md
section 1, standard block, 10 classes, 56 px) with the trainers' fast path (data on the device,
batched augmentation, ``trainers.speed``'s settings). For N processes at once, all build their
model, run warm-up steps, meet at a barrier and then train ``--steps`` steps; the aggregate is all
their images over the span from the first start to the last finish. The ratio is against one
process alone ("one at a time"), so 1.0x means sharing gained nothing.

Modes: ``timeslice`` (plain CUDA contexts, what Ray's fractional GPUs give) and ``mps`` (the
processes start under a private CUDA MPS daemon from ``search.driver.mps``, as a search with
``--gpus-per-trial`` < 1 does). The goal: at least 2x at 4 per GPU (the ``gpu`` test
``tests/benchmarks/test_packing.py`` checks it).

On the CPU (``--device cpu``) this is only a smoke test of the script: the processes share the
machine's cores, each with ``--threads`` threads, which says nothing about GPU sharing.

    python benchmarks/packing.py --device cuda --counts 1 2 4 8 --modes timeslice mps
    python benchmarks/packing.py --device cpu --counts 1 2 --steps 3 --batch-size 8 --resolution 16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import queue
import sys
import time
from datetime import date
from typing import Any

import torch
from torch import nn

from search.driver.mps import mps_daemon
from space import ArchSpec, build_model, resolve
from trainers import TrainConfig
from trainers.augment import BatchTransform, channel_stats
from trainers.device import synchronize
from trainers.speed import plan_speed
from trainers.steps import train_step


def trial_process(args: dict[str, Any], barrier: Any, results: Any) -> None:
    """One trial: warm up, wait for the others, train ``steps`` steps, report its clock."""
    device = torch.device(args["device"])
    spec = ArchSpec(block=args["block"], classes=10, resolution=args["resolution"])
    resolution = resolve(spec).resolution
    count = args["batch_size"] * 8
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (count,), device=device)
    plan = plan_speed(device, TrainConfig(threads=args["threads"]), count)
    with plan.active():
        model, runner = plan.prepare(build_model(spec).to(device))
        transform = BatchTransform(resolution, channel_stats(images), device, plan.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        loss_fn = nn.CrossEntropyLoss()

        def step(index: int) -> None:
            start = (index * args["batch_size"]) % (count - args["batch_size"] + 1)
            batch = slice(start, start + args["batch_size"])
            inputs = transform.train(images[batch], generator)
            train_step(runner, optimizer, loss_fn, inputs, labels[batch], plan.bf16)

        for index in range(args["warmup_steps"]):
            step(index)
        synchronize(device)
        barrier.wait()
        started = time.time()
        for index in range(args["steps"]):
            step(index)
        synchronize(device)
        results.put((started, time.time(), args["steps"] * args["batch_size"]))


def run_group(args: argparse.Namespace, processes: int) -> float:
    """Aggregate images/s of ``processes`` trials started together."""
    context = mp.get_context("spawn")  # CUDA cannot be used in forked children
    barrier, results = context.Barrier(processes), context.Queue()
    job = {
        "device": args.device,
        "block": args.block,
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "threads": args.threads,
    }
    workers = [
        context.Process(target=trial_process, args=(job, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    clocks: list[tuple[float, float, int]] = []
    deadline = time.monotonic() + args.timeout
    while len(clocks) < processes:
        try:
            clocks.append(results.get(timeout=1.0))
        except queue.Empty:
            if time.monotonic() > deadline or any(w.exitcode not in (None, 0) for w in workers):
                for worker in workers:
                    worker.terminate()
                raise RuntimeError(f"{processes} trial processes did not finish") from None
    for worker in workers:
        worker.join(timeout=60)
        if worker.exitcode != 0:
            raise RuntimeError(f"a trial process exited with {worker.exitcode}")
    span = max(end for _, end, _ in clocks) - min(start for start, _, _ in clocks)
    return sum(images for _, _, images in clocks) / span


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for mode in args.modes:
        sharing = mps_daemon(sys.stderr) if mode == "mps" else contextlib.nullcontext({})
        with sharing as env:
            if mode == "mps" and not env:
                rows.append({"mode": mode, "skipped": "MPS could not be started (see warning)"})
                continue
            single = None
            for processes in args.counts:
                aggregate = run_group(args, processes)
                single = aggregate if processes == 1 else single
                rows.append(
                    {
                        "mode": mode,
                        "processes": processes,
                        "aggregate_images_per_second": aggregate,
                        "vs_one_at_a_time": aggregate / single if single else None,
                    }
                )
                print(f"{mode:<10}{processes:>3} at once: {aggregate:10.1f} img/s", flush=True)
    cuda = args.device.startswith("cuda")
    return {
        "date": date.today().isoformat(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "note": None if cuda else "CPU smoke test: says nothing about sharing a GPU",
        "block": args.block,
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "rows": rows,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda | cpu (smoke test only)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--modes", nargs="+", default=["timeslice", "mps"])
    parser.add_argument("--block", default="standard")
    parser.add_argument("--resolution", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per process")
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per group")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cpu" and "mps" in args.modes:
        args.modes = [m for m in args.modes if m != "mps"]  # MPS is a CUDA service
    if 1 not in args.counts:
        args.counts = [1, *args.counts]  # the one-at-a-time reference
    args.counts = sorted(set(args.counts))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = benchmark(args)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"\n{report['date']}, {report['device']}, torch {report['torch']}, {args.block} "
        f"{args.resolution} px, batch {args.batch_size}"
    )
    if report["note"]:
        print(f"NOTE: {report['note']}")
    for row in report["rows"]:
        if "skipped" in row:
            print(f"{row['mode']:<10} skipped: {row['skipped']}")
            continue
        print(
            f"{row['mode']:<10}{row['processes']:>3} at once: "
            f"{row['aggregate_images_per_second']:10.1f} img/s, "
            f"{row['vs_one_at_a_time']:.2f}x one at a time"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
