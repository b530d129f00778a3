"""TPE's groups kept up to date (search/strategy/groups.py) against Optuna's own decomposition,
recomputed from scratch, as trials with different parameter sets finish out of order."""

from __future__ import annotations

import random

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace
from optuna.trial import TrialState

from search.strategy.groups import IncrementalGroups
from search.study.schema import DIRECTIONS

BLOCK = CategoricalDistribution(["standard", "se", "condconv"])
UNIT = FloatDistribution(0.0, 1.0)


def _suggest(trial: optuna.Trial, rng: random.Random) -> None:
    """A conditional space like the search's: SE ratio for se/condconv, experts for condconv,
    a target share only for some trials."""
    block = trial.suggest_categorical("block", BLOCK.choices)
    trial.suggest_float("alpha_q", 0.0, 1.0)
    if block != "standard":
        trial.suggest_categorical("se_ratio", [2, 4])
    if block == "condconv":
        trial.suggest_categorical("experts", [2, 4, 8])
    if rng.random() < 0.7:
        trial.suggest_float("target_share", 0.0, 1.0)


def test_the_groups_are_optunas_in_its_order_at_every_step() -> None:
    rng = random.Random(0)
    study = optuna.create_study(directions=list(DIRECTIONS))
    groups = IncrementalGroups(study, lambda trial: trial)
    live: list[optuna.Trial] = []
    for _ in range(80):
        if not live or rng.random() < 0.55:
            live.append(study.ask())
            _suggest(live[-1], rng)
        else:  # trials end out of order, some failed (not counted by TPE)
            trial = live.pop(rng.randrange(len(live)))
            state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
            study.tell(trial, [0.5, 1e6] if state == TrialState.COMPLETE else None, state)
        theirs = _GroupDecomposedSearchSpace(include_pruned=True).calculate(study)
        assert groups.calculate(study).search_spaces == theirs.search_spaces
    assert len(theirs.search_spaces) >= 3
