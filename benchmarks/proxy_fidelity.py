"""Proxy fidelity: does the ranking of networks by a short search trial agree with real training?

A search ranks networks by the validation accuracy of trials of one or two epochs on a small
subset of the data (a low-fidelity proxy). This script trains one fixed set of networks at each
fidelity and compares the rankings:

- ``quick``: the quick preset's trial (``search/cli/presets/quick.toml``: 2,000 images of which a
  quarter validate, one epoch, batch 16);
- ``sq-cpu``: the search-quality benchmark's CPU trial (``benchmarks/search_quality.py``'s
  ``Setup``: 3,000 images of which a quarter validate, two epochs, batch 16);
- ``reference``: a longer training on more images, scored on a fixed subset of the data set's
  test split; the stand-in for the ranking the search is meant to find.

The proxies are scored on their own validation split, as the search scores them. Every network
trains once per fidelity with ``trainers.loop.train_trial`` and the same seed.

The networks are drawn with a fixed seed from the full search space (``space.searchspace``) at a
pinned resolution, stratified by block type (standard, se, condconv in turn) and spread over MAC
levels log-spaced from the smallest network of the space to ``--max-macs``: each draws its block
options at random until its phi = 0 network fits its level, then takes the largest phi that fits
(``space.fit_phi``), as the search's planner fits a sampled candidate to a MAC target.

Statistics, each proxy's accuracies against the reference accuracies: Kendall's tau-b and
Spearman's rho (``scipy.stats``) with percentile bootstrap 95 % intervals (networks resampled with
replacement, a fixed seed), whether the proxy's best network is the reference's best (top-1), the
reference accuracy given up by taking the proxy's best (regret) and the share of trials below
chance. Baselines: the same against ranking by MACs alone and by parameters alone, which
zero-cost proxies often fail to beat (Abdelfattah et al., "Zero-Cost Proxies for Lightweight
NAS", ICLR 2021); short-training proxies are the usual low-fidelity estimate whose rank
correlation NAS-Bench-201 reports (Dong & Yang, ICLR 2020).

BatchNorm recalibration ("precise BN", ``trainers.steps.recalibrate_batchnorm``) is measured on
the same trained proxy models, without training again: each proxy trial saves its weights, which
are evaluated a second time after the running statistics are re-estimated from training batches
(``trainers.loop.evaluate_weights``), so the two rows differ only in the statistics.

The runs are written to ``--json`` after every training; ``--resume`` skips the networks a JSON
file of the same setup already holds (to finish an interrupted run); ``--summary-only`` prints the
statistics of the networks such a file holds, training nothing.
The trials run one after another in this process with ``--threads`` CPU threads. The default
is 1 because on cores that other jobs share, OpenMP's spinning waits make a two-thread trial
many times slower than a one-thread one; with ``OMP_WAIT_POLICY=PASSIVE`` exported two threads
are faster again (``trainers.speed``). The thread count changes the accuracies slightly (CPU
trials are reproducible for one thread count). The command behind benchmarks/RESULTS.md::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/proxy_fidelity.py --threads 2 \
        --json benchmarks/results/proxy_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from common.errors import Diverged
from space import ArchSpec, count_spec, fit_phi
from space.scaling import BASE_RESOLUTION
from space.searchspace import RandomDraws, SearchSpace, load_space_file
from space.spec import BLOCK_TYPES
from trainers.data import ImageData, load_dataset, train_val_split
from trainers.loop import TrainConfig, evaluate_weights, train_trial

PROXIES: tuple[str, ...] = ("quick", "sq-cpu")
REFERENCE = "reference"
MAX_DRAWS = 10_000  # block options drawn per network before giving up on its MAC level


@dataclass(frozen=True)
class Fidelity:
    """One way of training every network. A proxy keeps ``images`` images of the training split
    and validates on ``val_fraction`` of them (``trainers.data.train_val_split``, as the search
    does); the reference (``val_fraction`` None) trains on ``images`` training images and is
    scored on the benchmark's fixed test subset."""

    name: str
    images: int
    epochs: int
    batch_size: int
    val_fraction: float | None = None

    @property
    def train_images(self) -> int:
        if self.val_fraction is None:
            return self.images
        return self.images - min(self.images - 1, max(1, round(self.val_fraction * self.images)))


