"""What to try next: the stage of the next trial and the candidate a sampled trial stands for.

Two strategies:
- **joint**: block options, coefficients and a *MAC level* are searched together, so the
  trials spread over the whole MAC range and the MACs objective is a real trade-off, not
  rounding noise around the budget. The level is a share ``target_share`` in [0, 1] of the
  candidate's own log-range: the target is ``base * (budget / base) ** share``, where ``base`` is
  the candidate's phi = 0 network, and phi is fitted to it by counting (``space.fit_phi``). Why
  the candidate's own range and not one range for the space, from its smallest network to the
  budget: with one range every target below a candidate's phi = 0 cost gave that phi = 0
  network, whatever the coefficients, so the same network trained again and again (see
  benchmarks/RESULTS.md); now only small shares do. Share 0 is the candidate's phi = 0 network;
  share 1 fills the budget. No network trains twice in a study: a candidate that builds the
  same network as a trial that trained or is training (``_Seen.trained_twin``, compared by
  resolved plan) is infeasible with the constraint "duplicate" and does not count as a trial. A
  candidate whose block options alone exceed the budget at phi = 0 is infeasible: stored PRUNED
  with status "infeasible", never trained, and marked with an Optuna constraint
  (``Trial.set_constraint``) so TPE puts it with the infeasible trials, after every feasible one.
  With a pinned phi there is no target: every candidate is counted at that phi and must fit the
  budget.

  A new joint study opens with :meth:`Planner.opening` trials, as many as TPE's random start-up
  trials: the first is the cheapest network of the space (the low end of every front, and the
  hypervolume's MAC reference), the others take shares spread evenly over [0, 1], the budget
  first, their other parameters drawn at random. Random start-up shares leave the ends of the
  range to chance (short quick studies left part of it uncovered, see benchmarks/RESULTS.md);
  spread ones make the first fronts span it, which is what TPE then refines. This is
  Latin-hypercube-style stratification of one dimension (McKay et al., 1979).
- **two-stage** (EfficientNet, Tan & Le 2019, section 3.3): stage 1 ("phi1", ``ceil(trials / 2)``
  trials) compares coefficient triples at equal cost: block options fixed (see
  :func:`stage_one_options`), phi fitted to the paper's phi = 1 cost, twice the baseline's MACs
  (capped at the budget). Fitting by counting instead of the literal phi = 1 is what makes the
  cost equal: ``ceil`` on repeats scatters literal phi = 1 networks far either side of twice the
  baseline, so checking the literal network against that cost rejects many triples that meet
  the product (figures in benchmarks/RESULTS.md). No stage-1 triple is ever rejected. Stage 2
  ("scaled") waits for stage 1, ranks its completed trials by non-dominated rank of (accuracy,
  MACs) with crowding-distance tie-break (``search.strategy.ranking``), and scales the best
  triple to a ladder of MAC levels from the stage-1 cost up to the budget (about one level per
  doubling, as B1..B7 are), then the next best triple to the same ladder, and so on: a family.
  Each member records "parent" (its stage-1 trial), "level" (its target MACs) and "member" (1 =
  the smallest level) in user attrs; its level is also its ``target_macs`` param (absolute MACs,
  log-uniform from the smallest network of the space to the budget), so a re-queued member
  replays the same level.

The budget is a hard constraint in every stage: MACs are counted from the spec before anything is
trained, and nothing over budget ever trains. ``--budget-params`` is one too, on the parameters
counted from the same plan (the EfficientNet paper's memory constraint): a candidate above it is
infeasible with the constraint "params". When latency is an objective or ``--latency-budget-ms``
caps it, a candidate within those limits is timed (``space.latency``, once per network through
the study's ``search.study.latency.LatencyCache``) before it trains; above the cap it is
infeasible with the constraint "latency".
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from common.clock import DECISIONS
from common.errors import UserError
from search.config import SearchConfig
from search.strategy.gaps import Member, gap_bucket, widest_gap
from search.strategy.ranking import nsga_order
from search.strategy.sampler import startup_trials
from search.study import schema
from search.study.claims import Claims, network_key
from search.study.feed import TrialFeed
from search.study.latency import LatencyCache, Measure
from search.study.schema import INFEASIBLE, Counts
from search.study.snapshot import SnapshotStorage
from space import ArchSpec, count_spec, fit_phi, resolve
from space.latency import LatencyRecord, Machine, measure_latency, this_machine
from space.searchspace import CATEGORICAL, SearchSpace

WAIT = "wait"
FINISHED = "finished"
TARGET_PARAM = "target_macs"  # stage 2's absolute level
SHARE_PARAM = "target_share"  # joint: the share of the candidate's own MAC range
PRESET = ArchSpec()  # docs/design.md's paper preset: standard block, e=4, depthwise, k=3


@dataclass(frozen=True)
class Candidate:
    """A sampled, budget-checked network; ``constraint`` says why it is infeasible (else None)."""

    spec: ArchSpec
    macs: int
    params: int
    stage: str
    constraint: str | None = None
    latency: LatencyRecord | None = None  # measured when the search uses latency


def stage_one_options(space: SearchSpace, classes: int, budget: int) -> SearchSpace:
    """The space with every block option pinned, for two-stage's coefficient search.

    Pins and narrowed dimensions are respected: each free dimension takes the paper preset's value
    (standard block, expansion 4, SE ratio 4, experts 4, depthwise, kernel 3) when the space allows
    it, else the allowed value nearest to it (the first allowed in docs/design.md's order for the
    block and the middle conv). If that network cannot double within the budget, the cheapest
    options of the space are used instead (:meth:`SearchSpace.smallest_spec`).
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

    def __init__(
        self,
        config: SearchConfig,
        classes: int,
        measure: Measure = measure_latency,
        fill_every: int = 0,
    ) -> None:
        """``measure`` times a network when the search uses latency: here by default, or on
        the node of ``--latency-resource`` (``search.driver.latency``). ``fill_every`` > 0 makes
        every ``fill_every``-th joint trial after the opening a gap-filling one
        (:meth:`_fill_gap`)."""
        self.config = config
        self.classes = classes
        self.measure = measure
        self.timing: Machine | None = None  # the machine ``measure`` times on (None: this one)
        self.fill_every = fill_every
        self._caches: dict[int, LatencyCache] = {}
        self._views: dict[int, _Seen] = {}  # per study: its finished trials, read once
        self._claims: dict[int, Claims] = {}  # per study: its networks' claims in the database
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
        seen = self._seen(study)
        unfinished = seen.update()
        counts = seen.counts + Counts.of(unfinished)
        if counts.infeasible >= self.config.max_attempts:
            twins = seen.twins + sum(_is_twin(t) for t in unfinished)
            why = (
                "most of the space's networks are trained already; widen the space or lower "
                "--trials"
                if 2 * twins > counts.infeasible
                else "most of the space is over budget; raise --budget-flops or narrow the space"
            )
            self.note = (
                f"gave up after {counts.infeasible} candidates that could not train (cap "
                f"{self.config.max_attempts} = 20 x --trials): {why}"
            )
            return FINISHED
        if counts.done + live >= self.config.trials:
            return WAIT if live else FINISHED
        if self.config.strategy == "joint":
            if self._fill_turn(counts.done + live) and not counts.waiting:
                self._fill_gap(study, seen, unfinished)
            return "joint"
        return self._two_stage(study, seen.staged(unfinished), live)

    # ----- joint: filling the front's gaps -------------------------------------------------
    def _fill_turn(self, started: int) -> bool:
        """Whether the trial after ``started`` ones is a gap-filling one: every
        ``fill_every``-th trial once the opening's have started."""
        opening = len(self.opening())
        if self.fill_every <= 0 or started < opening:
            return False
        return (started - opening) % self.fill_every == self.fill_every - 1

    def _fill_gap(self, study: optuna.Study, seen: _Seen, unfinished: list[FrozenTrial]) -> None:
        """Queue the front member that fills the front's most valuable gap, scaled to its
        middle (``search.strategy.gaps``); nothing when the front has no gap left to try."""
        if tuple(self.config.objectives) != ("accuracy", "macs"):
            return  # the gaps are MAC gaps
        tried = seen.tried | {k for k in map(_fill_key, unfinished) if k is not None}
        proposal = widest_gap(seen.members, self.config.budget_macs, tried)
        if proposal is None:
            return
        params = {**proposal.source.params, SHARE_PARAM: proposal.share}
        study.enqueue_trial(
            params,
            user_attrs={
                schema.STAGE: "joint",
                schema.FILLS: proposal.source.number,
                schema.TARGET_MACS: round(proposal.target),
            },
        )

    def _seen(self, study: optuna.Study) -> _Seen:
        if study._study_id not in self._views:
            self._views[study._study_id] = _Seen(TrialFeed(study))
        return self._views[study._study_id]

    def _two_stage(
        self, study: optuna.Study, staged: dict[str, list[FrozenTrial]], live: int
    ) -> str:
        phi1, scaled = staged["phi1"], staged["scaled"]
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
                schema.STAGE: "scaled",
                schema.PARENT: parent.number,
                schema.LEVEL: level,
                schema.MEMBER: rank,
                schema.START_GAMMA: parent.user_attrs.get(schema.SPEC_JSON, {}).get("gamma"),
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
        used = {(t.user_attrs.get(schema.PARENT), t.params.get(TARGET_PARAM)) for t in scaled}
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
        """The network ``trial`` stands for in ``stage``, with every hard limit checked: the MAC
        budget, then ``--budget-params`` (both counted from the plan), then the measured latency
        against ``--latency-budget-ms``; all before anything trains. A joint candidate that
        passes them all is claimed (``search.study.claims``): another driver may have started
        the same network a moment ago."""
        candidate = self._limited(trial, stage)
        # where the no-repeat rule applies (joint, phi free; see _sampled)
        unique = stage == "joint" and "phi" not in self.config.space.pins
        if candidate.constraint is not None or not unique:
            return candidate
        return self._claimed(trial, candidate)

    def _claimed(self, trial: optuna.Trial, candidate: Candidate) -> Candidate:
        storage = trial.study._storage
        if not isinstance(storage, SnapshotStorage):
            return candidate  # a test's study: one driver, the index above suffices
        if trial.study._study_id not in self._claims:
            self._claims[trial.study._study_id] = Claims(storage.backend)
        claims = self._claims[trial.study._study_id]
        network = network_key(_layout(candidate.spec.canonical()))
        with DECISIONS.part("write"):
            holder = claims.claim(trial.study._study_id, network, trial._trial_id)
        if holder is None:
            return candidate
        number = storage.get_trial(holder).number
        reason = f"builds the same network as trial {number}, which trained it"
        return self._infeasible(trial, candidate.spec, "joint", "duplicate", reason)

    def _limited(self, trial: optuna.Trial, stage: str) -> Candidate:
        """The sampled candidate with the MAC, parameter and latency limits checked."""
        candidate = self._sampled(trial, stage)
        if candidate.constraint is not None:
            return candidate
        limit = self.config.budget_params
        if limit is not None and candidate.params > limit:
            reason = f"{candidate.params:,} parameters > --budget-params {limit:,}"
            excess = candidate.params / limit - 1
            return self._infeasible(trial, candidate.spec, stage, "params", reason, excess)
        if not self.config.uses_latency:
            return candidate
        record = self._cache(trial.study).latency(candidate.spec)
        candidate = dataclasses.replace(candidate, latency=record)
        cap = self.config.latency_budget_ms
        if cap is not None and record.median_ms > cap:
            reason = f"measured {record.median_ms:.4g} ms > --latency-budget-ms {cap:g}"
            excess = record.median_ms / cap - 1
            rejected = self._infeasible(trial, candidate.spec, stage, "latency", reason, excess)
            return dataclasses.replace(rejected, latency=record)
        return candidate

    def _cache(self, study: optuna.Study) -> LatencyCache:
        if study._study_id not in self._caches:
            settings = self.config.latency_settings()
            machine = self.timing or this_machine(settings.device)
            cache = LatencyCache(study, settings, self.measure, machine.host)
            self._caches[study._study_id] = cache
        return self._caches[study._study_id]

    def _sampled(self, trial: optuna.Trial, stage: str) -> Candidate:
        """The sampled network fitted to its MAC level; infeasible when it breaks the compound
        constraint or the MAC budget, or builds a network that trained already."""
        space = self.stage_one if stage in ("phi1", "scaled") else self.config.space
        with DECISIONS.part("sample"):  # the sampler answers each suggestion (common.clock)
            sample = space.sample(trial, gamma_override=trial.user_attrs.get(schema.START_GAMMA))
        spec = ArchSpec.from_dict({"classes": self.classes, **sample.values})
        if sample.violation:
            return self._infeasible(trial, spec, stage, "compound", sample.violation)
        budget = self.config.budget_macs
        if stage == "phi1":
            return self._fitted(spec, self.stage_one_macs, stage)
        if "phi" in space.pins:
            return self._within_budget(trial, spec, stage)
        baseline = count_spec(spec.replace(phi=0.0)).macs
        if stage == "scaled":
            target = self._member_level(trial)
        else:
            with DECISIONS.part("sample"):
                share = trial.suggest_float(SHARE_PARAM, 0.0, 1.0)
            target = baseline * (budget / baseline) ** share if baseline < budget else budget
            trial.set_user_attr(schema.TARGET_MACS, round(target))
        if baseline > budget:
            return self._within_budget(trial, spec.replace(phi=0.0), stage)
        candidate = self._fitted(spec, min(target, budget), stage)
        twin = (
            self._seen(trial.study).trained_twin(trial, candidate.spec)
            if stage == "joint"
            else None
        )
        if twin is not None:
            reason = f"builds the same network as trial {twin}, which trained it"
            return self._infeasible(trial, candidate.spec, stage, "duplicate", reason)
        return candidate

    def _member_level(self, trial: optuna.Trial) -> float:
        """A stage-2 member's level (its ``target_macs`` param); a re-queued member has it as a
        param only, so its "level" and "member" attrs are restored here."""
        target = trial.suggest_float(
            TARGET_PARAM, self.smallest_macs, self.config.budget_macs, log=True
        )
        levels = self.family_levels()
        trial.set_user_attr(schema.LEVEL, round(target))
        if round(target) in levels:
            trial.set_user_attr(schema.MEMBER, levels.index(round(target)) + 1)
        return target

    # ----- the opening of a new joint study ---------------------------------------------------
    def opening(self) -> list[dict[str, Any]]:
        """Params to enqueue, in order, when a joint study is created (see the module docstring):
        the cheapest network of the space at share 0, then shares spread over [0, 1] by
        farthest-point order (1, then the middle, ...), one trial per TPE start-up trial. None
        for two-stage or a pinned phi, which have no target."""
        space = self.config.space
        if self.config.strategy != "joint" or "phi" in space.pins:
            return []
        count = min(self.config.trials, startup_trials(self.config.trials))
        cheapest = space.smallest_spec(self.classes)  # no se_ratio / experts where unused
        first: dict[str, Any] = {
            name: getattr(cheapest, name)
            for name in CATEGORICAL
            if len(getattr(space, name)) > 1 and getattr(cheapest, name) is not None
        }
        shares = spread_shares(count)
        return [{**first, SHARE_PARAM: shares[0]}] + [{SHARE_PARAM: u} for u in shares[1:]]

    def enqueue_opening(self, study: optuna.Study) -> None:
        """Queue :meth:`opening` on a study that was just created, after what is queued already
        (``--b0``'s start) and no more than ``--trials`` in all, so none is left waiting."""
        queued = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        for params in self.opening()[: max(0, self.config.trials - queued)]:
            study.enqueue_trial(params, user_attrs={schema.STAGE: "joint"})

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
        as if it were a result (``search.strategy.sampler``)."""
        trial.set_constraint(kind, max(excess, 1e-9))
        report = count_spec(spec)
        prefix = "compound constraint: " if kind == "compound" else ""
        return Candidate(spec, report.macs, report.params, stage, prefix + reason)


class _Seen:
    """What the planner keeps of one study's finished trials, each read once
    (``search.study.feed``): their counts, the duplicates among them, the smallest number of a
    finished trial that trained each network (by layout), and the two-stage trials."""

    def __init__(self, feed: TrialFeed) -> None:
        self.feed = feed
        self.counts = Counts()
        self.twins = 0
        self.layouts: dict[tuple[object, ...], int] = {}
        self.stages: dict[str, list[FrozenTrial]] = {"phi1": [], "scaled": []}
        self.members: list[Member] = []  # completed joint trials, for gap filling
        self.tried: set[tuple[int, int]] = set()  # gap-filling proposals made

    def update(self) -> list[FrozenTrial]:
        """Take in the trials finished since the last call; returns the unfinished ones."""
        new, unfinished = self.feed.read()
        if new:
            self.counts = self.counts + Counts.of(new)
        for trial in new:
            self.twins += _is_twin(trial)
            stage = trial.user_attrs.get(schema.STAGE)
            if stage in self.stages:
                self.stages[stage].append(trial)
            if _trained(trial):
                layout = _layout(trial.user_attrs[schema.SPEC])
                if trial.number < self.layouts.get(layout, trial.number + 1):
                    self.layouts[layout] = trial.number
            key = _fill_key(trial)
            if key is not None:
                self.tried.add(key)
            member = _member(trial)
            if member is not None:
                self.members.append(member)
        return unfinished

    def staged(self, unfinished: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
        """Every trial of each two-stage stage, finished or not, by number."""
        return {
            stage: sorted(
                [*done, *(t for t in unfinished if t.user_attrs.get(schema.STAGE) == stage)],
                key=lambda t: t.number,
            )
            for stage, done in self.stages.items()
        }

    def trained_twin(self, trial: optuna.Trial, spec: ArchSpec) -> int | None:
        """The number of a trial of the study that trained (or is training) the network
        ``spec`` builds, if any (the smallest such number). Small shares of a range all give its
        phi = 0 network, and TPE samples near a good cheap trial again, so without this check a
        search trains the same network twice. Compared by resolved plan rather than
        ``ArchSpec.spec_id``, which only knows that phi = 0 ignores the coefficients: rounding
        also makes nearby phis build one network. Finished trials are indexed once; the running
        ones are checked each time."""
        layout = _layout(spec.canonical())
        unfinished = self.update()
        numbers = [self.layouts[layout]] if layout in self.layouts else []
        numbers += [
            other.number
            for other in unfinished
            if other.number != trial.number
            and _trained(other)
            and _layout(other.user_attrs[schema.SPEC]) == layout
        ]
        return min(numbers, default=None)


def _fill_key(trial: FrozenTrial) -> tuple[int, int] | None:
    """The gap-filling proposal a trial stands for (``search.strategy.gaps.key``), if any."""
    attrs = trial.user_attrs
    if schema.FILLS not in attrs or schema.TARGET_MACS not in attrs:
        return None
    return int(attrs[schema.FILLS]), gap_bucket(attrs[schema.TARGET_MACS])


def _member(trial: FrozenTrial) -> Member | None:
    """A completed joint trial as gap filling sees it; None for any other trial."""
    if trial.state != TrialState.COMPLETE or not trial.values or SHARE_PARAM not in trial.params:
        return None
    base = count_spec(_phi0(ArchSpec.from_dict(trial.user_attrs[schema.SPEC_JSON]))).macs
    return Member(trial.number, trial.values[0], int(trial.values[1]), base, trial.params)


def _trained(trial: FrozenTrial) -> bool:
    """Whether ``trial`` trained (or is training) the network of its spec attr."""
    attrs = trial.user_attrs
    return (
        trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        and attrs.get(schema.STATUS) != INFEASIBLE
        and schema.SPEC in attrs
    )


def _is_twin(trial: FrozenTrial) -> bool:
    return "duplicate" in (trial.constraints or {})


@functools.lru_cache(maxsize=4096)
def _layout(canonical: str) -> tuple[object, ...]:
    return resolve(ArchSpec.parse(canonical)).layout


def spread_shares(count: int) -> list[float]:
    """``count`` evenly spaced shares of [0, 1] in farthest-point order: 0, 1, 0.5, ... so that
    whatever prefix of them runs covers the range as evenly as it can."""
    if count <= 1:
        return [0.0][:count]
    left = [i / (count - 1) for i in range(count)]
    chosen = [left.pop(0), left.pop()]
    while left:
        far = max(left, key=lambda u: min(abs(u - c) for c in chosen))
        left.remove(far)
        chosen.append(far)
    return chosen


def _phi0(spec: ArchSpec) -> ArchSpec:
    return spec if spec.phi == 0.0 else spec.replace(phi=0.0)


def _coefficients(trial: FrozenTrial) -> tuple[float, ...]:
    spec = trial.user_attrs.get(schema.SPEC_JSON, {})
    return tuple(float(spec.get(name, 1.0)) for name in ("alpha", "beta", "gamma"))
