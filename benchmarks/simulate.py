"""Search quality with power: search strategies compared over many seeds on simulated trials.

Every search runs ``run_search`` (what `search run` runs: the planner, the sampler, the study on
a temporary SQLite file, the searcher, MO-ASHA) with the simulated-clock executor
(``search.driver.simulated``): each trial's learning curve comes from the surrogate fitted to the
measured table (``benchmarks/surrogate.py``, ``benchmarks/learning_curves.py``), noise included,
so a 64-trial search takes seconds and 30 seeds per method are affordable. Syne Tune's simulator
backend compares multi-fidelity methods the same way (Salinas et al. 2022); MO-ASHA was evaluated
so (Schmucker et al. 2021).

Methods (the names of ``--methods``):

- ``pareto``: this search, as `search run` runs it (opening, multi-objective TPE, MO-ASHA);
- ``random``: Optuna's RandomSampler over the same parameters, no opening, no early stopping;
- ``random_opening``: the ablation: random search that opens as this search does;
- ``nsga2``: Optuna's NSGA-II (generations of 8), no opening, no early stopping;
- ``gp``: this search with Optuna's Gaussian-process sampler (log expected hypervolume
  improvement, constraints) in TPE's place;
- ``pareto_no_asha``: this search without MO-ASHA (every trial trains all its epochs);
- ``pareto_compute``: this search given random search's training (``trials x epochs`` epochs)
  instead of its trial count: the epochs MO-ASHA saves buy more trials.

Per search: the hypervolume of the completed trials' front (``search.strategy.ranking``, the
reference of ``benchmarks/search_quality.py``: chance accuracy and the budget, log MACs) after
each trial's end, against the epochs trained so far. Per method: the mean and a 95 % interval of
the final hypervolume over seeds; the hypervolume at random search's full compute (``trials x
epochs`` epochs: a method that stops early is held at its last value); the epochs it needed to
reach random search's final hypervolume of the same seed; and per comparison (each method
against ``random_opening`` and ``random``) the mean ratio, a bootstrap 95 % interval of it, and a
paired Wilcoxon signed-rank test over seeds (the seeds pair the methods: same data split, same
opening where both open). ``--figure`` draws hypervolume against epochs, means with 95 % bands.

Example (the table of benchmarks/RESULTS.md)::

    python benchmarks/simulate.py --table benchmarks/results/learning_curves_small.jsonl.xz \\
        --seeds 30 --trials 32 64 --json benchmarks/results/simulate_small.json \\
        --figure benchmarks/results/simulate_small.png
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import Regime, read_table
from surrogate import SurrogateCurves

from search.config import SearchConfig
from search.driver.run import THIS_SEARCH, Baseline, run_search
from search.driver.simulated import SimulatedExecutor
from search.strategy.ranking import hypervolume
from search.strategy.scheduler import make_scheduler
from search.study import schema
from search.worker.curves import CurveSource
from space import count_spec

METHODS: tuple[str, ...] = (
    "pareto",
    "random",
    "random_opening",
    "nsga2",
    "gp",
    "pareto_no_asha",
    "pareto_compute",
    "pareto_fill",
    "random_fill",
)
REFERENCES: tuple[str, ...] = ("random_opening", "random")


@dataclass(frozen=True)
class Method:
    """How a method differs from `search run`: the sampler and opening, MO-ASHA, the budget."""

    baseline: Baseline = THIS_SEARCH
    early_stopping: bool = True
    equal_compute: bool = False  # trains trials x epochs epochs instead of trials trials


def method(name: str) -> Method:
    return {
        "pareto": Method(),
        "random": Method(Baseline("random", opening=False), early_stopping=False),
        "random_opening": Method(Baseline("random"), early_stopping=False),
        "nsga2": Method(Baseline("nsga2", opening=False), early_stopping=False),
        "gp": Method(Baseline("gp")),
        "pareto_no_asha": Method(early_stopping=False),
        "pareto_compute": Method(equal_compute=True),
        "pareto_fill": Method(Baseline(fill_every=2)),
        "random_fill": Method(Baseline("random", fill_every=2), early_stopping=False),
    }[name]


@dataclass
class Run:
    method: str
    trials: int
    seed: int
    hypervolume: float = 0.0
    epochs: int = 0
    completed: int = 0
    pruned: int = 0
    best_accuracy: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epochs, HV) at each end
    seconds: float = 0.0


def config_of(
    regime: Regime, trials: int, seed: int, concurrency: int, storage: str
) -> SearchConfig:
    return SearchConfig(
        budget_macs=regime.budget,
        dataset=regime.dataset,
        trials=trials,
        epochs=regime.epochs,
        subset=regime.subset,
        val_fraction=regime.val_fraction,
        batch_size=regime.batch_size,
        seed=seed,
        concurrency=concurrency,
        space=regime.space(),
        storage=storage,
        device="cpu",
    )


def simulate(
    name: str,
    source: CurveSource,
    regime: Regime,
    trials: int,
    seed: int,
    concurrency: int,
    reference: tuple[float, int, int],
) -> Run:
    """One search of method ``name``; ``reference`` is (chance, budget, smallest MACs)."""
    how = method(name)
    executor = SimulatedExecutor(
        source, concurrency, scheduler=make_scheduler if how.early_stopping else None
    )
    run = Run(name, trials, seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="effnas-sim-") as folder:
        config = config_of(regime, trials, seed, concurrency, f"sqlite:///{folder}/sim.db")
        if how.equal_compute:
            executor.epoch_budget = trials * regime.epochs
            config = replace(config, trials=executor.epoch_budget)  # the epochs stop it
        run_search(config, io.StringIO(), executor, how.baseline)
        study = optuna.load_study(study_name=config.study, storage=config.storage)
        numbers = {t.number: t for t in study.get_trials(deepcopy=False)}
    chance, budget, smallest = reference
    points: list[tuple[float, int]] = []
    for ended in executor.finished:
        trial = numbers[ended.number]
        if trial.values is not None:
            points.append((trial.values[0], int(trial.values[1])))
        hv = hypervolume(points, chance=chance, budget=budget, smallest=smallest)
        run.curve.append((ended.epochs, hv))
    run.hypervolume = run.curve[-1][1] if run.curve else 0.0
    run.epochs = executor.epochs_trained
    run.completed = len(points)
    run.pruned = sum(t.user_attrs.get(schema.STATUS) == schema.PRUNED for t in numbers.values())
    run.best_accuracy = max((a for a, _ in points), default=None)
    run.seconds = time.monotonic() - started
    return run


# ----- statistics -----------------------------------------------------------------------------
def hv_at(curve: list[tuple[int, float]], epochs: float) -> float:
    """The hypervolume a search had after ``epochs`` epochs (its last value if it stopped)."""
    value = 0.0
    for spent, hv in curve:
        if spent > epochs:
            break
        value = hv
    return value


def epochs_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, hv in curve if hv >= target - 1e-12), None)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): a t-based 95 % interval of the mean."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def ratio_interval(mine: list[float], theirs: list[float], seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of mean(mine) / mean(theirs), seeds resampled in
    pairs."""
    rng = np.random.default_rng(seed)
    a, b = np.array(mine), np.array(theirs)
    draws = rng.integers(0, len(a), (5000, len(a)))
    ratios = a[draws].mean(axis=1) / b[draws].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def compare(mine: list[float], theirs: list[float]) -> dict[str, Any]:
    """Paired comparison over seeds: mean ratio, its interval, wins, Wilcoxon's p."""
    differences = [m - t for m, t in zip(mine, theirs, strict=True)]
    nonzero = [d for d in differences if d != 0]
    p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 5 else math.nan
    low, high = ratio_interval(mine, theirs)
    return {
        "ratio": statistics.fmean(mine) / statistics.fmean(theirs),
        "ratio_ci": (low, high),
        "wins": sum(d > 0 for d in differences),
        "losses": sum(d < 0 for d in differences),
        "wilcoxon_p": p,
    }