@dataclass(frozen=True)
class Setup:
    """Everything that makes two runs the same benchmark. ``resolution`` None leaves the input
    size free: scaled from ``base_resolution`` by gamma**phi, as the search scales it; ``min_macs``
    None starts the MAC levels at the smallest network of the space."""

    networks: int = 12
    seed: int = 0
    resolution: int | None = 32
    max_macs: float = 6e7
    dataset: str = "fashion-mnist"
    proxies: tuple[Fidelity, ...] = (
        Fidelity("quick", 2000, 1, 16, 0.25),
        Fidelity("sq-cpu", 3000, 2, 16, 0.25),
    )
    reference: Fidelity = Fidelity(REFERENCE, 7500, 3, 64)
    test_images: int = 2000
    bn_batches: int = 50
    threads: int = 1
    base_resolution: int = BASE_RESOLUTION
    min_macs: float | None = None
    space: tuple[tuple[str, Any], ...] = ()  # narrowed dimensions, e.g. (("mid_conv", ...),)

    @property
    def fidelities(self) -> tuple[Fidelity, ...]:
        return (*self.proxies, self.reference)

    def pins(self, classes: int) -> dict[str, Any]:
        """The search-space pins every network of the benchmark shares."""
        pins: dict[str, Any] = {**dict(self.space), "classes": classes}
        if self.resolution is not None:
            pins["resolution"] = self.resolution
        if self.base_resolution != BASE_RESOLUTION:
            pins["base_resolution"] = self.base_resolution
        return pins

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("threads")  # a speed setting, not a different benchmark
        data["space"] = dict(self.space)
        defaults = (("base_resolution", BASE_RESOLUTION), ("min_macs", None), ("space", {}))
        for name, default in defaults:
            if data[name] == default:  # runs saved before these existed hold neither
                data.pop(name)
        return data


@dataclass
class Score:
    """One network at one fidelity: accuracy as trained, after BN recalibration (proxies only),
    the training call's wall seconds and the recalibrated evaluation's. A training whose loss
    diverged (``common.errors.Diverged``, a FAIL in a search) scores chance accuracy: the search
    gets nothing from it, and a ranking puts it last."""

    accuracy: float
    recalibrated: float | None = None
    seconds: float = 0.0
    recalibration_seconds: float = 0.0
    diverged: bool = False


@dataclass
class Network:
    spec: str
    macs: int
    params: int
    scores: dict[str, Score] = field(default_factory=dict)


def mac_levels(low: float, high: float, count: int) -> list[float]:
    """``count`` MAC levels log-spaced from ``low`` to ``high`` (both included)."""
    if count == 1:
        return [high]
    return [low * (high / low) ** (i / (count - 1)) for i in range(count)]


def select_networks(setup: Setup, classes: int) -> list[ArchSpec]:
    """The benchmark's networks, cheapest level first (see the module docstring): block types in
    turn over the levels, options drawn from the full space until the phi = 0 network fits the
    level and is not yet chosen, then the largest phi that fits."""
    pins = setup.pins(classes)
    low = setup.min_macs or count_spec(SearchSpace.from_mapping(pins).smallest_spec(classes)).macs
    rng = random.Random(setup.seed)
    chosen: list[ArchSpec] = []
    seen: set[str] = set()
    for index, level in enumerate(mac_levels(low, setup.max_macs, setup.networks)):
        block = BLOCK_TYPES[index % len(BLOCK_TYPES)]
        space = SearchSpace.from_mapping({**pins, "block": block})
        for _ in range(MAX_DRAWS):
            spec = ArchSpec(**space.sample(RandomDraws(rng)).values)
            if count_spec(spec).macs > level:
                continue
            spec = fit_phi(spec, level).spec
            if spec.spec_id not in seen:
                break
        else:
            raise SystemExit(f"no new {block} network fits {level:.3g} MACs; raise --max-macs")
        seen.add(spec.spec_id)
        chosen.append(spec)
    return chosen


