"""Search quality: the front this search finds against random search and the paper preset.

Same space, data, trial count and epochs for every method, over several seeds:

(a) ``pareto``: this search, the ``joint`` strategy as ``search run`` runs it: the planner's MAC
    shares and opening trials (the cheapest network, then spread shares), no repeated network,
    multi-objective TPE that learns from early-stopped trials (``search.strategy.sampler``) and
    MO-ASHA early stopping (``search.strategy.scheduler``);
(b) ``random``: Optuna's RandomSampler over the same parameters (block options, coefficient unit
    variables, MAC share), no opening trials and no early stopping: every trial trains all
    epochs (a repeated network is still not trained twice);
(a') ``pareto_compute``: this search again, given the training random search spent instead of
    its trial count: it keeps sampling until it has trained ``trials x epochs`` epochs (the
    epochs early stopping saved buy further trials), the comparison at equal compute that
    early stopping is for (ASHA, Li et al. 2020);
(b') ``random_opening`` (an ablation): random search that opens like (a), with the cheapest
    network and spread MAC shares, to show how much of (a)'s lead over (b) the opening buys;
(a'') ``pareto_gp``: this search with Optuna's Gaussian-process sampler (log expected
    hypervolume improvement) in place of TPE, the same opening and MO-ASHA: whether a sampler
    that models the objectives learns more than TPE from a dozen trials;
(c) ``preset``: docs/design.md's "paper" preset network (standard block, expansion 4, depthwise 3x3)
    with EfficientNet-B0's coefficients (alpha 1.2, beta 1.1, gamma 1.15), fitted by counting to
    a fixed ladder of MAC levels, log-spaced from its own phi = 0 cost to the budget.

Per method and seed it reports the hypervolume of the completed trials' front
(``search.strategy.ranking.hypervolume``: reference point chance accuracy ``1 / classes`` and the
budget; accuracy normalised to [0, 1] above chance, MACs on a log scale from the budget (0) to the
smallest network of the space (1)) and the best accuracy under the budget; then the mean and
standard deviation over seeds. Per trial it keeps the hypervolume after it against the epochs
trained so far (``curve``), and from that the epochs each method needed to reach random search's
final hypervolume of the same seed, as a ratio to the epochs random search itself needed (above
1: it got there with fewer epochs; the measure of the MO-ASHA line of work, Schmucker et al.
2021). A table goes to stdout, JSON to ``--json FILE`` (``-``: stdout) after every run, and
``--resume`` keeps the runs such a file holds (same setup), so a long run can be continued.

(a), (a'), (b) and (b') run ``run_search``, what `search run` runs, each on its own temporary
SQLite study, with the inline executor (``search.driver.inline``): the trials run one after
another in this process through the same searcher, scheduler and trainable Ray Tune would call,
without Ray's start-up, which would cost more than a tiny trial and adds nothing to what is
compared here (the concurrency is 1). What `search run` has no flag for is explicit here: (a')
gives the executor an epoch budget (and ``trials x epochs`` trials at most); (b) and (b') give
``run_search`` a ``Baseline`` with Optuna's RandomSampler (per-trial seeds as in the search) and
no scheduler, and (b) leaves out the opening. The data split follows the seed, as in
``search run``, and is the same for every method of a seed.

By default the three methods (a), (b) and (c) run; ``--methods`` adds (a') and (b').
CPU configuration (the defaults: the quick preset's space at 24 px with a 6e7-MAC budget, 3,000
Fashion-MNIST images of which 750 validate, batch 16, 2 epochs, 3 seeds x (8 + 8 trials + 3 preset
networks); the run times are in benchmarks/RESULTS.md). 3,000 images rather than 600 because at 600
a network has taken 28 steps at MO-ASHA's first rung, too few for its accuracy there to say much::

    python benchmarks/search_quality.py --json search_quality.json

GPU configuration (more data, epochs and trials over the whole block space at 32 px, a 4e8-MAC
budget; roughly an hour on one H100, an estimate)::

    python benchmarks/search_quality.py --device cuda --subset 20000 --val-fraction 0.1 \
        --epochs 6 --trials 32 --batch-size 256 --resolution 32 --budget-flops 4e8 \
        --full-space --ladder 5 --seeds 0 1 2 --json gpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import optuna

from search.config import SearchConfig
from search.driver.inline import InlineExecutor
from search.driver.run import THIS_SEARCH, Baseline, run_search
from search.strategy.ranking import hypervolume
from search.strategy.scheduler import make_scheduler
from search.study import schema
from search.study.ledger import trial_seed
from search.worker.trial import TrialSettings, run_trial
from space import ArchSpec, count_spec, fit_phi
from space.scaling import EFFICIENTNET_B0
from space.searchspace import SearchSpace, load_space_file
from trainers.data import ImageData, load_dataset, train_val_split

METHODS: tuple[str, ...] = (
    "pareto",
    "random",
    "preset",
    "pareto_compute",
    "random_opening",
    "pareto_gp",
)
DEFAULT_METHODS: tuple[str, ...] = ("pareto", "random", "preset")  # (a), (b), (c) above
QUICK_SPACE = {
    "block": ["standard", "se"],
    "expansion": [1, 2],
    "mid_conv": "depthwise",
    "kernel": 3,
}


@dataclass(frozen=True)
class Setup:
    """Everything the methods share."""

    budget: int = 60_000_000
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    subset: int | None = 3000
    val_fraction: float = 0.25
    epochs: int = 2
    trials: int = 8
    batch_size: int = 16
    resolution: int | None = 24
    ladder: int = 3
    device: str = "cpu"
    full_space: bool = False
    space_file: str | None = None  # a --space file (e.g. benchmarks/spaces/small.toml) instead

    def space(self) -> SearchSpace:
        data: dict[str, Any] = {} if self.full_space else dict(QUICK_SPACE)
        if self.space_file is not None:
            data = load_space_file(self.space_file)
        if self.resolution is not None:
            data["resolution"] = self.resolution
        return SearchSpace.from_mapping(data)

    def config(self, seed: int) -> SearchConfig:
        return SearchConfig(
            budget_macs=self.budget,
            dataset=self.dataset,
            data_dir=self.data_dir,
            trials=self.trials,
            epochs=self.epochs,
            subset=self.subset,
            val_fraction=self.val_fraction,
            batch_size=self.batch_size,
            seed=seed,
            space=self.space(),
            device=self.device,
        )


@dataclass
class Run:
    """One method on one seed: its trained points and the measures of its front."""

    method: str
    seed: int
    points: list[tuple[float, int]] = field(default_factory=list)  # completed (accuracy, MACs)
    # every trained trial in the order it ran: (accuracy or None when stopped early, MACs, epochs)
    history: list[tuple[float | None, int, int]] = field(default_factory=list)
    pruned: int = 0
    infeasible: int = 0
    epochs_trained: int = 0
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # process CPU time, all threads (steadier on a shared machine)
    hypervolume: float = 0.0
    best_accuracy: float | None = None
    front: list[tuple[float, int]] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epochs so far, hypervolume)


def settings_of(setup: Setup) -> TrialSettings:
    """The preset networks' trial settings: those ``run_search`` gives a CPU search at
    concurrency 1 (all the cores, the whole memory)."""
    return TrialSettings(
        epochs=setup.epochs,
        batch_size=setup.batch_size,
        device=setup.device,
        threads=os.cpu_count() or 1,
    )


def search(setup: Setup, seed: int, method: str) -> Run:
    """(a), (a'), (b) or (b'): ``run_search`` with the inline executor on a new temporary study;
    (a') samples until it has trained as many epochs as (b) does."""
    config = setup.config(seed)
    ours = not method.startswith("random")
    executor = InlineExecutor(scheduler=make_scheduler if ours else None)
    baseline = THIS_SEARCH if ours else Baseline("random", opening=method == "random_opening")
    if method == "pareto_gp":
        baseline = Baseline("gp")
    if method == "pareto_compute":
        executor.epoch_budget = setup.trials * setup.epochs
        config = replace(config, trials=executor.epoch_budget)  # the epochs stop it, not the count
    run = Run(method, seed)
    with tempfile.TemporaryDirectory(prefix="effnas-quality-") as folder:
        config = replace(config, storage=f"sqlite:///{folder}/study.db")
        started, cpu = time.monotonic(), time.process_time()
        run_search(config, io.StringIO(), executor, baseline)  # progress lines not shown
        run.seconds, run.cpu_seconds = time.monotonic() - started, time.process_time() - cpu
        trials = optuna.load_study(study_name=config.study, storage=config.storage).trials
    run.epochs_trained = executor.epochs_trained
    for trial in sorted(trials, key=lambda t: t.number):  # the inline executor runs in order
        status = trial.user_attrs.get(schema.STATUS)
        run.pruned += status == schema.PRUNED
        run.infeasible += status == schema.INFEASIBLE
        epochs = int(trial.user_attrs.get(schema.EPOCHS_RUN) or 0)
        if epochs:
            accuracy = trial.values[0] if trial.values is not None else None
            run.history.append((accuracy, int(trial.user_attrs[schema.MACS]), epochs))
    run.points = [(t.values[0], int(t.values[1])) for t in trials if t.values is not None]
    return run


def train_one(
    config: dict[str, Any], train: ImageData, val: ImageData, settings: TrialSettings
) -> dict[str, Any]:
    """Train one preset network with the worker's ``run_trial``; returns its last result."""
    last: dict[str, Any] = {}

    def report(result: dict[str, Any]) -> None:
        last.clear()
        last.update(result)

    run_trial(config, train, val, settings, report=report)
    return last


def preset_ladder(setup: Setup, classes: int) -> list[ArchSpec]:
    """(c): the paper preset with B0's coefficients at ``ladder`` log-spaced MAC levels."""
    pins = {k: v for k, v in setup.space().pins.items() if k in ("resolution", "base_resolution")}
    preset = ArchSpec(classes=classes, **pins, **EFFICIENTNET_B0)
    low = count_spec(preset).macs
    if low > setup.budget:
        return []
    count = max(1, setup.ladder)
    levels = [low * (setup.budget / low) ** (i / max(1, count - 1)) for i in range(count)]
    specs: list[ArchSpec] = []
    for level in levels:
        spec = fit_phi(preset, level).spec
        if spec not in specs:
            specs.append(spec)
    return specs


def presets(setup: Setup, seed: int, train: ImageData, val: ImageData, classes: int) -> Run:
    run = Run("preset", seed)
    settings = settings_of(setup)
    started, cpu = time.monotonic(), time.process_time()
    for index, spec in enumerate(preset_ladder(setup, classes)):
        config = {"spec": spec.canonical(), "number": index, "seed": trial_seed(seed, index)}
        final = train_one(config, train, val, settings)
        if final.get("final"):
            run.points.append((float(final["accuracy"]), count_spec(spec).macs))
            run.history.append((run.points[-1][0], run.points[-1][1], setup.epochs))
            run.epochs_trained += setup.epochs
    run.seconds, run.cpu_seconds = time.monotonic() - started, time.process_time() - cpu
    return run


def measure(run: Run, chance: float, budget: int, smallest: int) -> Run:
    """Fill in the hypervolume, the best accuracy under the budget and the front."""
    within = [(a, m) for a, m in run.points if m <= budget]
    run.hypervolume = hypervolume(within, chance=chance, budget=budget, smallest=smallest)
    run.best_accuracy = max((a for a, _ in within), default=None)
    front = [p for p in within if not any(o[0] >= p[0] and o[1] <= p[1] and o != p for o in within)]
    run.front = sorted(set(front), key=lambda p: p[1])
    run.curve = hypervolume_curve(run.history, chance, budget, smallest)
    return run


def hypervolume_curve(
    history: list[tuple[float | None, int, int]], chance: float, budget: int, smallest: int
) -> list[tuple[int, float]]:
    """The front's hypervolume after each trained trial, against the epochs trained so far:
    what a search has found for the compute it has spent (early-stopped trials add epochs,
    no point)."""
    curve: list[tuple[int, float]] = []
    points: list[tuple[float, int]] = []
    epochs = 0
    for accuracy, macs, trained in history:
        epochs += trained
        if accuracy is not None and macs <= budget:
            points.append((accuracy, macs))
        curve.append((epochs, hypervolume(points, chance=chance, budget=budget, smallest=smallest)))
    return curve


def epochs_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The epochs a search had trained when its hypervolume first reached ``target`` (None:
    never)."""
    return next((epochs for epochs, hv in curve if hv >= target - 1e-12), None)


def speedups(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Per method: the epochs it needed to reach random search's final hypervolume of the same
    seed, and the ratio of random search's own epochs to reach it to those (above 1: fewer
    epochs than random search; the savings the MO-ASHA line of work reports)."""
    randoms = {r.seed: r for r in runs if r.method == "random"}
    result: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        mine = [r for r in runs if r.method == method and r.seed in randoms]
        if method == "random" or not mine:
            continue
        per_seed: list[dict[str, Any]] = []
        for run in mine:
            random = randoms[run.seed]
            own = epochs_to_reach(random.curve, random.hypervolume)
            reached = epochs_to_reach(run.curve, random.hypervolume)
            ratio = own / reached if own and reached else None
            per_seed.append({"seed": run.seed, "random": own, "epochs": reached, "ratio": ratio})
        ratios = [s["ratio"] for s in per_seed if s["ratio"] is not None]
        result[method] = {
            "per_seed": per_seed,
            "reached": len(ratios),
            "seeds": len(per_seed),
            "ratio_median": statistics.median(ratios) if ratios else None,
            "ratio_geomean": math.exp(statistics.fmean(math.log(r) for r in ratios))
            if ratios
            else None,
        }
    return result


def summarise(runs: list[Run]) -> dict[str, dict[str, float | None]]:
    summary: dict[str, dict[str, float | None]] = {}
    for method in METHODS:
        mine = [r for r in runs if r.method == method]
        if not mine:
            continue
        hv = [r.hypervolume for r in mine]
        best = [r.best_accuracy for r in mine if r.best_accuracy is not None]
        summary[method] = {
            "seeds": len(mine),
            "hypervolume_mean": statistics.fmean(hv),
            "hypervolume_std": statistics.stdev(hv) if len(hv) > 1 else 0.0,
            "best_accuracy_mean": statistics.fmean(best) if best else None,
            "front_size_mean": statistics.fmean(len(r.front) for r in mine),
            "epochs_trained_mean": statistics.fmean(r.epochs_trained for r in mine),
            "seconds_mean": statistics.fmean(r.seconds for r in mine),
            "cpu_seconds_mean": statistics.fmean(r.cpu_seconds for r in mine),
        }
    return summary


def table(
    runs: list[Run],
    summary: dict[str, dict[str, float | None]],
    reach: dict[str, dict[str, Any]] | None = None,
) -> str:
    lines = [
        f"{'method':<15}{'seed':>6}{'HV':>9}{'best acc':>10}{'front':>7}{'epochs':>8}{'s':>8}"
        f"{'cpu s':>8}"
    ]
    for run in runs:
        best = f"{run.best_accuracy:.4f}" if run.best_accuracy is not None else "-"
        lines.append(
            f"{run.method:<15}{run.seed:>6}{run.hypervolume:>9.4f}{best:>10}{len(run.front):>7}"
            f"{run.epochs_trained:>8}{run.seconds:>8.0f}{run.cpu_seconds:>8.0f}"
        )
    lines.append("")
    lines.append(f"{'method':<15}{'seeds':>6}{'HV mean':>9}{'HV std':>9}{'best acc':>10}")
    for method, row in summary.items():
        best = row["best_accuracy_mean"]
        lines.append(
            f"{method:<15}{row['seeds']:>6.0f}{row['hypervolume_mean']:>9.4f}"
            f"{row['hypervolume_std']:>9.4f}{(f'{best:.4f}' if best is not None else '-'):>10}"
        )
    if reach:
        lines.append("")
        lines.append("epochs to reach random search's final hypervolume (random's own / method's)")
        for method, row in reach.items():
            seeds = "  ".join(
                f"s{s['seed']}:{s['random']}/{s['epochs'] if s['epochs'] is not None else '-'}"
                for s in row["per_seed"]
            )
            median = row["ratio_median"]
            lines.append(
                f"{method:<15} reached {row['reached']}/{row['seeds']}, median ratio "
                f"{(f'{median:.2f}x' if median is not None else '-')}   {seeds}"
            )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> tuple[Setup, list[int], list[str], str | None, bool]:
    defaults = Setup()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(DEFAULT_METHODS))
    p.add_argument("--budget-flops", type=float, default=defaults.budget)
    p.add_argument("--dataset", default=defaults.dataset)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--subset", type=int, default=defaults.subset)
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--trials", type=int, default=defaults.trials)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument(
        "--resolution",
        type=lambda text: None if text == "auto" else int(text),
        default=defaults.resolution,
        help="pinned input size (px), or 'auto' (scaled by gamma**phi, see --space)",
    )
    p.add_argument("--space", default=None, help="a --space file instead of the quick space")
    p.add_argument("--ladder", type=int, default=defaults.ladder, help="preset MAC levels")
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--full-space", action="store_true", help="DESIGN.md's whole block space")
    p.add_argument("--json", default=None, help="write the JSON report here ('-': stdout)")
    p.add_argument("--resume", action="store_true", help="keep the runs --json already holds")
    args = p.parse_args(argv)
    setup = Setup(
        budget=int(args.budget_flops),
        dataset=args.dataset,
        data_dir=args.data_dir,
        subset=args.subset,
        val_fraction=args.val_fraction,
        epochs=args.epochs,
        trials=args.trials,
        batch_size=args.batch_size,
        resolution=args.resolution,
        ladder=args.ladder,
        device=args.device,
        full_space=args.full_space,
        space_file=args.space,
    )
    return setup, args.seeds, args.methods, args.json, args.resume


