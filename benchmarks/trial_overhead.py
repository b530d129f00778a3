"""Per-trial overhead of a real search: the first trial against the rest.

Runs `search run --preset quick` (more trials with ``--trials``; any other `search run` flags
after ``--``) into a temporary SQLite study and reads what the driver stored for every complete
trial (``search.driver.overhead``): overhead_seconds = the trial's wall time on the driver minus the
trainer's training and evaluation time, split into Ray start (actor start or reuse), data
fetch from the object store, trainer setup (model build, data to the device) and finish (result
delivery), plus ``start_to_train``, the time from Ray starting the trial to its first step.

The first step's own extra cost (oneDNN/cuDNN kernel selection, allocator growth) is inside the
training time there, so it is measured here separately, in a fresh process (as a new trial
worker meets it): the first training step of the quick preset's network against the median of
the next ten.

    python benchmarks/trial_overhead.py --trials 6
    python benchmarks/trial_overhead.py --trials 8 -- --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from search.cli import main as search_main
from search.study import schema
from space import ArchSpec, build_model
from trainers import TrainConfig
from trainers.augment import BatchTransform, channel_stats
from trainers.speed import plan_speed
from trainers.steps import train_step

QUICK_SPEC = (
    "block=standard,e=2,r=4,m=4,mid=depthwise,k=3,a=1.5702,b=1.1817,g=1,phi=1.53,res=32,classes=10"
)


def run_study(trials: int, extra: list[str], folder: Path) -> tuple[list[dict[str, Any]], float]:
    url = f"sqlite:///{folder / 'overhead.db'}"
    argv = ["run", "--preset", "quick", "--trials", str(trials), "--study", "overhead"]
    started = time.perf_counter()
    code = search_main([*argv, "--storage", url, *extra])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"search run exited with {code}")
    study = optuna.load_study(study_name="overhead", storage=url)
    rows = []
    for trial in study.trials:
        attrs = trial.user_attrs
        if schema.OVERHEAD not in attrs:
            continue
        trainer = attrs[schema.SECONDS] - attrs[schema.OVERHEAD]["setup"]
        rows.append(
            {
                "number": trial.number,
                "overhead_seconds": attrs[schema.OVERHEAD_SECONDS],
                "trainer_seconds": trainer,
                **attrs[schema.OVERHEAD],
            }
        )
    return rows, wall


def first_step_in_fresh_process(threads: int) -> dict[str, float]:
    """:func:`first_step` in a new interpreter (as the first trial of a new actor meets it:
    oneDNN's kernels not yet generated)."""
    done = subprocess.run(
        [sys.executable, __file__, "--first-step", "--threads", str(threads)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def first_step(threads: int, steps: int = 10) -> dict[str, float]:
    """Seconds of the first training step of a fresh model and the median of the next ones."""
    spec = ArchSpec.parse(QUICK_SPEC)
    device = torch.device("cpu")
    plan = plan_speed(device, TrainConfig(threads=threads), 900)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16 * (steps + 1), 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (images.shape[0],))
    with plan.active():
        model, runner = plan.prepare(build_model(spec))
        transform = BatchTransform(32, channel_stats(images), device, plan.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        times = []
        for step in range(steps + 1):
            batch = slice(16 * step, 16 * step + 16)
            started = time.perf_counter()
            inputs = transform.train(images[batch], generator)
            train_step(runner, optimizer, nn.CrossEntropyLoss(), inputs, labels[batch], plan.bf16)
            times.append(time.perf_counter() - started)
    return {"first": times[0], "next_median": statistics.median(times[1:])}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = [r for r in rows if r["trial_in_worker"] == 1]
    rest = [r for r in rows if r["trial_in_worker"] > 1]
    keys = ("overhead_seconds", "start", "data", "setup", "finish", "start_to_train")

    def median(group: list[dict[str, Any]]) -> dict[str, float] | None:
        return {k: statistics.median(r[k] for r in group) for k in keys} if group else None

    return {"first_in_worker": median(first), "rest": median(rest), "trials": len(rows)}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="trials in the study")
    parser.add_argument("--threads", type=int, default=2, help="threads for the first-step test")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--first-step", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv), extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    if args.first_step:  # the child of first_step_in_fresh_process
        print(json.dumps(first_step(args.threads)))
        return 0
    with tempfile.TemporaryDirectory(prefix="effnas-overhead-") as folder:
        rows, wall = run_study(args.trials, extra, Path(folder))
    report = {
        "date": date.today().isoformat(),
        "torch": torch.__version__,
        "command": f"search run --preset quick --trials {args.trials} {' '.join(extra)}".strip(),
        "search_wall_seconds": wall,
        "trainer_seconds_total": sum(r["trainer_seconds"] for r in rows),
        "per_trial": rows,
        "summary": summarise(rows),
        "first_step": first_step_in_fresh_process(args.threads),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"\n{report['date']}, torch {report['torch']}: {report['command']}")
    trainer = report["trainer_seconds_total"]
    print(f"search wall {wall:.1f} s, trainer (training + evaluation) {trainer:.1f} s in total")
    header = ("trial", "pid", "nth", "cached", "start", "data", "setup", "finish", "overhead")
    header += ("to_train", "trainer")
    print("".join(f"{h:>9}" for h in header))
    for r in rows:
        print(
            f"{r['number']:>9}{r['worker_pid']:>9}{r['trial_in_worker']:>9}{r['data_cached']!s:>9}"
            f"{r['start']:>9.3f}{r['data']:>9.3f}{r['setup']:>9.3f}{r['finish']:>9.3f}"
            f"{r['overhead_seconds']:>9.3f}{r['start_to_train']:>9.3f}{r['trainer_seconds']:>9.2f}"
        )
    for name, medians in report["summary"].items():
        if isinstance(medians, dict):
            shown = ", ".join(f"{k} {v:.3f}" for k, v in medians.items())
            print(f"median, {name.replace('_', ' ')}: {shown}")
    step = report["first_step"]
    print(f"first training step {step['first']:.3f} s, next steps {step['next_median']:.3f} s each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
