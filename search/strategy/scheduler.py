"""Multi-objective early stopping for Ray Tune: ASHA with rungs ranked by Pareto dominance.

Accuracy-only ASHA (Li et al. 2020, Ray's ``AsyncHyperBandScheduler``) stops a trial at a rung
when its accuracy is below the top ``1 / reduction_factor`` of the accuracies recorded there. In a
search that also minimises MACs that stops exactly the cheap, less accurate networks that belong
on the front. :class:`ParetoASHA` follows MO-ASHA (Schmucker et al. 2021, "Multi-objective
Asynchronous Successive Halving"): same rungs (``grace_period * reduction_factor**k`` epochs below
``max_t``), same asynchronous decision when a trial reaches a rung, but the trials recorded at
the rung are ranked by non-dominated sorting of (accuracy up, MACs down) with NSGA-II's crowding
distance as the tie-break inside a front (``search.strategy.ranking``). A trial continues when

- no trial recorded at the rung dominates it (it is on the rung's current front; this is the
  multi-objective version of ASHA's "the best so far always continues"), or
- it is among the top ``ceil(n / reduction_factor)`` of the ``n`` trials at the rung in that order.

Otherwise it is stopped (the study stores it PRUNED with its last accuracy and epoch).

The costs of a trial come from its config: the searcher puts the candidate's objective costs in
Ray's config (``config["costs"]``: MACs, latency or both, in the study's objective order, all
known before training), so nothing has to travel in the results; a config with a spec but no
costs is ranked by MACs, counted from ``config["spec"]`` (exact, microseconds,
``space.count_spec``). Trials without either, or without an accuracy, are left alone.
"""

from __future__ import annotations

import math
import pickle
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from common.clock import DECISIONS
from search.strategy.ranking import Point, dominates
from search.strategy.rungs import nsga_position
from space import ArchSpec, count_spec

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

METRIC = "accuracy"
TIME_ATTR = "epoch"


class ParetoASHA(FIFOScheduler):
    """MO-ASHA over (accuracy, *costs) with one bracket; see the module docstring."""

    def __init__(
        self,
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 4,
        time_attr: str = TIME_ATTR,
        metric: str = METRIC,
    ) -> None:
        if max_t < 1 or not (1 <= grace_period <= max_t) or reduction_factor <= 1:
            raise ValueError(
                f"ParetoASHA needs 1 <= grace_period <= max_t and reduction_factor > 1, got "
                f"grace_period={grace_period}, max_t={max_t}, reduction_factor={reduction_factor}"
            )
        super().__init__()
        self._metric = metric
        self.time_attr = time_attr
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self.milestones: list[int] = []
        milestone = float(grace_period)
        while milestone < max_t:
            self.milestones.append(math.ceil(milestone - 1e-9))
            milestone *= reduction_factor
        self.rungs: dict[int, dict[str, Point]] = {m: {} for m in self.milestones}
        self._costs: dict[str, tuple[float, ...]] = {}
        self.stopped: list[str] = []

    # ----- Ray's TrialScheduler interface ---------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode are fixed: accuracy up, costs down

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        return self.decide(trial.trial_id, trial.config, result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        self._costs.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._costs.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m}: {len(self.rungs[m])} trials" for m in self.milestones)
        return f"ParetoASHA (MO-ASHA): stopped {len(self.stopped)}; {rungs}"

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))

    # ----- the decision ---------------------------------------------------------------------------
    def decide(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> str:
        """CONTINUE or STOP for one result of one trial (pure bookkeeping; unit-tested); its time
        is the trial's "schedule" part of the driver's decisions (``common.clock``)."""
        with DECISIONS.deciding(trial_id, "schedule"):
            return self._decide(trial_id, config, result)

    def _decide(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> str:
        epoch, accuracy = result.get(self.time_attr), result.get(self._metric)
        costs = self._costs_of(trial_id, config)
        if epoch is None or accuracy is None or costs is None:
            return TrialScheduler.CONTINUE
        if epoch >= self.max_t:
            return TrialScheduler.STOP  # done: Ray's ASHA stops at max_t too
        rung = self._rung_for(trial_id, epoch)
        if rung is None:
            return TrialScheduler.CONTINUE
        recorded = self.rungs[rung]
        point = (float(accuracy), *costs)
        keep = self.keeps(point, list(recorded.values()))
        recorded[trial_id] = point
        if keep:
            return TrialScheduler.CONTINUE
        self.stopped.append(trial_id)
        return TrialScheduler.STOP

    def keeps(self, point: Point, others: list[Point]) -> bool:
        """Whether a trial at ``point`` continues past a rung where ``others`` were recorded."""
        if not any(dominates(other, point) for other in others):
            return True
        everyone = [*others, point]
        quota = math.ceil(len(everyone) / self.reduction_factor)
        return nsga_position(everyone, len(others)) < quota  # nsga_order's, in O(n log n)

    def _rung_for(self, trial_id: str, epoch: float) -> int | None:
        """The highest milestone the trial has reached and not yet been judged at."""
        for milestone in reversed(self.milestones):
            if epoch >= milestone:
                return None if trial_id in self.rungs[milestone] else milestone
        return None

    def _costs_of(self, trial_id: str, config: dict[str, Any]) -> tuple[float, ...] | None:
        if trial_id not in self._costs:
            costs, spec = config.get("costs"), config.get("spec")
            if isinstance(costs, list | tuple) and costs:
                self._costs[trial_id] = tuple(float(c) for c in costs)
            elif isinstance(spec, str):
                self._costs[trial_id] = (float(count_spec(ArchSpec.parse(spec)).macs),)
            else:
                return None
        return self._costs[trial_id]


def make_scheduler(epochs: int) -> ParetoASHA:
    """The search's scheduler: MO-ASHA with Ray ASHA's defaults (grace 1 epoch, factor 4)."""
    return ParetoASHA(max_t=epochs, grace_period=1, reduction_factor=4)
