"""A table of measured learning curves: many networks of a benchmark space, trained as a search
trial trains them, with the validation accuracy after every epoch.

Why: search strategies are compared over many seeds (``benchmarks/simulate.py``), which real
training cannot afford on a CPU. Tabular and surrogate benchmarks answer this by measuring once
and replaying (NAS-Bench-201, Dong & Yang 2020; NAS-Bench-301, Siems et al. 2020; YAHPO Gym,
Pfisterer et al. 2022). This script measures; ``benchmarks/surrogate.py`` fits a model to the
table; ``search.worker.curves`` replays it through the real search.

The networks are drawn as the search's joint strategy draws a candidate
(``search.strategy.planner``): block options and coefficients from the space
(``SearchSpace.sample``), a MAC share of the candidate's own range from its phi = 0 cost to the
budget, phi fitted by counting. Shares are stratified (one per 1/N of [0, 1], in shuffled order)
and the block types taken in turn, so the table covers every block type over the whole MAC range;
the space's cheapest network (every search's first trial) is the first row. Each network trains
once with seed 0; ``--replicas`` networks of them train again with seeds 1, 2, ... to measure the
seed-to-seed spread the surrogate's noise is drawn from. Seed s means what a search with ``--seed
s`` means: the data split (``train_val_split`` of ``--subset`` images with ``--val-fraction`` held
out) and the training seed both follow it.

Each run is appended to ``--out`` (JSON Lines) as soon as it ends, so the command can be stopped
(Ctrl-C, kill) and started again with the same arguments: it skips the (network, seed) pairs the
file holds. ``--workers`` trains that many networks at once, one CPU thread each (CPU training is
reproducible for a given thread count); ``--pack`` writes the finished table as ``.jsonl.xz``.
The command behind benchmarks/RESULTS.md (its 192 runs took 4.7 hours on 2 shared cores)::

    nice -n 19 python benchmarks/learning_curves.py --out curves.jsonl --workers 2
    python benchmarks/learning_curves.py --out curves.jsonl --pack \\
        benchmarks/results/learning_curves_small.jsonl.xz
"""

from __future__ import annotations

import argparse
import json
import lzma
import multiprocessing
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.errors import Diverged
from space import ArchSpec, count_spec, fit_phi, resolve
from space.searchspace import RandomDraws, SearchSpace, load_space_file
from space.spec import BLOCK_TYPES

HERE = Path(__file__).resolve().parent
SPACES = HERE / "spaces"
if str(HERE) not in sys.path:  # worker processes import this file by its name
    sys.path.insert(0, str(HERE))


@dataclass(frozen=True)
class Regime:
    """How every network of the table trains: a search trial of the benchmark's CPU regime."""

    space_file: str = str(SPACES / "small.toml")
    budget: int = 40_000_000
    dataset: str = "fashion-mnist"
    subset: int = 3000
    val_fraction: float = 0.25
    epochs: int = 2
    batch_size: int = 16
    classes: int = 10

    def space(self) -> SearchSpace:
        return SearchSpace.from_mapping(
            {**load_space_file(self.space_file), "classes": self.classes}
        )

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        data["space_file"] = Path(self.space_file).name
        data["space"] = load_space_file(self.space_file)
        return data


def fitted(spec: ArchSpec, share: float, budget: int) -> ArchSpec | None:
    """The network a joint-strategy candidate with this share builds (the planner's rule), or
    None when its phi = 0 network is over the budget (the search never trains it)."""
    base = count_spec(spec.replace(phi=0.0)).macs
    if base > budget:
        return None
    target = base * (budget / base) ** share
    if base >= target:
        return spec.replace(phi=0.0)
    return fit_phi(spec, target).spec


def draw_networks(regime: Regime, count: int, seed: int = 0) -> list[ArchSpec]:
    """``count`` distinct networks: the space's cheapest first, then block types in turn with
    stratified shares (see the module docstring)."""
    space = regime.space()
    rng = random.Random(seed)
    shares = [(i + rng.random()) / count for i in range(count)]
    rng.shuffle(shares)
    cheapest = space.smallest_spec(regime.classes)
    networks, seen = [cheapest], {resolve(cheapest).layout}
    for index, share in enumerate(shares):
        if len(networks) >= count:
            break
        block = BLOCK_TYPES[index % len(BLOCK_TYPES)]
        if block not in space.block:
            continue
        for _ in range(1000):
            values = space.sample(RandomDraws(rng)).values
            if values["block"] != block:
                continue
            spec = fitted(ArchSpec(**values), share, regime.budget)
            if spec is not None and resolve(spec).layout not in seen:
                seen.add(resolve(spec).layout)
                networks.append(spec)
                break
    return networks


