"""A surrogate of the measured learning curves: the accuracy after each epoch, predicted from the
network's spec, with seed-to-seed noise drawn from the measured spread.

Why a model and not the table alone: a search proposes networks the table never trained, so
simulated searches (``benchmarks/simulate.py``) need an answer for any network of the space.
Surrogate benchmarks do this with a regression model fitted to measured runs (NAS-Bench-301,
Siems et al. 2020, uses gradient-boosted trees among others; YAHPO Gym, Pfisterer et al. 2022,
surrogates of multi-fidelity curves). Here one scikit-learn ``GradientBoostingRegressor`` per
epoch maps features of the resolved network (block type, expansion, SE ratio, experts, kernel,
the depth, width and resolution it builds, log MACs, log parameters) to the accuracy after that
epoch, and one more to the log seconds per epoch (for the simulated clock). Every run of the
table is a sample, replicated networks included (their mean is what the model should learn).

Noise: a real trial's accuracy varies with its seed (the data split and the initialisation).
The table's replicated networks give, per epoch, the deviation of each seed from its network's
mean; their covariance across epochs (a lucky seed is lucky at every epoch) is what a simulated
curve adds to the prediction, drawn with ``search.worker.curves.unit_noise`` from (network, seed),
so a curve is reproducible in any process.

Fidelity is measured on networks the model was not fitted on (grouped K-fold: a network's
replicas stay in one fold): Kendall's tau and Spearman's rho between predicted and measured
accuracy at each epoch, the mean absolute error, and as a ceiling the tau between two seeds of the
same networks (no model can rank new networks better than the measurements agree with
themselves)::

    python benchmarks/surrogate.py --table benchmarks/results/learning_curves_small.jsonl.xz
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import read_table

from search.worker.curves import Curve, unit_noise
from space import ArchSpec, count_spec, resolve
from space.spec import BLOCK_TYPES

FEATURES: tuple[str, ...] = (
    *(f"block_{b}" for b in BLOCK_TYPES),
    "expansion",
    "se_ratio",
    "experts",
    "kernel",
    "dense",
    "depth",
    "stem_width",
    "head_width",
    "resolution",
    "log2_macs",
    "log2_params",
)


def features(spec: ArchSpec) -> list[float]:
    """The model's inputs for one network: its options and what its resolved plan builds."""
    plan = resolve(spec)
    counted = count_spec(spec)
    return [
        *(float(spec.block == b) for b in BLOCK_TYPES),
        float(spec.expansion),
        float(spec.se_ratio or 0),
        float(spec.experts or 0),
        float(spec.kernel),
        float(spec.mid_conv == "dense"),
        float(plan.depth),
        float(plan.stem.out_ch),
        float(plan.head.out_ch),
        float(plan.resolution),
        math.log2(counted.macs),
        math.log2(counted.params),
    ]


def _model(seed: int) -> GradientBoostingRegressor:
    return GradientBoostingRegressor(
        n_estimators=400, max_depth=3, learning_rate=0.03, subsample=0.8, random_state=seed
    )


@dataclass
class SurrogateCurves:
    """A fitted surrogate; a ``search.worker.curves.CurveSource`` (picklable, deterministic)."""

    epochs: int
    accuracy_models: list[GradientBoostingRegressor]
    seconds_model: GradientBoostingRegressor
    noise_cholesky: list[list[float]]  # lower triangle of the epochs' noise covariance
    chance: float = 0.1
    _cache: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @classmethod
    def fit(cls, records: Sequence[dict[str, Any]], seed: int = 0) -> SurrogateCurves:
        epochs = len(records[0]["accuracy"])
        x = np.array([features(ArchSpec.parse(r["spec"])) for r in records])
        models = []
        for epoch in range(epochs):
            y = np.array([r["accuracy"][epoch] for r in records])
            models.append(_model(seed).fit(x, y))
        seconds = np.log([statistics.fmean(r["epoch_seconds"]) for r in records])
        covariance = noise_covariance(records, epochs)
        return cls(
            epochs,
            models,
            _model(seed).fit(x, seconds),
            np.linalg.cholesky(covariance + 1e-12 * np.eye(epochs)).tolist(),
        )

    def mean(self, spec: ArchSpec) -> list[float]:
        """Predicted accuracy after each epoch (no noise) and log seconds per epoch, cached."""
        key = spec.spec_id
        if key not in self._cache:
            row = np.array([features(spec)])
            predicted = [float(m.predict(row)[0]) for m in self.accuracy_models]
            self._cache[key] = [*predicted, float(self.seconds_model.predict(row)[0])]
        return self._cache[key]

    def curve(self, spec: ArchSpec, seed: int, epochs: int) -> Curve:
        if epochs != self.epochs:
            raise ValueError(f"the surrogate knows {self.epochs}-epoch trials, not {epochs}")
        *accuracy, log_seconds = self.mean(spec)
        draws = [unit_noise("surrogate", spec.spec_id, seed, e) for e in range(epochs)]
        noise = np.array(self.noise_cholesky) @ np.array(draws)
        floor = self.chance * 0.5  # a noisy draw stays a possible accuracy
        values = tuple(
            min(1.0, max(floor, a + float(n))) for a, n in zip(accuracy, noise, strict=True)
        )
        return Curve(values, (math.exp(log_seconds),) * epochs)


