"""The driver at scale: its cost per trial as the study grows, trials per second through Ray,
several drivers on one study, each beside the tools a user would pick instead, in one run.

    PYTHONPATH=. python benchmarks/scale.py --json scale.json          # everything (an hour)
    PYTHONPATH=. python benchmarks/scale.py --sizes 100 1000 --window 10 --sections growth

Parts (``--sections``):

- ``growth`` (``scale_growth``): studies padded with this search's finished trials to each of
  ``--sizes`` trained trials, on SQLite and PostgreSQL (``--backends``), then run for ``--window``
  more: this search's decision time per trial by part (sample, schedule, read, write, lease,
  other), plain Optuna's and Ray Tune + OptunaSearch + ASHA's, and the growth ratio of each from
  the smallest size to the largest;
- ``ray`` (``scale_ray``): this search through the Ray executor and Ray Tune + OptunaSearch +
  ASHA on the same sleep-trials at each of ``--concurrency``: trials per second and the share of
  slot time trials wait for the driver;
- ``drivers`` (``scale_drivers``): 1, 4 and 8 drivers (``--drivers``) on one PostgreSQL study,
  and plain Optuna processes alike: trials per second in all.

PostgreSQL: ``--postgres URL`` of a server, or a private one started with
``scripts/start_postgres.sh`` in a temporary directory (fsync on, as installed) and stopped at
the end. Run it on quiet cores (``flock /work/logs/heavy.lock ...``): figures go to
benchmarks/RESULTS.md with the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import optuna

from search.config import SearchConfig
from search.driver.padding import padding_trials
from search.worker.curves import SyntheticCurves
from space.searchspace import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scale_* parts beside this file

import scale_drivers
import scale_growth
import scale_ray

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10  # Fashion-MNIST
SOURCE = SyntheticCurves(seconds_per_mmac=1.0, min_seconds=2.0)


def search_config(study: str, storage: str, seed: int = 0) -> SearchConfig:
    """The searched configuration: the whole block space at 32 px, a 4e8-MAC budget (enough
    distinct networks for 10,000 trials), 4 epochs, instant simulated trials."""
    return SearchConfig(
        budget_macs=4e8,
        dataset="fashion-mnist",
        trials=1,
        epochs=4,
        subset=2000,
        val_fraction=0.25,
        batch_size=16,
        seed=seed,
        concurrency=8,
        space=SearchSpace.from_mapping({"base_resolution": 32}),
        storage=storage,
        study=study,
        device="cpu",
    )


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """``url``, or a private server's for the run."""
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="effnas-scale-pg-"))
    port = str(_free_port())
    script = str(ROOT / "scripts" / "start_postgres.sh")
    started = subprocess.run(
        ["bash", script, str(folder), port], capture_output=True, text=True, check=True
    )
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "--stop", str(folder)], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def growth(args: argparse.Namespace, urls: dict[str, str]) -> list[dict[str, Any]]:
    """Part 1 at every size and backend (see scale_growth)."""
    largest = max(args.sizes)
    started = time.perf_counter()
    config = search_config("pad", "sqlite:///unused.db")  # made in memory, never opened
    made = padding_trials(config, CLASSES, largest, SOURCE, seed=1)
    print(f"padding: {len(made)} trials made in {time.perf_counter() - started:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    for url in urls.values():
        config = search_config("ours", url, args.seed)
        # the study exists and holds its opening before it is padded, like a resumed search
        from search.driver.run import run_search
        from search.driver.simulated import SimulatedExecutor

        run_search(config, io.StringIO(), SimulatedExecutor(SOURCE, concurrency=8))
        padding = {name: list(made) for name in ("ours", "optuna", "tune")}
        for size in sorted(args.sizes):
            for name in padding:
                scale_growth.grow(url, name, config, padding[name], size)
            costs = [scale_growth.ours(url, config, CLASSES, SOURCE, args.window)]
            costs.append(
                scale_growth.plain_optuna(url, "optuna", config, CLASSES, SOURCE, args.window)
            )
            if not args.no_tune:
                costs.append(
                    scale_growth.ray_tune(url, "tune", config, CLASSES, SOURCE, args.window, 8)
                )
            for cost in costs:
                row = dataclasses.asdict(cost)
                rows.append(row)
                print(_cost_line(row), flush=True)
    return rows


def _cost_line(row: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {1000 * v:.1f}" for k, v in row["parts"].items() if v >= 0.0005)
    return (
        f"{row['backend']:<10} {row['size']:>6} trials  {row['method']:<38} "
        f"{1000 * row['per_trial_s']:8.1f} ms/trial ({parts}); "
        f"wall {1000 * row['wall_per_trial_s']:.1f}"
    )


def growth_table(rows: list[dict[str, Any]]) -> str:
    """Cost per trial by size, per backend and method, with the growth ratio."""
    lines = [
        "| backend | method | " + " | ".join(f"{s:,} trials" for s in _sizes(rows)) + " | growth |",
        "| --- | --- | " + " | ".join("---" for _ in _sizes(rows)) + " | --- |",
    ]
    for backend in dict.fromkeys(r["backend"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["backend"] == backend and r["method"] == method]
            if not mine:
                continue
            cells = [f"{1000 * r['per_trial_s']:.1f} ms" for r in mine]
            ratio = mine[-1]["per_trial_s"] / mine[0]["per_trial_s"]
            lines.append(f"| {backend} | {method} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    return "\n".join(lines)


def _sizes(rows: list[dict[str, Any]]) -> list[int]:
    return sorted({r["size"] for r in rows})


def rates(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """Part 2: this search through Ray and Ray Tune + OptunaSearch + ASHA on sleep-trials."""
    source = SyntheticCurves(seconds_per_mmac=0.0, min_seconds=1.0)  # every epoch: pace seconds
    rows = []
    for concurrency in args.concurrency:
        if not _memory_for(concurrency):
            print(f"concurrency {concurrency}: not enough free memory for its Ray workers")
            continue
        # the measured second half: every worker started, each slot refilled several times
        trials = max(args.ray_trials, args.ray_rounds * concurrency)
        url = f"sqlite:///{folder / f'ray-{concurrency}.db'}"
        config = search_config("ray", url, args.seed)
        for rate in (
            scale_ray.ours(config, source, args.pace, concurrency, trials),
            scale_ray.ray_tune(config, CLASSES, source, args.pace, concurrency, trials),
        ):
            row = dataclasses.asdict(rate)
            rows.append(row)
            print(
                f"{row['method']:<32} {concurrency:>3} at once: "
                f"{row['trials_per_second']:.2f} trials/s, "
                f"waiting {100 * row['waiting_share']:.0f} %",
                flush=True,
            )
    return rows


def _memory_for(concurrency: int, per_worker: int = 250 * 2**20) -> bool:
    """Whether the machine has room for ``concurrency`` Ray workers (each imports torch: about
    250 MiB resident, measured at 32 workers)."""
    with open("/proc/meminfo") as meminfo:
        free = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in meminfo}
    return free.get("MemAvailable", 0) > concurrency * per_worker + 2 * 2**30


def drivers(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    """Part 3: several drivers on one PostgreSQL study, and plain Optuna processes."""
    rows = []
    for count in args.drivers:
        for method in ("ours", "optuna"):
            result = scale_drivers.run(method, url, count, args.driver_trials, args.seed)
            row = dataclasses.asdict(result)
            rows.append(row)
            print(
                f"{row['method']:<14} {count} driver(s): {row['trials_per_second']:.2f} trials/s "
                f"({row['trials']} trained)",
                flush=True,
            )
    return rows


def environment() -> dict[str, Any]:
    """Host, cores, versions and the load, for RESULTS.md."""
    import ray
    import sqlalchemy
    import torch

    return {
        "date": str(date.today()),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "ray": ray.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["growth", "ray", "drivers"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10_000])
    parser.add_argument("--window", type=int, default=30, help="trials measured at each size")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres", help="a server's URL (default: a private one)")
    parser.add_argument("--no-tune", action="store_true", help="leave out Ray Tune in growth")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--pace", type=float, default=1.0, help="seconds per sleep-trial epoch")
    parser.add_argument("--ray-trials", type=int, default=120, help="trials per Ray run (min)")
    parser.add_argument(
        "--ray-rounds", type=int, default=10, help="at least this many trials per slot"
    )
    parser.add_argument("--drivers", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--driver-trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    report: dict[str, Any] = {"environment": environment(), "args": vars(args) | {"json": None}}
    with tempfile.TemporaryDirectory() as folder, postgres(args.postgres) as pg_url:
        urls = {}
        if "sqlite" in args.backends:
            urls["sqlite"] = f"sqlite:///{Path(folder) / 'scale.db'}"
        if "postgres" in args.backends:
            urls["postgres"] = pg_url
        if "growth" in args.sections:
            report["growth"] = growth(args, urls)
            print(growth_table(report["growth"]), flush=True)
        if "ray" in args.sections:
            report["ray"] = rates(args, Path(folder))
        if "drivers" in args.sections:
            report["drivers"] = drivers(args, pg_url)
    report["environment"]["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({"done": True, "load": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
