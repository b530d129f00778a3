"""The sampler learns from early-stopped trials as observations, and not from infeasible ones."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.strategy.sampler import ObservedSampler, make_sampler, observed
from search.study.schema import DIRECTIONS

X = FloatDistribution(0.0, 1.0)


def pruned(x: float, accuracy: float, macs: int) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=TrialState.PRUNED,
        params={"x": x},
        distributions={"x": X},
        user_attrs={"status": "pruned", "last_accuracy": accuracy, "macs": macs, "epochs_run": 1},
    )


def complete(x: float, accuracy: float, macs: int) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=TrialState.COMPLETE,
        values=[accuracy, macs],
        params={"x": x},
        distributions={"x": X},
        user_attrs={"status": "complete", "macs": macs},
    )


def infeasible(x: float, constraint: bool) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=TrialState.PRUNED,
        params={"x": x},
        distributions={"x": X},
        user_attrs={"status": "infeasible", "macs": 10**12},
        constraints={"budget": 3.0} if constraint else None,
    )


def test_observed_view_of_each_kind_of_trial() -> None:
    stopped = observed(pruned(0.5, 0.6, 1000))
    assert stopped is not None and stopped.state == TrialState.COMPLETE
    assert stopped.values == [0.6, 1000.0] and stopped.params == {"x": 0.5}
    done = complete(0.1, 0.9, 10)
    assert observed(done) is done
    assert observed(infeasible(0.3, constraint=False)) is None  # an old record: hidden
    marked = observed(infeasible(0.3, constraint=True))
    assert marked is not None and marked.state == TrialState.PRUNED  # TPE's infeasible group


def test_an_early_stopped_trial_shows_its_latency_when_latency_is_an_objective() -> None:
    stopped = pruned(0.5, 0.6, 1000)
    stopped.user_attrs["latency_ms"] = 3.5
    seen = observed(stopped, ("accuracy", "macs", "latency"))
    assert seen is not None and seen.values == [0.6, 1000.0, 3.5]
    seen = observed(stopped, ("accuracy", "latency"))
    assert seen is not None and seen.values == [0.6, 3.5]
    untimed = observed(pruned(0.5, 0.6, 1000), ("accuracy", "latency"))
    assert untimed is not None and untimed.state == TrialState.PRUNED  # nothing to show


def study_with_good_pruned_trials(path: Path, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """Completed trials near x = 0.1 are mediocre and expensive; trials stopped early near
    x = 0.9 were cheaper *and* more accurate when stopped; over-budget candidates sit at 0.5."""
    study = optuna.create_study(
        storage=f"sqlite:///{path}", directions=list(DIRECTIONS), sampler=sampler
    )
    for i in range(6):
        study.add_trial(complete(0.05 + 0.02 * i, 0.30 + 0.01 * i, 80_000_000 + i))
        study.add_trial(pruned(0.85 + 0.02 * i, 0.60 + 0.01 * i, 20_000_000 - i))
        study.add_trial(infeasible(0.45 + 0.02 * i, constraint=True))
    return study


def mean_next_x(study: optuna.Study, count: int = 12) -> float:
    xs = []
    for _ in range(count):
        trial = study.ask()
        xs.append(trial.suggest_float("x", 0.0, 1.0))
        study.tell(trial, state=TrialState.FAIL)  # failed trials are ignored by TPE
    return sum(xs) / len(xs)


def test_tpe_follows_the_trials_stopped_early_only_through_the_view(tmp_path: Path) -> None:
    plain = optuna.samplers.TPESampler(seed=3, n_startup_trials=4, constant_liar=True)
    wrapped = ObservedSampler(
        optuna.samplers.TPESampler(seed=3, n_startup_trials=4, constant_liar=True)
    )
    # plain multi-objective TPE: its good set is the best *complete* trials (x ~ 0.1) and the
    # pruned ones are bad; through the view the stopped trials near x ~ 0.9 are the front
    plain_x = mean_next_x(study_with_good_pruned_trials(tmp_path / "plain.db", plain))
    seen_x = mean_next_x(study_with_good_pruned_trials(tmp_path / "seen.db", wrapped))
    assert plain_x < 0.4 < 0.6 < seen_x


def test_factory() -> None:
    tpe = make_sampler(seed=1, trials=12)
    assert isinstance(tpe, ObservedSampler)
    assert tpe.inner._n_startup_trials == 4  # a third of a short study
    assert make_sampler(seed=1, trials=64).inner._n_startup_trials == 10  # type: ignore[attr-defined]
    assert isinstance(make_sampler(seed=1, kind="random"), optuna.samplers.RandomSampler)
    gp = make_sampler(seed=1, trials=12, kind="gp")
    assert isinstance(gp, ObservedSampler) and isinstance(gp.inner, optuna.samplers.GPSampler)
    assert gp.inner._n_startup_trials == 4  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown sampler 'cma'"):
        make_sampler(seed=1, kind="cma")