def noise_covariance(records: Iterable[dict[str, Any]], epochs: int) -> np.ndarray:
    """The covariance across epochs of a seed's deviation from its network's mean accuracy,
    pooled over the networks trained with more than one seed (unbiased: n - 1 per network)."""
    by_network: dict[str, list[list[float]]] = defaultdict(list)
    for record in records:
        by_network[record["spec"]].append(record["accuracy"])
    deviations: list[np.ndarray] = []
    degrees = 0
    for runs in by_network.values():
        if len(runs) < 2:
            continue
        values = np.array(runs)
        deviations.extend(values - values.mean(axis=0))
        degrees += len(runs) - 1
    if not degrees:
        return np.zeros((epochs, epochs))
    stacked = np.array(deviations)
    return stacked.T @ stacked / degrees


# ----- fidelity on held-out networks ------------------------------------------------------------
def held_out(records: list[dict[str, Any]], folds: int, seed: int = 0) -> dict[str, Any]:
    """Grouped K-fold predictions: per epoch, tau / rho / MAE between each network's predicted
    and measured mean accuracy over its seeds, on networks outside the fitted folds."""
    groups = [r["spec"] for r in records]
    predicted: dict[str, list[float]] = {}
    for train_index, test_index in GroupKFold(n_splits=folds).split(records, groups=groups):
        model = SurrogateCurves.fit([records[i] for i in train_index], seed)
        for i in test_index:
            spec = records[i]["spec"]
            predicted[spec] = model.mean(ArchSpec.parse(spec))[:-1]
    measured = _network_means(records)
    specs = sorted(measured)
    epochs = len(records[0]["accuracy"])
    rows = []
    for epoch in range(epochs):
        p = [predicted[s][epoch] for s in specs]
        m = [measured[s][epoch] for s in specs]
        rows.append(
            {
                "epoch": epoch + 1,
                "tau": float(stats.kendalltau(p, m).statistic),
                "rho": float(stats.spearmanr(p, m).statistic),
                "mae": float(np.mean(np.abs(np.array(p) - np.array(m)))),
                "measured_std": float(np.std(m)),
            }
        )
    return {"networks": len(specs), "folds": folds, "per_epoch": rows}


def _network_means(records: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    runs: dict[str, list[list[float]]] = defaultdict(list)
    for record in records:
        runs[record["spec"]].append(record["accuracy"])
    return {spec: np.mean(values, axis=0).tolist() for spec, values in runs.items()}


def seed_ceiling(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How well two seeds of the same networks rank them alike: per epoch, the mean Kendall tau
    over pairs of seeds of the replicated networks, and each epoch's seed-to-seed standard
    deviation (the noise the simulated curves draw)."""
    by_seed: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for record in records:
        by_seed[record["seed"]][record["spec"]] = record["accuracy"]
    replicated = [s for s in by_seed[0] if sum(s in by_seed[k] for k in by_seed) > 1]
    seeds = sorted(k for k in by_seed if all(s in by_seed[k] for s in replicated))
    if len(replicated) < 3 or len(seeds) < 2:
        return {"networks": len(replicated), "seeds": len(seeds), "per_epoch": []}
    epochs = len(by_seed[0][replicated[0]])
    covariance = noise_covariance(records, epochs)
    rows = []
    for epoch in range(epochs):
        taus = [
            stats.kendalltau(
                [by_seed[a][s][epoch] for s in replicated],
                [by_seed[b][s][epoch] for s in replicated],
            ).statistic
            for i, a in enumerate(seeds)
            for b in seeds[i + 1 :]
        ]
        rows.append(
            {
                "epoch": epoch + 1,
                "tau_between_seeds": float(np.mean(taus)),
                "seed_std": float(math.sqrt(covariance[epoch, epoch])),
            }
        )
    return {"networks": len(replicated), "seeds": len(seeds), "per_epoch": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="a learning-curve table (.jsonl[.xz])")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", default=None, help="write the fidelity report here")
    args = parser.parse_args(argv)
    records = list(read_table(args.table))
    report = {"runs": len(records), **held_out(records, args.folds)}
    report["seeds"] = seed_ceiling(records)
    print(f"{report['runs']} runs of {report['networks']} networks, {args.folds}-fold held out")
    print(f"{'epoch':>5}{'tau':>8}{'rho':>8}{'MAE':>8}{'spread':>8}{'seed tau':>10}{'seed sd':>9}")
    ceiling = {row["epoch"]: row for row in report["seeds"]["per_epoch"]}
    for row in report["per_epoch"]:
        seeds = ceiling.get(row["epoch"], {})
        print(
            f"{row['epoch']:>5}{row['tau']:>8.3f}{row['rho']:>8.3f}{row['mae']:>8.4f}"
            f"{row['measured_std']:>8.4f}{seeds.get('tau_between_seeds', math.nan):>10.3f}"
            f"{seeds.get('seed_std', math.nan):>9.4f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