def summarise(runs: list[Run], epochs: int) -> dict[str, Any]:
    """Per trial count and method: the final and equal-compute hypervolume, the epochs to reach
    random search's final hypervolume, and the paired comparisons against the references."""
    summary: dict[str, Any] = {}
    for trials in sorted({r.trials for r in runs}):
        mine = {
            m: {r.seed: r for r in runs if r.method == m and r.trials == trials} for m in METHODS
        }
        compute = trials * epochs
        rows: dict[str, Any] = {}
        for name, by_seed in mine.items():
            if not by_seed:
                continue
            seeds = sorted(by_seed)
            final = [by_seed[s].hypervolume for s in seeds]
            at_compute = [hv_at(by_seed[s].curve, compute) for s in seeds]
            row: dict[str, Any] = {
                "seeds": len(seeds),
                "hv": mean_interval(final),
                "hv_at_compute": mean_interval(at_compute),
                "epochs": statistics.fmean(by_seed[s].epochs for s in seeds),
                "pruned": statistics.fmean(by_seed[s].pruned for s in seeds),
            }
            randoms = mine["random"]
            if name != "random" and randoms:
                reach = []
                for s in seeds:
                    if s in randoms:
                        target = randoms[s].hypervolume
                        own = epochs_to_reach(randoms[s].curve, target)
                        got = epochs_to_reach(by_seed[s].curve, target)
                        reach.append(own / got if own and got else None)
                ratios = [r for r in reach if r is not None]
                row["reach_random"] = {
                    "reached": len(ratios),
                    "of": len(reach),
                    "median_speedup": statistics.median(ratios) if ratios else None,
                    "within_third": sum(r >= 3 for r in ratios),
                }
            for reference in REFERENCES:
                theirs = mine[reference]
                common = [s for s in seeds if s in theirs]
                if name == reference or len(common) < 2:
                    continue
                row[f"vs_{reference}"] = compare(
                    [hv_at(by_seed[s].curve, compute) for s in common],
                    [hv_at(theirs[s].curve, compute) for s in common],
                )
            rows[name] = row
        summary[str(trials)] = rows
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = []
    for trials, rows in summary.items():
        lines.append(f"{trials} trials")
        lines.append(
            f"{'method':<16}{'HV at compute [95 % CI]':<28}{'epochs':>7}  "
            f"{'vs random+opening: ratio [CI], W/L, p':<42}{'reach random':>14}"
        )
        for name, row in rows.items():
            mean, low, high = row["hv_at_compute"]
            versus = row.get("vs_random_opening")
            shown = "-"
            if versus:
                lo, hi = versus["ratio_ci"]
                shown = (
                    f"{versus['ratio']:.3f} [{lo:.3f}, {hi:.3f}], {versus['wins']}/"
                    f"{versus['losses']}, p={versus['wilcoxon_p']:.2g}"
                )
            reach = row.get("reach_random")
            speed = "-"
            if reach and reach["median_speedup"] is not None:
                speed = f"{reach['median_speedup']:.2f}x ({reach['reached']}/{reach['of']})"
            lines.append(
                f"{name:<16}{f'{mean:.4f} [{low:.4f}, {high:.4f}]':<28}{row['epochs']:>7.1f}  "
                f"{shown:<42}{speed:>14}"
            )
        lines.append("")
    return "\n".join(lines)