def main(argv: list[str] | None = None) -> int:
    setup, seeds, methods, json_path, resume = parse(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full_train, _ = load_dataset(setup.dataset, setup.data_dir)
    classes = full_train.classes
    smallest = count_spec(setup.space().smallest_spec(classes)).macs
    chance = 1.0 / classes
    runs = saved_runs(json_path, setup) if resume else []
    done = {(r.method, r.seed) for r in runs}
    started = time.monotonic()
    for seed in seeds:
        train, val = train_val_split(full_train, setup.val_fraction, seed, setup.subset)
        for method in methods:
            if (method, seed) in done:
                continue
            if method == "preset":
                run = presets(setup, seed, train, val, classes)
            else:
                run = search(setup, seed, method)
            runs.append(measure(run, chance, setup.budget, smallest))
            print(
                f"seed {seed} {method}: HV {run.hypervolume:.4f}, {run.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if json_path not in (None, "-"):  # after every run, for --resume
                write(json_path, report_of(setup, seeds, runs, chance, smallest, started))
    report = report_of(setup, seeds, runs, chance, smallest, started)
    print(table(runs, report["summary"], report["epochs_to_reach_random"]))
    if json_path == "-":
        print(json.dumps(report, indent=1))
    elif json_path:
        write(json_path, report)
    return 0


def report_of(
    setup: Setup, seeds: list[int], runs: list[Run], chance: float, smallest: int, started: float
) -> dict[str, Any]:
    summary = summarise(runs)
    return {
        "setup": asdict(setup),
        "seeds": seeds,
        "reference": {"chance": chance, "budget": setup.budget, "smallest_macs": smallest},
        "runs": [asdict(r) for r in runs],
        "summary": summary,
        "epochs_to_reach_random": speedups(runs),
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time(),
        "pareto_beats_random": _beats(summary, "pareto"),
        "pareto_compute_beats_random": _beats(summary, "pareto_compute"),
    }


def write(path: str, report: dict[str, Any]) -> None:
    with open(path, "w") as file:
        json.dump(report, file, indent=1)


def saved_runs(path: str | None, setup: Setup) -> list[Run]:
    """The runs a previous ``--json`` file holds, when it was written with this setup."""
    if path in (None, "-") or not os.path.exists(path):
        return []
    with open(path) as file:
        saved = json.load(file)
    if saved.get("setup") != asdict(setup):
        raise SystemExit(f"{path} holds runs with another setup; drop --resume or the file")
    runs = [Run(**run) for run in saved["runs"]]
    for run in runs:  # JSON turned the tuples into lists
        run.points = [(a, m) for a, m in run.points]
        run.history = [(a, m, e) for a, m, e in run.history]
        run.front = [(a, m) for a, m in run.front]
        run.curve = [(e, hv) for e, hv in run.curve]
    return runs


def _beats(summary: dict[str, dict[str, float | None]], method: str) -> bool | None:
    if method not in summary or "random" not in summary:
        return None
    pareto, random = summary[method]["hypervolume_mean"], summary["random"]["hypervolume_mean"]
    assert pareto is not None and random is not None
    return bool(pareto > random) if math.isfinite(pareto) and math.isfinite(random) else None


if __name__ == "__main__":
    sys.exit(main())
