"""What to try next: the stage of the next trial and the candidate a sampled trial stands for.

Two strategies:
- **joint**: block options, coefficients and a *target MAC level* are searched together. The
  target (``target_macs``) is log-uniform between the smallest network of the space and the
  budget, and phi is fitted to it by counting (``space.fit_phi``), so the trials spread over the
  whole MAC range and the MACs objective is a real trade-off, not rounding noise around the
  budget (issue 10). A candidate whose phi = 0 network is already above its target trains at
  phi = 0 (its smallest form; its MACs exceed the target but not the budget). A candidate whose
  block options alone exceed the budget at phi = 0 is infeasible: stored PRUNED with status
  "infeasible", never trained, and marked with an Optuna constraint (``Trial.set_constraint``)
  so TPE puts it with the infeasible trials, after every feasible one. With a pinned phi there is
  no target: every candidate is counted at that phi and must fit the budget.
- **two-stage** (EfficientNet, Tan & Le 2019, section 3.3): stage 1 ("phi1", ``ceil(trials / 2)``
  trials) compares coefficient triples at equal cost: block options fixed (see
  :func:`stage_one_options`), phi fitted to the paper's phi = 1 cost, twice the baseline's MACs
  (capped at the budget). Fitting by counting instead of the literal phi = 1 is what makes the
  cost equal: ``ceil`` on repeats puts literal phi = 1 networks anywhere between 1.6x and 2.9x
  the baseline, which is why the old check rejected 51 % of triples that meet the product. No
  stage-1 triple is ever rejected. Stage 2 ("scaled") waits for stage 1, ranks its completed
  trials by non-dominated rank of (accuracy, MACs) with crowding-distance tie-break
  (``search.ranking``), and scales the best triple to a ladder of MAC levels from the stage-1
  cost up to the budget (about one level per doubling, as B1..B7 are), then the next best triple
  to the same ladder, and so on: a family. Each member records "parent" (its stage-1 trial),
  "level" (its target MACs) and "member" (1 = the smallest level) in user attrs; its level is
  also its ``target_macs`` param, so a re-queued member replays the same level.

The budget is a hard constraint in every stage: MACs are counted from the spec before anything is
trained, and nothing over budget ever trains.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config import SearchConfig
from search.ledger import Counts
from search.ranking import nsga_order
from space import ArchSpec, UserError, count_spec, fit_phi
from space.searchspace import CATEGORICAL, SearchSpace

WAIT = "wait"
FINISHED = "finished"
TARGET_PARAM = "target_macs"
PRESET = ArchSpec()  # DESIGN.md's paper preset: standard block, e=4, depthwise, k=3


@dataclass(frozen=True)
class Candidate:
    """A sampled, budget-checked network; ``constraint`` says why it is infeasible (else None)."""

    spec: ArchSpec
    macs: int
    params: int
    stage: str
    constraint: str | None = None


def stage_one_options(space: SearchSpace, classes: int, budget: int) -> SearchSpace:
    """The space with every block option pinned, for two-stage's coefficient search.

    Pins and narrowed dimensions are respected: each free dimension takes the paper preset's value
    (standard block, expansion 4, SE ratio 4, experts 4, depthwise, kernel 3) when the space allows
    it, else the allowed value nearest to it (the first allowed in DESIGN.md's order for the block
    and the middle conv). If that network cannot double within the budget, the cheapest options
    of the space are used instead (:meth:`SearchSpace.smallest_spec`).
    """

    def preset(name: str) -> Any:
        allowed = getattr(space, name)
        value = getattr(PRESET, name) or 4  # se_ratio / experts: the reference 4
        if value in allowed:
            return value
        if isinstance(value, int):
            return min(allowed, key=lambda v: (abs(v - value), v))
        return allowed[0]

    fixed = space
    for name in CATEGORICAL:
        fixed = dataclasses.replace(fixed, **{name: (preset(name),)})
    if 2 * count_spec(_phi0(fixed.smallest_spec(classes))).macs > budget:
        cheapest = space.smallest_spec(classes)
        fixed = space
        for name in CATEGORICAL:
            value = getattr(cheapest, name)
            fixed = dataclasses.replace(
                fixed, **{name: (value,) if value else getattr(space, name)}
            )
    return fixed


class Planner:
    """Stage decisions and candidate construction for one search configuration."""

    def __init__(self, config: SearchConfig, classes: int) -> None:
        self.config = config
        self.classes = classes
        self.stage1_quota = math.ceil(config.trials / 2)
        self.note: str | None = None  # why the search finished early, for the progress line
        space = config.space
        self.smallest_macs = count_spec(_phi0(space.smallest_spec(classes))).macs
        if config.strategy == "two-stage":
            if "phi" in space.pins:
                raise UserError(
                    "--strategy two-stage chooses phi itself; drop the pinned phi or use "
                    "--strategy joint"
                )
            self.stage_one = stage_one_options(space, classes, config.budget_macs)
            baseline = count_spec(_phi0(self.stage_one.smallest_spec(classes))).macs
            self.stage_one_macs = min(2 * baseline, config.budget_macs)

    # ----- which stage next -----------------------------------------------------------------
    def next_stage(self, study: optuna.Study, live: int) -> str:
        """ "joint" / "phi1" / "scaled", or WAIT (ask again later), or FINISHED."""
        trials = study.get_trials(deepcopy=False)
        counts = Counts.of(trials)
        if counts.infeasible >= self.config.max_attempts:
            self.note = (
                f"gave up after {counts.infeasible} infeasible candidates (cap "
                f"{self.config.max_attempts} = 20 x --trials): most of the space is over budget; "
                "raise --budget-flops or narrow the space"
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
        member = self._next_member(phi1, scaled)
        if member is None:
            if live:
                return WAIT
            self.note = "stage 2 scaled every completed stage-1 candidate; nothing left to scale"
            return FINISHED
        parent, rank, level = member
        study.enqueue_trial(
            {**parent.params, TARGET_PARAM: level},
            user_attrs={
                "stage": "scaled",
                "parent": parent.number,
                "level": level,
                "member": rank,
                "start_gamma": parent.user_attrs.get("spec_json", {}).get("gamma"),
            },
        )
        return "scaled"

    def family_levels(self) -> list[int]:
        """Stage 2's MAC levels, smallest first, the budget last: about one per doubling from
        the stage-1 cost, at most as many as there are stage-2 trials."""
        low, budget = self.stage_one_macs, self.config.budget_macs
        steps = max(1, math.ceil(math.log2(budget / low))) if budget > low else 1
        count = min(max(1, self.config.trials - self.stage1_quota), steps)
        return [round(low * (budget / low) ** (i / count)) for i in range(1, count + 1)]

    def _next_member(
        self, phi1: list[FrozenTrial], scaled: list[FrozenTrial]
    ) -> tuple[FrozenTrial, int, int] | None:
        """The next (parent, member rank, level): parents in NSGA-II order, budget level first."""
        done = [t for t in phi1 if t.state == TrialState.COMPLETE and t.values]
        order = nsga_order([(t.values[0], t.values[1]) for t in done])
        used = {(t.user_attrs.get("parent"), t.params.get(TARGET_PARAM)) for t in scaled}
        levels = self.family_levels()
        triples: set[tuple[float, ...]] = set()
        for index in order:
            parent = done[index]
            triple = _coefficients(parent)
            if triple in triples:
                continue  # the same triple twice (a replayed start point): one family is enough
            triples.add(triple)
            for rank in range(len(levels), 0, -1):
                if (parent.number, levels[rank - 1]) not in used:
                    return parent, rank, levels[rank - 1]
        return None

    # ----- the candidate of one sampled trial ------------------------------------------------
    def candidate(self, trial: optuna.Trial, stage: str) -> Candidate:
        space = self.stage_one if stage in ("phi1", "scaled") else self.config.space
        sample = space.sample(trial, gamma_override=trial.user_attrs.get("start_gamma"))
        spec = ArchSpec.from_dict({"classes": self.classes, **sample.values})
        if sample.violation:
            return self._infeasible(trial, spec, stage, "compound", sample.violation)
        budget = self.config.budget_macs
        if stage == "phi1":
            return self._fitted(spec, self.stage_one_macs, stage)
        if "phi" in space.pins:
            return self._within_budget(trial, spec, stage)
        target = trial.suggest_float(TARGET_PARAM, self.smallest_macs, budget, log=True)
        if stage == "scaled":  # a re-queued member has its level as a param only: restore attrs
            levels = self.family_levels()
            trial.set_user_attr("level", round(target))
            if round(target) in levels:
                trial.set_user_attr("member", levels.index(round(target)) + 1)
        baseline = count_spec(spec.replace(phi=0.0)).macs
        if baseline > budget:
            return self._within_budget(trial, spec.replace(phi=0.0), stage)
        return self._fitted(spec, min(target, budget), stage)

    def _fitted(self, spec: ArchSpec, level: float, stage: str) -> Candidate:
        """The largest phi whose MACs fit ``level``; phi = 0 when even that is above it."""
        if count_spec(spec.replace(phi=0.0)).macs >= level:
            spec = spec.replace(phi=0.0)
        else:
            spec = fit_phi(spec, level).spec
        report = count_spec(spec)
        return Candidate(spec, report.macs, report.params, stage)

    def _within_budget(self, trial: optuna.Trial, spec: ArchSpec, stage: str) -> Candidate:
        report = count_spec(spec)
        budget = self.config.budget_macs
        if report.macs > budget:
            at = "phi=0 network" if spec.phi == 0.0 else f"phi={spec.phi:g} network"
            reason = f"{at} has {report.macs:,} MACs > budget {budget:,}"
            return self._infeasible(trial, spec, stage, "budget", reason, report.macs / budget - 1)
        return Candidate(spec, report.macs, report.params, stage)

    @staticmethod
    def _infeasible(
        trial: optuna.Trial,
        spec: ArchSpec,
        stage: str,
        kind: str,
        reason: str,
        excess: float = 1.0,
    ) -> Candidate:
        """Record why the candidate cannot train; the constraint keeps TPE from learning from it
        as if it were a result (``search.sampler``)."""
        trial.set_constraint(kind, max(excess, 1e-9))
        report = count_spec(spec)
        prefix = "compound constraint: " if kind == "compound" else ""
        return Candidate(spec, report.macs, report.params, stage, prefix + reason)


def _phi0(spec: ArchSpec) -> ArchSpec:
    return spec if spec.phi == 0.0 else spec.replace(phi=0.0)


def _coefficients(trial: FrozenTrial) -> tuple[float, ...]:
    spec = trial.user_attrs.get("spec_json", {})
    return tuple(float(spec.get(name, 1.0)) for name in ("alpha", "beta", "gamma"))