# ----- the figure -------------------------------------------------------------------------------
def bands(runs: list[Run], trials: int, step: int) -> dict[str, dict[str, list[float]]]:
    """Per method: hypervolume against epochs on a grid, mean and 95 % band over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    limit = max(r.epochs for r in runs if r.trials == trials)
    grid = list(range(0, limit + step, step))
    for name in METHODS:
        mine = [r for r in runs if r.method == name and r.trials == trials]
        if not mine:
            continue
        means, lows, highs = [], [], []
        for epochs in grid:
            mean, low, high = mean_interval([hv_at(r.curve, epochs) for r in mine])
            means.append(mean)
            lows.append(low)
            highs.append(high)
        out[name] = {"epochs": [float(g) for g in grid], "mean": means, "low": lows, "high": highs}
    return out


def draw(runs: list[Run], path: str, epochs: int) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    counts = sorted({r.trials for r in runs})
    figure = make_subplots(rows=1, cols=len(counts), subplot_titles=[f"{t} trials" for t in counts])
    palette = ("#1f77b4", "#7f7f7f", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728")
    palette += ("#17becf", "#bcbd22")
    colours = dict(zip(METHODS, palette, strict=True))
    for column, trials in enumerate(counts, start=1):
        for name, band in bands(runs, trials, max(1, epochs)).items():
            colour = colours[name]
            figure.add_trace(
                go.Scatter(
                    x=band["epochs"] + band["epochs"][::-1],
                    y=band["high"] + band["low"][::-1],
                    fill="toself",
                    fillcolor=colour,
                    opacity=0.15,
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=1,
                col=column,
            )
            figure.add_trace(
                go.Scatter(
                    x=band["epochs"],
                    y=band["mean"],
                    name=name,
                    line={"color": colour},
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text="epochs trained", row=1, col=column)
    figure.update_yaxes(title_text="hypervolume (mean, 95 % band)", row=1, col=1)
    figure.update_layout(width=560 * len(counts), height=460, template="plotly_white")
    if path.endswith(".html"):
        figure.write_html(path, include_plotlyjs="cdn")
    else:
        figure.write_image(path)


# ----- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--table", required=True, help="the learning-curve table the surrogate is fitted to")
    add("--seeds", type=int, default=30, help="seeds 0 .. N-1")
    add("--first-seed", type=int, default=0)
    add("--trials", type=int, nargs="+", default=[32, 64])
    add("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    add("--concurrency", type=int, default=1, help="trials at once on the simulated clock")
    add("--json", default=None, help="runs and summary; with --resume, continued")
    add("--resume", action="store_true")
    add("--figure", default=None, help="hypervolume against epochs (.png or .html)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    records = list(read_table(args.table))
    source = SurrogateCurves.fit(records)
    regime = Regime()
    if source.epochs != regime.epochs:
        raise SystemExit(f"the table has {source.epochs}-epoch curves; the regime {regime.epochs}")
    space = regime.space()
    smallest = count_spec(space.smallest_spec(regime.classes)).macs
    reference = (1.0 / regime.classes, regime.budget, smallest)
    setup = {
        "table": Path(args.table).name,
        "regime": regime.identity(),
        "concurrency": args.concurrency,
    }
    runs: list[Run] = []
    if args.resume and args.json and Path(args.json).exists():
        saved = json.loads(Path(args.json).read_text())
        if saved["setup"] != json.loads(json.dumps(setup)):
            raise SystemExit(f"{args.json} holds runs of another setup")
        runs = [Run(**r) for r in saved["runs"]]
    done = {(r.method, r.trials, r.seed) for r in runs}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for trials in args.trials:
        for seed in seeds:
            for name in args.methods:
                if (name, trials, seed) in done:
                    continue
                run = simulate(name, source, regime, trials, seed, args.concurrency, reference)
                runs.append(run)
                print(
                    f"{trials} trials seed {seed} {name}: HV {run.hypervolume:.4f}, "
                    f"{run.epochs} epochs, {run.seconds:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            if args.json:
                report = {"setup": setup, "runs": [asdict(r) for r in runs]}
                Path(args.json).write_text(json.dumps(report) + "\n")
    summary = summarise(runs, regime.epochs)
    print(table(summary))
    if args.json:
        report = {"setup": setup, "runs": [asdict(r) for r in runs], "summary": summary}
        Path(args.json).write_text(json.dumps(report) + "\n")
    if args.figure:
        draw(runs, args.figure, regime.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
