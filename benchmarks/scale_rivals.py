"""The tools a user would pick instead of this search, on the same simulated objective.

For ``benchmarks/scale.py``: plain Optuna (``study.optimize`` with Optuna's multi-objective TPE,
multivariate with groups and the constant liar, as this search configures it, but without this
search's view of early-stopped trials) and Ray Tune with ``OptunaSearch`` and ASHA. Both draw the
network the way this search does (the space's parameters, a MAC share of the candidate's own
range, phi fitted by counting) and score it with the same curve source, so each trial costs the
same to evaluate and only the machinery around it differs. They have no no-repeat rule and no
budget rejection: a network over the budget is scaled to phi = 0, as this planner's fit would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna

from search.config import SearchConfig
from search.strategy.sampler import startup_trials
from search.worker.curves import CurveSource
from space import ArchSpec, count_spec, fit_phi


def network(trial: optuna.Trial, config: SearchConfig, classes: int) -> ArchSpec:
    """The network ``trial`` draws, fitted as this search's joint strategy fits it."""
    sample = config.space.sample(trial)
    spec = ArchSpec.from_dict({"classes": classes, **sample.values})
    share = trial.suggest_float("target_share", 0.0, 1.0)
    base = count_spec(spec.replace(phi=0.0)).macs
    budget = config.budget_macs
    target = min(budget, base * (budget / base) ** share) if base < budget else budget
    if base >= target:
        return spec.replace(phi=0.0)
    return fit_phi(spec, target).spec


def tpe(seed: int, trials: int) -> optuna.samplers.TPESampler:
    """Optuna's TPE as this search sets it up (``search.strategy.sampler.make_sampler``)."""
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=startup_trials(trials),
        multivariate=True,
        group=True,
        constant_liar=True,
    )


def objective(config: SearchConfig, classes: int, source: CurveSource) -> Any:
    """Plain Optuna's objective: (accuracy after the last epoch, MACs), nothing trained."""

    def score(trial: optuna.Trial) -> tuple[float, float]:
        spec = network(trial, config, classes)
        curve = source.curve(spec, trial.number, config.epochs)
        return curve.accuracy[-1], float(count_spec(spec).macs)

    return score


@dataclass(frozen=True)
class DefineByRun:
    """``OptunaSearch``'s space: the same draw; the network travels in the trial's config (a
    class, not a closure: Tune pickles its searcher, space included)."""

    config: SearchConfig
    classes: int

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"spec": network(trial, self.config, self.classes).canonical()}


def sleep_trainable(source: CurveSource, epochs: int, pace: float) -> Any:
    """A Ray Tune function trainable that reports the curve epoch by epoch, sleeping ``pace`` x
    each epoch's seconds (this search's ``CurveTrial`` as a plain Tune user would write it, in a
    worker that imports what a real trial imports)."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        # a trial worker imports what a real trial needs (torch, the trainer), as this search's
        # workers do: starting a worker costs the same on both sides
        import search.worker.trainable  # noqa: F401

        spec = ArchSpec.parse(config["spec"])
        curve = source.curve(spec, 0, epochs)
        macs = float(count_spec(spec).macs)
        for epoch in range(epochs):
            if pace > 0:
                time.sleep(pace * curve.seconds[epoch])
            tune.report({"accuracy": curve.accuracy[epoch], "macs": macs, "epoch": epoch + 1})

    return trainable
