"""The quick preset's trial on the CPU: every speed lever side by side, and before/after.

The trial is what `search run --preset quick` trains (Fashion-MNIST, 1,000 images split 900/100,
batch 16, 32 px, one epoch) for two of the architectures that study trains (one standard, one SE
block). Each variant is one ``trainers.train_trial`` call in a warm worker process (as in a
reused Ray actor; each worker first trains once untimed), timed as the whole call (model build,
data, training, evaluation), in wall seconds and in the worker's CPU seconds:

- ``before``: another checkout (``--before-root``, e.g. the main branch, with its own
  ``--before-python``) with the trial settings its trainable uses: today's code;
- the levers on this checkout, one at a time: float32 deterministic (the old settings, minus the
  NaN fill of new memory), nondeterministic, channels_last, bf16 autocast (alone, with
  channels_last, nondeterministic), 1 thread, evaluation batch 256, oneDNN off, OpenMP threads
  that wait passively or spin (libgomp's default), torch.compile (``--compile``, one round: its
  compile time is inside the call);
- ``default``: what ``trainers.speed`` picks when nothing is set (the kept combination).

Rounds interleave the variants (the order reverses every round) and the table gives medians. On
a machine shared with other jobs the wall times are noisy and threads that spin suffer most; the
CPU seconds of a 1-thread run (``--threads 1``) are the steadiest measure of a lever's work.
``--env KEY=VALUE`` sets a variable in every worker (a variant's own wins). ``--search-rounds N``
then times the whole `search run --preset quick` in empty directories, the two checkouts
alternating. ``--accuracy`` trains fp32, fp32 channels_last and bf16 on 4,000/1,000 images
(three seeds).

    python benchmarks/cpu_trial_speed.py --before-root ../main --before-python ../venv/bin/python \\
        --rounds 5 --search-rounds 3 --accuracy
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# two of the architectures `search run --preset quick` trains (its trials 5 and 2)
SPECS = (
    "block=standard,e=2,r=4,m=4,mid=depthwise,k=3,a=1.5702,b=1.1817,g=1,phi=1.53,res=32,classes=10",
    "block=se,e=2,r=2,m=4,mid=depthwise,k=3,a=1.1183,b=1.2651,g=1.0571,phi=1.67,res=32,classes=10",
)
QUICK = {"epochs": 1, "batch_size": 16, "device": "cpu"}
PASSIVE = (("OMP_WAIT_POLICY", "PASSIVE"),)  # OpenMP threads sleep instead of spinning
SPIN = (("OMP_WAIT_POLICY", ""),)  # libgomp's default: spin for a while, then sleep

# The worker runs in the checkout under test (any version of the trainer API: only
# load_dataset, train_val_split, ArchSpec.parse, TrainConfig and train_trial are used). It loads
# the data once, then answers one JSON request per line with one JSON result line.
WORKER = r"""
import json, sys, time, contextlib
import torch
from space import ArchSpec
from trainers import TrainConfig, load_dataset, train_trial, train_val_split
full, _ = load_dataset("fashion-mnist")
splits = {}
print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    key = (job["subset"], job["val_fraction"])
    if key not in splits:
        splits[key] = train_val_split(full, job["val_fraction"], 0, job["subset"])
    train, val = splits[key]
    on = job["mkldnn"]
    flags = contextlib.nullcontext() if on else torch.backends.mkldnn.flags(enabled=False)
    cpu = time.process_time()
    with flags:
        result = train_trial(ArchSpec.parse(job["spec"]), train, val, TrainConfig(**job["config"]))
    cpu = time.process_time() - cpu
    batch = job["config"]["batch_size"]
    trained = result.epochs_run * max(1, len(train) // batch) * min(batch, len(train))
    train_seconds = trained / result.images_per_second
    setup = getattr(result, "setup_seconds", float("nan"))
    print(json.dumps({
        "seconds": result.seconds, "cpu_seconds": cpu, "setup_seconds": setup,
        "train_seconds": train_seconds,
        "eval_seconds": result.seconds - train_seconds - (setup if setup == setup else 0.0),
        "images_per_second": result.images_per_second, "accuracy": result.accuracy,
        "loss": result.loss,
    }), flush=True)
"""


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    config: dict[str, Any]
    before: bool = False  # run in the --before-root checkout
    mkldnn: bool = True
    once: bool = False  # long (compile): one round only
    env: tuple[tuple[str, str], ...] = ()  # the worker process's extra environment

    @property
    def worker(self) -> tuple[bool, tuple[tuple[str, str], ...]]:
        return self.before, self.env


@dataclass
class Worker:
    """A warm trainer process rooted in one checkout."""

    root: Path
    python: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] = field(init=False)
    torch: str = field(init=False)

    def __post_init__(self) -> None:
        env = {**os.environ, **self.env, "PYTHONPATH": str(self.root)}
        env = {key: value for key, value in env.items() if value != ""}  # "" = unset
        self.process = subprocess.Popen(
            [self.python, "-c", WORKER],
            cwd=self.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.torch = self._read()["torch"]

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the trainer worker in {self.root} exited; see its stderr above")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Pool:
    """Warm workers, one per (checkout, environment), each started on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workers: dict[tuple[bool, tuple[tuple[str, str], ...]], Worker] = {}

    def get(self, variant: Variant) -> Worker:
        """The variant's worker; a new one first trains once, untimed, so that one-time
        start-up work (oneDNN's first kernels, allocator growth) lands on no variant."""
        if variant.worker not in self.workers:
            if variant.before:
                root, python = Path(self.args.before_root).resolve(), self.args.before_python
            else:
                root, python = ROOT, sys.executable
            worker = Worker(root, python, {**self.args.env, **dict(variant.env)})
            worker.run(_job(variant, self.args.specs[0], 0, self.args.subset, 0.1))
            self.workers[variant.worker] = worker
        return self.workers[variant.worker]

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def variants(threads: int, with_compile: bool, with_before: bool) -> list[Variant]:
    base = {**QUICK, "threads": threads}
    old = {**base, "amp": False, "deterministic": True, "channels_last": False}
    bf16 = {**old, "amp": True}
    found = [
        Variant("fp32-det", "float32, deterministic, NCHW (old settings, no NaN fill)", old),
        Variant("nondet", "float32, deterministic algorithms off", {**old, "deterministic": False}),
        Variant("channels-last", "float32, channels_last", {**old, "channels_last": True}),
        Variant("bf16", "bf16 autocast, deterministic, NCHW", bf16),
        Variant("bf16-cl", "bf16 autocast + channels_last", {**bf16, "channels_last": True}),
        Variant("bf16-nondet", "bf16, deterministic off", {**bf16, "deterministic": False}),
        Variant("1-thread", "default settings, 1 thread", {**base, "threads": 1}),
        Variant(
            "eval-256", "default settings, evaluation batch 256", {**base, "eval_batch_size": 256}
        ),
        Variant("no-onednn", "float32, oneDNN (mkldnn) off", old, mkldnn=False, once=True),
        Variant("default", "trainers.speed's choice (nothing set)", base),
        Variant("omp-passive", "default, OpenMP threads wait passively", base, env=PASSIVE),
        Variant("omp-spin", "default, OpenMP's default spinning", base, env=SPIN),
    ]
    if with_before:
        before = "the --before-root checkout's trial (OpenMP default)"
        found.insert(0, Variant("before", before, base, before=True, env=SPIN))
    if with_compile:
        compiled = {**base, "compile": True}
        found.append(Variant("compile", "default + torch.compile", compiled, once=True))
    return found


def _job(
    variant: Variant, spec: str, seed: int, subset: int, val_fraction: float
) -> dict[str, Any]:
    config = {**variant.config, "seed": seed}
    if variant.before:  # only what the old TrainConfig knows
        config = {k: v for k, v in config.items() if k in (*QUICK, "seed", "threads")}
    return {
        "spec": spec,
        "config": config,
        "mkldnn": variant.mkldnn,
        "subset": subset,
        "val_fraction": val_fraction,
    }


def trial_rounds(args: argparse.Namespace, pool: Pool) -> dict[str, Any]:
    chosen = variants(args.threads, args.compile, bool(args.before_root))
    if args.only:
        chosen = [v for v in chosen if v.name in args.only]
    rows: dict[str, list[dict[str, Any]]] = {v.name: [] for v in chosen}
    for round_ in range(args.rounds):
        order = chosen if round_ % 2 == 0 else chosen[::-1]
        for variant in order:
            if variant.once and round_ > 0:
                continue
            for spec in args.specs:
                result = pool.get(variant).run(_job(variant, spec, round_, args.subset, 0.1))
                rows[variant.name].append(result)
                print(
                    f"round {round_} {variant.name:<14} {result['seconds']:6.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    table = {}
    for variant in chosen:
        results = rows[variant.name]
        # per round, the trial time summed over the specs; then the median over rounds
        per_round = [
            sum(r["seconds"] for r in results[i : i + len(args.specs)])
            for i in range(0, len(results), len(args.specs))
        ]
        table[variant.name] = {
            "what": variant.what,
            "seconds_per_trial": statistics.median(per_round) / len(args.specs),
            "cpu_seconds_per_trial": statistics.median(r["cpu_seconds"] for r in results),
            "train_seconds": statistics.median(r["train_seconds"] for r in results),
            "eval_seconds": statistics.median(r["eval_seconds"] for r in results),
            "setup_seconds": statistics.median(r["setup_seconds"] for r in results),
            "images_per_second": statistics.median(r["images_per_second"] for r in results),
            "accuracy_mean": statistics.fmean(r["accuracy"] for r in results),
            "rounds": len(per_round),
        }
    reference = table.get("before") or table.get("fp32-det") or next(iter(table.values()))
    for row in table.values():
        row["speedup"] = reference["seconds_per_trial"] / row["seconds_per_trial"]
        row["cpu_ratio"] = reference["cpu_seconds_per_trial"] / row["cpu_seconds_per_trial"]
    return table


def accuracy_check(pool: Pool, threads: int) -> dict[str, Any]:
    """fp32 NCHW, fp32 channels_last (the CPU default) and bf16: 4,000 training / 1,000
    validation images, one epoch, three seeds."""
    modes = {
        "fp32": {"amp": False, "channels_last": False},
        "fp32-cl": {"amp": False, "channels_last": True},
        "bf16": {"amp": True, "channels_last": False},
    }
    found: dict[str, list[float]] = {name: [] for name in modes}
    for seed in range(3):
        for name, settings in modes.items():
            variant = Variant(name, name, {**QUICK, "threads": threads, **settings})
            result = pool.get(variant).run(_job(variant, SPECS[0], seed, 5000, 0.2))
            found[name].append(result["accuracy"])
            print(f"accuracy seed {seed} {name}: {result['accuracy']:.4f}", file=sys.stderr)
    return {name: {"per_seed": acc, "mean": statistics.fmean(acc)} for name, acc in found.items()}


def search_rounds(args: argparse.Namespace) -> dict[str, Any]:
    """Wall time of `search run --preset quick` in an empty directory, checkouts alternating."""
    checkouts = {"after": (ROOT, sys.executable)}
    if args.before_root:
        checkouts["before"] = (Path(args.before_root).resolve(), args.before_python)
    code = "import sys; from search.cli import main; sys.exit(main(sys.argv[1:]))"
    walls: dict[str, list[float]] = {name: [] for name in checkouts}
    for round_ in range(args.search_rounds):
        names = list(checkouts) if round_ % 2 else list(checkouts)[::-1]
        for name in names:
            root, python = checkouts[name]
            with tempfile.TemporaryDirectory(prefix="effnas-quick-") as folder:
                started = time.perf_counter()
                subprocess.run(
                    [python, "-c", code, "run", "--preset", "quick"],
                    cwd=folder,
                    env={**os.environ, "PYTHONPATH": str(root)},
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                walls[name].append(time.perf_counter() - started)
            print(f"search round {round_} {name}: {walls[name][-1]:.1f} s", file=sys.stderr)
    found: dict[str, Any] = {
        name: {"seconds": values, "median": statistics.median(values)}
        for name, values in walls.items()
    }
    if "before" in found:
        found["speedup"] = found["before"]["median"] / found["after"]["median"]
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant")
    parser.add_argument("--threads", type=int, default=2, help="threads (Ray's CPUs per trial)")
    parser.add_argument("--specs", nargs="+", default=list(SPECS), help="architectures to train")
    parser.add_argument("--subset", type=int, default=1000, help="images (the quick preset's)")
    parser.add_argument("--before-root", default=None, help="checkout of the code to compare")
    parser.add_argument("--before-python", default=sys.executable, help="its interpreter")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--accuracy", action="store_true", help="fp32 vs bf16 accuracy check")
    parser.add_argument("--search-rounds", type=int, default=0, help="time `search run` too")
    parser.add_argument("--only", nargs="+", default=None, help="run only these variants")
    parser.add_argument("--env", nargs="+", default=[], help="KEY=VALUE for every worker")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    args.env = dict(item.split("=", 1) for item in args.env)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pool = Pool(args)
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "env": args.env,
    }
    try:
        report["torch"] = pool.get(Variant("default", "", {**QUICK, "threads": 1})).torch
        if args.rounds > 0:
            report["trial"] = trial_rounds(args, pool)
        if args.accuracy:
            report["accuracy"] = accuracy_check(pool, args.threads)
    finally:
        pool.close()
    if args.search_rounds > 0:
        report["search"] = search_rounds(args)
    report["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0


def _print(report: dict[str, Any]) -> None:
    print(f"\n{report['date']}, {report['cpu']} ({report['cores']} cores), torch {report['torch']}")
    load = (*report["load_average"], *report["load_average_after"])
    print("load average before: {:.1f} {:.1f} {:.1f}, after: {:.1f} {:.1f} {:.1f}".format(*load))
    if "trial" in report:
        header = ("variant", "s/trial", "train s", "eval s", "img/s", "acc", "x", "cpu s", "cpu x")
        print(f"{header[0]:<15}" + "".join(f"{h:>8}" for h in header[1:]) + "  what")
        for name, row in report["trial"].items():
            print(
                f"{name:<15}{row['seconds_per_trial']:>8.2f}{row['train_seconds']:>8.2f}"
                f"{row['eval_seconds']:>8.3f}{row['images_per_second']:>8.0f}"
                f"{row['accuracy_mean']:>8.3f}{row['speedup']:>7.2f}x"
                f"{row['cpu_seconds_per_trial']:>8.2f}{row['cpu_ratio']:>7.2f}x  {row['what']}"
            )
    if "accuracy" in report:
        for name, row in report["accuracy"].items():
            print(f"accuracy {name}: mean {row['mean']:.4f} over seeds {row['per_seed']}")
    search = report.get("search", {})
    for name in ("before", "after"):
        if name in search:
            row = search[name]
            print(
                f"search run --preset quick, {name}: median {row['median']:.1f} s {row['seconds']}"
            )
    if "speedup" in search:
        print(f"search run --preset quick: before / after = {search['speedup']:.2f}x")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