def jobs(networks: list[ArchSpec], replicas: int, seeds: int) -> list[tuple[str, int]]:
    """(spec, seed) pairs in training order: every network with seed 0, then the replicas'
    further seeds, interleaved so that a partial table already holds some of both."""
    main = [(spec.canonical(), 0) for spec in networks]
    step = max(1, len(networks) // max(1, replicas))
    extra = [
        (networks[i * step].canonical(), seed)
        for i in range(min(replicas, len(networks)))
        for seed in range(1, seeds + 1)
    ]
    order: list[tuple[str, int]] = []
    every = max(1, len(main) // max(1, len(extra)))
    while main or extra:
        order.extend(main[:every])
        del main[:every]
        if extra:
            order.append(extra.pop(0))
    return order


# ----- one training (in a worker process) -----------------------------------------------------
_data: dict[int, Any] = {}


def train(regime: Regime, text: str, seed: int) -> dict[str, Any]:
    """Train ``text`` with ``seed`` as a search trial of ``regime`` trains; the record."""
    import torch

    from trainers.data import load_dataset, train_val_split
    from trainers.loop import EpochReport, TrainConfig, train_trial

    if seed not in _data:
        full, _ = load_dataset(regime.dataset, None)
        _data[seed] = train_val_split(full, regime.val_fraction, seed, regime.subset)
    train_split, val = _data[seed]
    spec = ArchSpec.parse(text)
    seconds: list[float] = []
    accuracy: list[float] = []
    losses: list[float] = []

    def on_epoch(report: EpochReport) -> bool:
        seconds.append(report.seconds)
        accuracy.append(report.accuracy)
        losses.append(report.loss)
        return False

    config = TrainConfig(epochs=regime.epochs, batch_size=regime.batch_size, seed=seed, threads=1)
    started = time.perf_counter()
    diverged = None
    try:
        train_trial(spec, train_split, val, config, on_epoch=on_epoch)
    except Diverged as exc:  # a FAIL in a search: chance accuracy from that epoch on
        diverged = exc.epoch
        missing = regime.epochs - len(accuracy)
        accuracy += [1.0 / spec.classes] * missing
        losses += [float("nan")] * missing
        seconds += [seconds[-1] if seconds else time.perf_counter() - started] * missing
    counted = count_spec(spec)
    plan = resolve(spec)
    return {
        "spec": text,
        "spec_id": spec.spec_id,
        "seed": seed,
        "block": spec.block,
        "macs": counted.macs,
        "params": counted.params,
        "resolution": plan.resolution,
        "depth": plan.depth,
        "accuracy": accuracy,
        "loss": losses,
        "diverged": diverged,
        "epoch_seconds": seconds,
        "seconds": time.perf_counter() - started,
        "train_images": len(train_split),
        "val_images": len(val),
        "threads": 1,
        "torch": torch.__version__,
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


# ----- the table on disk ----------------------------------------------------------------------
def read_table(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a table, plain ``.jsonl`` or ``.jsonl.xz``; the header line is skipped."""
    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as file:
        for line in file:
            if line.strip():
                record = json.loads(line)
                if "regime" not in record:
                    yield record


def header(path: Path) -> dict[str, Any] | None:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt") as file:
        first = file.readline()
    return json.loads(first) if first.strip() else None


def build(args: argparse.Namespace, regime: Regime) -> int:
    out = Path(args.out)
    identity = {"regime": regime.identity(), "networks": args.networks, "draw_seed": args.seed}
    if out.exists() and out.stat().st_size:
        if header(out) != identity:
            raise SystemExit(f"{out} holds a table of another regime; pass another --out")
    else:
        out.write_text(json.dumps(identity) + "\n")
    done = {(r["spec"], r["seed"]) for r in read_table(out)}
    todo = [
        job
        for job in jobs(draw_networks(regime, args.networks, args.seed), args.replicas, args.seeds)
        if job not in done
    ]
    print(f"{len(done)} runs in {out}, {len(todo)} to train", file=sys.stderr, flush=True)
    if args.workers == 1:
        with out.open("a") as file:
            for spec, seed in todo:
                _write(file, train(regime, spec, seed), done)
        return 0
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
    with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool, out.open("a") as file:
        running: set[Future[dict[str, Any]]] = set()
        queue = list(todo)
        while queue or running:
            while queue and len(running) < args.workers:
                spec, seed = queue.pop(0)
                running.add(pool.submit(train, regime, spec, seed))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _write(file, future.result(), done)
    return 0


def _write(file: Any, record: dict[str, Any], done: set[tuple[str, int]]) -> None:
    file.write(json.dumps(record) + "\n")
    file.flush()
    done.add((record["spec"], record["seed"]))
    print(
        f"[{len(done)}] {record['macs'] / 1e6:6.1f}M {record['resolution']:>3}px "
        f"seed {record['seed']} acc {record['accuracy']} {record['seconds']:.0f}s",
        file=sys.stderr,
        flush=True,
    )


def pack(source: Path, target: Path) -> int:
    """The table as xz-compressed JSON Lines, header first, runs in (spec, seed) order."""
    first = header(source)
    records = sorted(read_table(source), key=lambda r: (r["macs"], r["spec"], r["seed"]))
    with lzma.open(target, "wt", preset=9) as file:
        file.write(json.dumps(first) + "\n")
        for record in records:
            file.write(json.dumps(record) + "\n")
    print(f"{len(records)} runs -> {target} ({target.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    defaults = Regime()
    add("--out", required=True, help="the table (JSON Lines), appended to and resumed")
    add("--networks", type=int, default=200)
    add("--replicas", type=int, default=10, help="networks trained again with more seeds")
    add("--seeds", type=int, default=4, help="further seeds per replica network")
    add("--seed", type=int, default=0, help="the draw of the networks")
    add("--workers", type=int, default=1, help="networks trained at once (one thread each)")
    add("--space", default=defaults.space_file)
    add("--budget-flops", type=float, default=defaults.budget)
    add("--subset", type=int, default=defaults.subset)
    add("--val-fraction", type=float, default=defaults.val_fraction)
    add("--epochs", type=int, default=defaults.epochs)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--pack", default=None, metavar="FILE.jsonl.xz", help="compress --out into FILE; no runs")
    args = parser.parse_args(argv)
    regime = Regime(
        space_file=args.space,
        budget=int(args.budget_flops),
        subset=args.subset,
        val_fraction=args.val_fraction,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )
    if args.pack:
        return pack(Path(args.out), Path(args.pack))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return build(args, regime)


if __name__ == "__main__":
    sys.exit(main())