def splits(
    fidelity: Fidelity, train: ImageData, test: ImageData, seed: int, test_images: int
) -> tuple[ImageData, ImageData]:
    """(training, scoring) data of one fidelity; the same for every network."""
    if fidelity.val_fraction is not None:
        return train_val_split(train, fidelity.val_fraction, seed, fidelity.images)
    generator = torch.Generator().manual_seed(seed)
    kept = train.take(torch.randperm(len(train), generator=generator)[: fidelity.images])
    held = test.take(torch.randperm(len(test), generator=generator)[:test_images], "test")
    return kept, held


def train_network(
    spec: ArchSpec, fidelity: Fidelity, data: tuple[ImageData, ImageData], setup: Setup
) -> Score:
    """Train once; a proxy's saved weights are evaluated again after BN recalibration."""
    train, val = data
    config = TrainConfig(
        epochs=fidelity.epochs,
        batch_size=fidelity.batch_size,
        seed=setup.seed,
        device="cpu",
        threads=setup.threads,
    )
    proxy = fidelity.val_fraction is not None and setup.bn_batches > 0
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        try:
            result = train_trial(
                spec, train, val, config, save_dir=Path(directory) if proxy else None
            )
        except Diverged:
            chance = 1.0 / spec.classes
            recalibrated = chance if proxy else None
            return Score(chance, recalibrated, time.perf_counter() - started, diverged=True)
        score = Score(result.accuracy, seconds=time.perf_counter() - started)
        if proxy:
            started = time.perf_counter()
            state = torch.load(Path(directory) / "weights.pt", weights_only=True)
            recalibrating = replace(config, bn_recalibration_batches=setup.bn_batches)
            score.recalibrated = evaluate_weights(spec, state, train, val, recalibrating)[0]
            score.recalibration_seconds = time.perf_counter() - started
    return score


# ----- statistics ---------------------------------------------------------------------------


def rank_correlations(x: list[float], y: list[float]) -> tuple[float, float]:
    """(Kendall's tau-b, Spearman's rho) of two score lists; NaN where one list is constant."""
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan, math.nan
    tau = float(stats.kendalltau(x, y).statistic)
    rho = float(stats.spearmanr(x, y).statistic)
    return tau, rho


