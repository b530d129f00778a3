"""The same split of a driver's time for the tools a user would pick instead (benchmarks/scale.py).

This search times its own decisions (``common.clock.DECISIONS``: sample, schedule, read, write,
lease, other). For plain Optuna and Ray Tune + ``OptunaSearch`` the same parts are measured by
wrapping what they call: :class:`TimedStorage` times every storage call as a read or a write,
:class:`TimedSampler` every sampler call, :func:`timed_searcher` and :func:`timed_scheduler`
Tune's searcher and scheduler, each as a part of one :class:`~common.clock.DecisionClock`, so the
parts exclude each other as this search's do (a sampler's reads of the storage are reads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from common.clock import DecisionClock

READS = (
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
)
WRITES = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "create_new_trial",
    "set_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
)


def _timed(name: str, part: str) -> Callable[..., Any]:
    def method(self: TimedStorage, *args: Any, **kwargs: Any) -> Any:
        with self.clock.part(part):
            return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


class TimedStorage(BaseStorage):
    """Any Optuna storage, each call timed as "read" or "write" on ``clock``."""

    def __init__(self, inner: BaseStorage, clock: DecisionClock) -> None:
        self.inner = inner
        self.clock = clock

    for _name in READS:
        locals()[_name] = _timed(_name, "read")
    for _name in WRITES:
        locals()[_name] = _timed(_name, "write")
    del _name

    def remove_session(self) -> None:
        self.inner.remove_session()


class TimedSampler(BaseSampler):
    """Any sampler, each call timed as "sample" on ``clock``."""

    def __init__(self, inner: BaseSampler, clock: DecisionClock) -> None:
        self.inner = inner
        self.clock = clock

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        with self.clock.part("sample"):
            return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        with self.clock.part("sample"):
            return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        with self.clock.part("sample"):
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        with self.clock.part("sample"):
            self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self.clock.part("sample"):
            self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def timed_optuna_search(clock: DecisionClock, **kwargs: Any) -> Any:
    """Ray Tune's ``OptunaSearch(**kwargs)`` whose calls are decisions on ``clock`` (their own
    time "other"). A subclass, not patched methods: Tune pickles its searcher's state."""
    from ray.tune.search.optuna import OptunaSearch

    class TimedOptunaSearch(OptunaSearch):  # type: ignore[misc]
        def suggest(self, trial_id: str) -> Any:
            with clock.deciding("tune"):
                return super().suggest(trial_id)

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            with clock.deciding("tune"):
                super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
            with clock.deciding("tune"):
                super().on_trial_complete(trial_id, result, error)

    return TimedOptunaSearch(**kwargs)


def timed_asha(clock: DecisionClock, **kwargs: Any) -> Any:
    """Ray Tune's ``ASHAScheduler(**kwargs)`` whose result decisions are "schedule"."""
    from ray.tune.schedulers import ASHAScheduler

    class TimedASHA(ASHAScheduler):  # type: ignore[misc]
        def on_trial_result(self, controller: Any, trial: Any, result: dict[str, Any]) -> str:
            with clock.deciding("tune", "schedule"):
                return str(super().on_trial_result(controller, trial, result))

    return TimedASHA(**kwargs)
