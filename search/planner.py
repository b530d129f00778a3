"""What to try next: the stage of the next trial and the candidate a sampled trial stands for.

Two strategies (issue 6, item 4):
- **joint**: every candidate is scaled straight to the budget, phi chosen by counting
  (``space.fit_phi``); stage "joint".
- **two-stage** (EfficientNet, Tan & Le 2019, section 3.3): stage 1 searches the coefficients and
  block options at phi = 1 on the baseline, where the phi = 1 network must fit
  ``2 * baseline MACs * (1 + tolerance)`` (stage "phi1"), for about half the trials
  (``ceil(trials / 2)``). Stage 2 waits for stage 1 to finish, then re-enqueues the best stage-1
  candidates by accuracy, one at a time, each scaled to the budget with ``fit_phi`` (stage
  "scaled", user attr "parent" = its stage-1 trial number).

The budget is a hard constraint in every stage: MACs are counted from the spec before anything is
trained, and a candidate over budget (or violating the compound constraint) is infeasible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.ledger import Counts
from space import ArchSpec, count_spec, fit_phi

WAIT = "wait"
FINISHED = "finished"


@dataclass(frozen=True)
class Candidate:
    """A sampled, budget-checked network; ``constraint`` says why it is infeasible (else None)."""

    spec: ArchSpec
    macs: int
    params: int
    stage: str
    constraint: str | None = None


class Planner:
    """Stage decisions and candidate construction for one search configuration."""

    def __init__(self, config: SearchConfig, classes: int) -> None:
        self.config = config
        self.classes = classes
        self.stage1_quota = math.ceil(config.trials / 2)
        self.note: str | None = None  # why the search finished early, for the progress line

    # ----- which stage next -----------------------------------------------------------------
    def next_stage(self, study: optuna.Study, live: int) -> str:
        """ "joint" / "phi1" / "scaled", or WAIT (ask again later), or FINISHED."""
        trials = study.get_trials(deepcopy=False)
        counts = Counts.of(trials)
        if counts.infeasible >= self.config.max_attempts:
            self.note = (
                f"gave up after {counts.infeasible} infeasible candidates (cap "
                f"{self.config.max_attempts} = 20 x --trials): most of the space is over budget "
                "or violates the compound constraint; raise --budget-flops or narrow the space"
            )
            return FINISHED
        if counts.done + live >= self.config.trials:
            return WAIT if live else FINISHED
        if self.config.strategy == "joint":
            return "joint"
        return self._two_stage(study, trials, live)

    def _two_stage(self, study: optuna.Study, trials: list[FrozenTrial], live: int) -> str:
        phi1 = [t for t in trials if t.user_attrs.get("stage") == "phi1"]
        scaled = [t for t in trials if t.user_attrs.get("stage") == "scaled"]
        phi1_counted = Counts.of(phi1).done + Counts.of(phi1).running
        if not scaled and phi1_counted < self.stage1_quota:
            return "phi1"
        if any(t.state == TrialState.RUNNING for t in phi1):
            return WAIT  # stage 2 ranks stage-1 results only once all are in
        if any(t.state == TrialState.WAITING for t in phi1):
            return "phi1"  # a re-queued stage-1 trial goes first
        if any(t.state == TrialState.WAITING for t in scaled):
            return "scaled"
        parent = self._next_parent(phi1, scaled)
        if parent is None:
            if live:
                return WAIT
            self.note = "stage 2 scaled every completed stage-1 candidate; nothing left to scale"
            return FINISHED
        study.enqueue_trial(
            dict(parent.params),
            user_attrs={
                "stage": "scaled",
                "parent": parent.number,
                "start_gamma": parent.user_attrs.get("spec_json", {}).get("gamma"),
            },
        )
        return "scaled"

    @staticmethod
    def _next_parent(phi1: list[FrozenTrial], scaled: list[FrozenTrial]) -> FrozenTrial | None:
        by_number = {t.number: t for t in phi1}
        used = {t.user_attrs.get("parent") for t in scaled}
        used_specs = {_unscaled(by_number[n]) for n in used if n in by_number}
        ranked = sorted(
            (t for t in phi1 if t.state == TrialState.COMPLETE and t.values),
            key=lambda t: (-t.values[0], t.number),
        )
        for trial in ranked:
            key = _unscaled(trial)
            if trial.number not in used and key not in used_specs:
                return trial
        return None

    # ----- the candidate of one sampled trial ------------------------------------------------
    def candidate(self, trial: optuna.Trial, stage: str) -> Candidate:
        space = self.config.space
        sample = space.sample(trial, gamma_override=trial.user_attrs.get("start_gamma"))
        values: dict[str, Any] = {"classes": self.classes, **sample.values}
        spec = ArchSpec.from_dict(values)
        if sample.violation:
            return self._counted(spec, stage, f"compound constraint: {sample.violation}")
        budget = self.config.budget_macs
        baseline = count_spec(spec.replace(phi=0.0)).macs
        if stage == "phi1":
            spec = spec.replace(phi=1.0)
            report = count_spec(spec)
            limit = 2 * baseline * (1 + space.tolerance)
            if report.macs > limit:
                return self._counted(
                    spec,
                    stage,
                    f"phi=1 network has {report.macs:,} MACs > 2 x baseline x (1 + tolerance) "
                    f"= {limit:,.0f}",
                )
        elif "phi" in space.pins:
            report = count_spec(spec)
        elif baseline > budget:
            return self._counted(
                spec, stage, f"phi=0 network has {baseline:,} MACs > budget {budget:,}"
            )
        else:
            spec = fit_phi(spec, budget).spec
            report = count_spec(spec)
        if report.macs > budget:
            return self._counted(spec, stage, f"{report.macs:,} MACs > budget {budget:,}")
        return Candidate(spec, report.macs, report.params, stage)

    @staticmethod
    def _counted(spec: ArchSpec, stage: str, constraint: str) -> Candidate:
        report = count_spec(spec)
        return Candidate(spec, report.macs, report.params, stage, constraint)


def _unscaled(trial: FrozenTrial) -> str:
    spec = ArchSpec.from_dict(trial.user_attrs["spec_json"])
    return spec.replace(phi=0.0).canonical()