def bootstrap_intervals(
    x: list[float], y: list[float], resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Percentile 95 % intervals of tau and rho over ``resamples`` resamplings of the pairs with
    replacement; resamples where either side is constant (no ranking) are left out."""
    rng = np.random.default_rng(seed)
    pairs_x, pairs_y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    taus: list[float] = []
    rhos: list[float] = []
    for _ in range(resamples):
        index = rng.integers(0, len(x), len(x))
        tau, rho = rank_correlations(list(pairs_x[index]), list(pairs_y[index]))
        if not math.isnan(tau):
            taus.append(tau)
            rhos.append(rho)
    if not taus:
        return {"tau": (math.nan, math.nan), "rho": (math.nan, math.nan)}
    return {
        name: (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
        for name, values in (("tau", taus), ("rho", rhos))
    }


def top1(predicted: list[float], reference: list[float]) -> tuple[bool, float]:
    """(is the predicted best the reference's best, the reference accuracy given up by taking
    it: best reference minus the reference of the first predicted best)."""
    pick = int(np.argmax(predicted))
    best = max(reference)
    return reference[pick] == best, best - reference[pick]


def agreement(
    name: str, predicted: list[float], reference: list[float], resamples: int, seed: int
) -> dict[str, Any]:
    """One row of the summary: the rank statistics of ``predicted`` against ``reference``."""
    tau, rho = rank_correlations(predicted, reference)
    agrees, regret = top1(predicted, reference)
    return {
        "name": name,
        "tau": tau,
        "rho": rho,
        **{
            f"{k}_ci": v
            for k, v in bootstrap_intervals(predicted, reference, resamples, seed).items()
        },
        "top1": agrees,
        "regret": regret,
    }


def summarise(networks: list[Network], setup: Setup, resamples: int, chance: float) -> list[dict]:
    """The summary rows: each proxy as trained and recalibrated, MACs only, parameters only."""
    done = [n for n in networks if all(f.name in n.scores for f in setup.fidelities)]
    reference = [n.scores[REFERENCE].accuracy for n in done]
    rows: list[dict[str, Any]] = []
    for fidelity in setup.fidelities:
        scores = [n.scores[fidelity.name] for n in done]
        seconds = sum(s.seconds for s in scores)
        variants = [("", [s.accuracy for s in scores], seconds)]
        if fidelity.name != REFERENCE and all(s.recalibrated is not None for s in scores):
            recal = sum(s.recalibration_seconds for s in scores)
            variants.append((" +BN", [s.recalibrated for s in scores], seconds + recal))
        for suffix, accuracies, cost in variants:
            row = agreement(fidelity.name + suffix, accuracies, reference, resamples, setup.seed)
            row["below_chance"] = sum(a < chance for a in accuracies) / max(1, len(accuracies))
            row["images_x_epochs"] = f"{fidelity.train_images} x {fidelity.epochs}"
            row["seconds"] = cost
            rows.append(row)
    for name, values in (
        ("MACs only", [n.macs for n in done]),
        ("params only", [n.params for n in done]),
    ):
        rows.append(agreement(name, [float(v) for v in values], reference, resamples, setup.seed))
    return rows


# ----- output -------------------------------------------------------------------------------


def _interval(value: float, bounds: tuple[float, float]) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.2f} [{bounds[0]:+.2f}, {bounds[1]:+.2f}]"


def summary_table(rows: list[dict[str, Any]], networks: int) -> str:
    lines = [
        f"Rankings against the reference, {networks} networks (95 % bootstrap intervals)",
        f"{'ranking':<16}{'images x epochs':>16}{'seconds':>9}  {'Kendall tau':<22}"
        f"{'Spearman rho':<22}{'top-1':>6}{'regret':>8}{'<chance':>9}",
    ]
    for row in rows:
        seconds = f"{row['seconds']:.0f}" if "seconds" in row else "0"
        below = f"{row['below_chance']:.0%}" if "below_chance" in row else "-"
        lines.append(
            f"{row['name']:<16}{row.get('images_x_epochs', '-'):>16}{seconds:>9}  "
            f"{_interval(row['tau'], row['tau_ci']):<22}{_interval(row['rho'], row['rho_ci']):<22}"
            f"{'yes' if row['top1'] else 'no':>6}{row['regret']:>8.3f}{below:>9}"
        )
    return "\n".join(lines)


def network_table(networks: list[Network], setup: Setup) -> str:
    names = [f.name for f in setup.fidelities]
    header = f"{'MACs':>9}{'params':>9}" + "".join(
        f"{n:>10}" + (f"{n + '+BN':>11}" if n != REFERENCE else "") for n in names
    )
    lines = [header + "  spec"]
    for network in networks:
        cells = ""
        for name in names:
            score = network.scores.get(name)
            cells += f"{score.accuracy:>10.3f}" if score else f"{'-':>10}"
            if name != REFERENCE:
                recal = score.recalibrated if score else None
                cells += f"{recal:>11.3f}" if recal is not None else f"{'-':>11}"
        lines.append(f"{network.macs:>9.3g}{network.params:>9.3g}{cells}  {network.spec}")
    return "\n".join(lines)


def _report(setup: Setup, networks: list[Network], rows: list[dict] | None) -> dict[str, Any]:
    return {
        "setup": setup.identity(),
        "networks": [
            {
                **{k: v for k, v in asdict(n).items() if k != "scores"},
                "scores": {name: asdict(score) for name, score in n.scores.items()},
            }
            for n in networks
        ],
        "summary": rows,
    }


def _load(path: Path, setup: Setup) -> dict[str, dict[str, Score]]:
    """The scores a previous run of the same setup saved, by spec. The proxies may differ: a
    saved proxy's scores are kept where the setup has a proxy of that name and definition, so a
    proxy can be added to a finished run without training its reference again."""
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    mine = json.loads(json.dumps(setup.identity()))
    theirs = dict(saved.get("setup", {}))
    if {k: v for k, v in theirs.items() if k != "proxies"} != {
        k: v for k, v in mine.items() if k != "proxies"
    }:
        raise SystemExit(f"{path} holds a run with another setup; drop --resume or the file")
    same = {p["name"] for p in theirs.get("proxies", []) if p in mine["proxies"]} | {REFERENCE}
    return {
        n["spec"]: {name: Score(**s) for name, s in n["scores"].items() if name in same}
        for n in saved["networks"]
    }


# ----- command line -------------------------------------------------------------------------


def _resolution(text: str) -> int | None:
    return None if text == "auto" else int(text)


def _part(text: str) -> tuple[int, int]:
    part, _, parts = text.partition("/")
    if not (parts and 0 <= int(part) < int(parts)):
        raise argparse.ArgumentTypeError(f"--part {text!r}: expected K/N with 0 <= K < N")
    return int(part), int(parts)


def merge(paths: list[str], target: Path) -> None:
    """One ``--json`` file of the networks the files of ``--part`` runs hold (same setup)."""
    reports = [json.loads(Path(path).read_text()) for path in paths]
    if any(r["setup"] != reports[0]["setup"] for r in reports):
        raise SystemExit("--merge: the files hold runs of different setups")
    scores: dict[str, dict[str, Any]] = {}
    for report in reports:
        for network in report["networks"]:
            kept = scores.setdefault(network["spec"], {**network, "scores": {}})
            kept["scores"].update(network["scores"])
    merged = {"setup": reports[0]["setup"], "networks": list(scores.values()), "summary": None}
    target.write_text(json.dumps(merged, indent=1))


def _fidelity(text: str) -> Fidelity:
    """``NAME:IMAGES:EPOCHS:BATCH:VAL_FRACTION``, e.g. ``regime:4000:3:16:0.25``."""
    try:
        name, images, epochs, batch, val = text.split(":")
        return Fidelity(name, int(images), int(epochs), int(batch), float(val))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--proxy {text!r}: expected NAME:IMAGES:EPOCHS:BATCH:VAL_FRACTION"
        ) from exc


def parse(argv: list[str] | None) -> tuple[Setup, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    defaults = Setup()
    add("--networks", type=int, default=defaults.networks, help="networks to rank (at least 3)")
    add("--seed", type=int, default=defaults.seed, help="draws, splits, training")
    add(
        "--resolution",
        type=_resolution,
        default=defaults.resolution,
        help="pinned input size (px), or 'auto': scaled from --base-resolution by gamma**phi",
    )
    add("--base-resolution", type=int, default=BASE_RESOLUTION, help="input size at phi = 0")
    add("--max-macs", type=float, default=defaults.max_macs, help="the largest MAC level")
    add("--min-macs", type=float, default=None, help="the smallest (default: smallest network)")
    add("--space", default=None, help="a TOML/JSON file narrowing the space (search run's --space)")
    add("--dataset", default="fashion-mnist")
    add("--data-dir", default=None)
    quick, sq_cpu = defaults.proxies
    for fidelity, flag in ((quick, "quick"), (sq_cpu, "sq")):
        add(f"--{flag}-images", type=int, default=fidelity.images, help="before the split")
        add(f"--{flag}-val-fraction", type=float, default=fidelity.val_fraction)
        add(f"--{flag}-epochs", type=int, default=fidelity.epochs)
        add(f"--{flag}-batch-size", type=int, default=fidelity.batch_size)
    add(
        "--proxy",
        action="append",
        type=_fidelity,
        default=None,
        metavar="NAME:IMAGES:EPOCHS:BATCH:VAL_FRACTION",
        help="a proxy to rank with (repeatable); replaces the quick and sq-cpu proxies",
    )
    add("--reference-images", type=int, default=defaults.reference.images)
    add("--reference-epochs", type=int, default=defaults.reference.epochs)
    add("--reference-batch-size", type=int, default=defaults.reference.batch_size)
    add("--test-images", type=int, default=defaults.test_images, help="the reference's test set")
    add("--bn-batches", type=int, default=defaults.bn_batches, help="0: no BN recalibration")
    add("--resamples", type=int, default=2000, help="bootstrap resamples")
    add("--threads", type=int, default=defaults.threads)
    add("--json", default=None, help="write the runs and the summary here (- for stdout)")
    add("--resume", action="store_true", help="skip the networks --json already holds")
    add(
        "--part",
        type=_part,
        default=(0, 1),
        metavar="K/N",
        help="train only every N-th network from the K-th (0-based): N processes at once, each "
        "with its own --json; --merge joins their files",
    )
    add("--merge", nargs="+", default=None, metavar="FILE", help="join these --json files")
    add("--summary-only", action="store_true", help="train nothing: the tables of --json's runs")
    args = parser.parse_args(argv)
    if args.summary_only and (args.json is None or args.json == "-"):
        parser.error("--summary-only reads the runs of --json FILE")
    if args.networks < 3:
        parser.error("--networks must be at least 3")
    proxies = args.proxy or [
        Fidelity(
            "quick",
            args.quick_images,
            args.quick_epochs,
            args.quick_batch_size,
            args.quick_val_fraction,
        ),
        Fidelity(
            "sq-cpu", args.sq_images, args.sq_epochs, args.sq_batch_size, args.sq_val_fraction
        ),
    ]
    if len({p.name for p in proxies}) < len(proxies) or REFERENCE in {p.name for p in proxies}:
        parser.error(f"--proxy names must differ from each other and from {REFERENCE!r}")
    setup = Setup(
        networks=args.networks,
        seed=args.seed,
        resolution=args.resolution,
        max_macs=args.max_macs,
        dataset=args.dataset,
        proxies=tuple(proxies),
        reference=Fidelity(
            REFERENCE, args.reference_images, args.reference_epochs, args.reference_batch_size
        ),
        test_images=args.test_images,
        bn_batches=args.bn_batches,
        threads=args.threads,
        base_resolution=args.base_resolution,
        min_macs=args.min_macs,
        space=tuple(sorted(load_space_file(args.space).items())) if args.space else (),
    )  # fmt: skip
    return setup, args


def main(argv: list[str] | None = None) -> int:
    setup, args = parse(argv)
    train_full, test_full = load_dataset(setup.dataset, args.data_dir)
    classes = train_full.classes
    data = {
        f.name: splits(f, train_full, test_full, setup.seed, setup.test_images)
        for f in setup.fidelities
    }
    for fidelity in setup.fidelities:
        train, val = data[fidelity.name]
        print(
            f"{fidelity.name}: {len(train)} training images x {fidelity.epochs} epochs, batch "
            f"{fidelity.batch_size}, scored on {len(val)} {val.name} images",
            flush=True,
        )
    saved_path = Path(args.json) if args.json and args.json != "-" else None
    if args.merge:
        if saved_path is None:
            raise SystemExit("--merge writes the joined runs to --json FILE")
        merge(args.merge, saved_path)
    resuming = args.resume or args.summary_only
    saved = _load(saved_path, setup) if saved_path and resuming else {}
    specs = select_networks(setup, classes)
    networks: list[Network] = []
    for spec in specs:
        counted = count_spec(spec)
        scores = dict(saved.get(spec.canonical(), {}))
        networks.append(Network(spec.canonical(), counted.macs, counted.params, scores))
        print(f"{counted.macs:>12,} MACs {counted.params:>11,} params  {spec.canonical()}")
    # trained in a shuffled order, so that a partial run already spans the MAC range
    order = list(range(len(specs)))
    random.Random(setup.seed).shuffle(order)
    part, parts = args.part
    order = order[part::parts]  # this process's share of the networks (--part)
    for done, index in enumerate([] if args.summary_only else order, start=1):
        network, spec = networks[index], specs[index]
        for fidelity in setup.fidelities:
            if fidelity.name not in network.scores:
                score = train_network(spec, fidelity, data[fidelity.name], setup)
                network.scores[fidelity.name] = score
                recal = "" if score.recalibrated is None else f" (+BN {score.recalibrated:.3f})"
                print(
                    f"[{done}/{len(order)}] {fidelity.name:<9} {score.accuracy:.3f}{recal} "
                    f"{score.seconds:6.1f}s  {network.spec}",
                    flush=True,
                )
                if saved_path is not None:  # after every training, for --resume
                    saved_path.write_text(json.dumps(_report(setup, networks, None), indent=1))
    rows = summarise(networks, setup, args.resamples, 1.0 / classes)
    print(network_table(networks, setup))
    done = sum(all(f.name in n.scores for f in setup.fidelities) for n in networks)
    print(summary_table(rows, done))
    report = _report(setup, networks, rows)
    if args.json == "-":
        print(json.dumps(report))
    elif saved_path is not None and not args.summary_only:
        saved_path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
