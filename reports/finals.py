"""The final trainings of a study next to its proxy: plain records, no drawing.

A search ranks networks by the validation accuracy of trials of one or two epochs (the *proxy*).
`search final` retrains chosen trials of study S from scratch with the full recipe and evaluates
each once on the test split; its results live in the companion study ``S:final``
(``search.study.schema.final_study_name``). This module reads that study and answers the one
question the proxy cannot: did the short trials rank the networks the way full training does?
Cheap proxies often rank networks poorly (Abdelfattah et al. 2021, "Zero-Cost Proxies for
Lightweight NAS", ICLR), so a report that shows only the proxy front can mislead; the rank
agreement below says how far the front can be trusted.

Agreement is measured over the retrained networks with at least one complete final, between the
proxy accuracy and the mean test accuracy of the repeats, by two rank correlations:
Kendall's tau-b (Kendall 1938, "A New Measure of Rank Correlation", Biometrika 30; the tie-aware
variant of ``scipy.stats.kendalltau``) and Spearman's rho (Spearman 1904, "The Proof and
Measurement of Association between Two Things", Am. J. Psychol. 15; ``scipy.stats.spearmanr``).
Both need at least :data:`MIN_RANKED` networks to say anything, and are None (with the reason in
the record) below that or when one side is constant.

**What chooses and what measures.** A winner picked by its test score is optimistic (the best of
several noisy scores is biased up), and networks within a point of each other would be ordered
by noise. So the test score is kept as the one unbiased figure per network and never chooses:
the final front and the final best are chosen by each final's held-out validation split
(training images it never trained on, or the data set's labelled ``val/``; `search final
--val-fraction`), mean over the repeats; finals without one (``--val-fraction 0``, or written by
an older effnas) are chosen by the search's proxy accuracy. Every reader says which figure chose
(:attr:`FinalData.chosen_by`) and which measured, shows each test score with its standard error
and names the networks the test split cannot order (``reports.final_stats``).

Both fronts use the one Pareto definition (``search.study.front``) in the searched study's own
objectives: (chosen figure, *costs) and (proxy accuracy, *costs) of the same networks, the costs
(MACs and/or latency) read from the searched trials, so the final front is the study's front
retrained, directly comparable with the proxy front.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from reports.final_stats import Score, Unordered, standard_error, unordered_pairs
from reports.ranks import MIN_RANKED, rank_correlation
from reports.records import STATUSES, TrialRecord, trial_record
from search.study import front, schema
from search.study.schema import final_study_name, objectives_of
from space import ArchSpec

TAU_AGREEMENT = 0.5  # below this Kendall's tau the short trials' ranking "disagrees"
VALIDATION = "validation"  # the finals' held-out validation split chooses
PROXY = "proxy"  # no final has one: the search's proxy accuracy chooses


@dataclass(frozen=True)
class FinalNetwork:
    """One retrained network of S: its final repeats (grouped by the searched trial's number).

    ``test_accuracies`` holds the COMPLETE repeats only, in repeat order; ``mean`` / ``std`` /
    ``low`` / ``high`` summarise them (``std`` is the sample standard deviation, None with one
    repeat; all are None with none). ``val_accuracies`` are the same repeats' held-out
    validation accuracies (empty when the finals hold out none). ``costs`` are the searched
    trial's stored costs in the study's objective order (MACs and/or latency). ``repeats`` lists
    every final trial of the network, complete or not, so a report can say what is still running
    or failed.
    """

    number: int  # the searched trial's number in S (SOURCE_TRIAL)
    spec: ArchSpec | None
    macs: int | None
    params: int | None
    proxy_accuracy: float | None
    test_accuracies: tuple[float, ...]
    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    repeats: tuple[TrialRecord, ...]  # every final trial of this network, by repeat
    costs: tuple[float, ...] | None = None
    latency_ms: float | None = None
    val_accuracies: tuple[float, ...] = ()
    test_images: int | None = None
    val_images: int | None = None

    @property
    def count(self) -> int:
        """How many complete repeats the statistics rest on."""
        return len(self.test_accuracies)

    @property
    def val_mean(self) -> float | None:
        """The mean held-out validation accuracy of the complete repeats (None without)."""
        complete = len(self.val_accuracies) == self.count > 0
        return statistics.fmean(self.val_accuracies) if complete else None

    @property
    def test_se(self) -> float | None:
        """The standard error of ``mean`` (``reports.final_stats.standard_error``)."""
        if self.mean is None:
            return None
        return standard_error(self.mean, self.test_images, self.std, self.count)

    def chosen(self, by: str) -> float | None:
        """The figure that chooses among finals: the validation mean or the proxy accuracy."""
        return self.val_mean if by == VALIDATION else self.proxy_accuracy

    def final_point(self, by: str) -> front.Point | None:
        """(chosen figure, *costs) once a repeat is complete, else None (off the front)."""
        chosen = self.chosen(by)
        if self.mean is None or chosen is None or self.costs is None:
            return None
        return (chosen, *self.costs)

    @property
    def proxy_point(self) -> front.Point | None:
        """(proxy accuracy, *costs) of a network with a complete final, else None."""
        if self.mean is None or self.proxy_accuracy is None or self.costs is None:
            return None
        return (self.proxy_accuracy, *self.costs)

    @property
    def score(self) -> Score | None:
        """The test score and its standard error, for ``reports.final_stats``."""
        if self.mean is None or self.test_se is None:
            return None
        return Score(self.number, self.mean, self.test_se)


@dataclass(frozen=True)
class Agreement:
    """How well the proxy ranks the retrained networks against their final test accuracy.

    ``tau`` (Kendall's tau-b) and ``rho`` (Spearman's rho) are None when they cannot be
    computed; ``note`` then says why. The correlations compare with the test score: they measure
    the proxy, they choose nothing. ``proxy_best`` is the proxy's best and ``final_best`` the
    final best as the finals' validation split chooses it (None when finals hold out none: then
    only the proxy chooses); ties broken by fewer MACs, then the lower number. ``agrees`` is
    False when tau is below :data:`TAU_AGREEMENT` or the two bests differ; ``message`` is the
    one line to print.
    """

    ranked: tuple[int, ...]  # the trial numbers the statistics compare
    tau: float | None
    rho: float | None
    note: str | None
    proxy_best: int | None
    final_best: int | None
    agrees: bool
    message: str


@dataclass(frozen=True)
class FinalData:
    """The companion study ``S:final`` read against S (see the module docstring)."""

    source_study: str  # S
    name: str  # S:final
    config: dict[str, Any]  # the final recipe (study attr CONFIG)
    networks: tuple[FinalNetwork, ...]  # every retrained network, by trial number
    final_front: tuple[FinalNetwork, ...]  # on (chosen figure up, costs down), by cost
    proxy_front: tuple[FinalNetwork, ...]  # the same networks on (proxy up, costs down)
    agreement: Agreement
    counts: dict[str, int]  # final trials per status (STATUSES order, zeros included)
    objectives: tuple[str, ...] = schema.DEFAULT_OBJECTIVES  # S's, which both fronts follow
    chosen_by: str = PROXY  # VALIDATION or PROXY
    unordered: tuple[Unordered, ...] = ()  # neighbours in test order the data cannot order

    @property
    def measured(self) -> tuple[FinalNetwork, ...]:
        """The networks with at least one complete final."""
        return tuple(n for n in self.networks if n.mean is not None)

    @property
    def best(self) -> FinalNetwork | None:
        """The final best by the choosing figure (None before a complete final)."""
        number = _best(list(self.measured), self.chosen_by)
        return next((n for n in self.measured if n.number == number), None)

    @property
    def chooser(self) -> str:
        """Which figure chose the final front and best, in words."""
        if self.chosen_by == VALIDATION:
            images = _first(n.val_images for n in self.measured)
            shown = f" on {images:,} held-out images" if images else ""
            return f"validation accuracy{shown} (mean of the repeats)"
        return (
            "the search's proxy accuracy (these finals hold out no validation split: "
            "--val-fraction 0, or an older effnas)"
        )

    @property
    def measure(self) -> str:
        """Which figure measures, in words."""
        images = _first(n.test_images for n in self.measured)
        shown = f" on {images:,} test images" if images else ""
        return f"test accuracy{shown} (mean of the repeats, ± its standard error); it chose nothing"


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if math.isfinite(value) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _proxy_of(trial: FrozenTrial | None) -> float | None:
    """A searched trial's own accuracy: the fallback when a final lacks PROXY_ACCURACY."""
    if trial is None or trial.state != TrialState.COMPLETE or not trial.values:
        return None
    return _float(trial.values[0])


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def summarise(
    number: int,
    finals: list[FrozenTrial],
    searched: FrozenTrial | None,
    objectives: tuple[str, ...] = schema.DEFAULT_OBJECTIVES,
) -> FinalNetwork:
    """One network's record from its final trials (and its searched trial, for its costs and
    fallbacks). Two finals of one (trial, repeat), which two concurrent commands of an older
    effnas could queue, count once: the first complete one."""
    finals = sorted(finals, key=lambda t: (_int(t.user_attrs.get(schema.REPEAT)) or 0, t.number))
    records = tuple(trial_record(t) for t in finals)
    complete: dict[Any, FrozenTrial] = {}
    for trial, record in zip(finals, records, strict=True):
        if record.measured and record.accuracy is not None:
            complete.setdefault(trial.user_attrs.get(schema.REPEAT), trial)
    accuracies = tuple(float(t.values[0]) for t in complete.values())
    validation = tuple(
        v
        for v in (_float(t.user_attrs.get(schema.VAL_ACCURACY)) for t in complete.values())
        if v is not None
    )
    searched_record = trial_record(searched) if searched is not None else None
    fallback = [searched_record] if searched_record is not None else []
    proxy = _first(_float(t.user_attrs.get(schema.PROXY_ACCURACY)) for t in finals)
    macs = _first(r.macs for r in [*records, *fallback])
    latency = _first(
        _float((s.user_attrs if s else {}).get(schema.LATENCY_MS)) for s in [searched, *finals]
    )
    known = {"macs": float(macs) if macs is not None else None, "latency": latency}
    costs = tuple(known[name] for name in objectives[1:])
    return FinalNetwork(
        number=number,
        spec=_first(r.spec for r in [*records, *fallback]),
        macs=macs,
        params=_first(r.params for r in [*records, *fallback]),
        proxy_accuracy=proxy if proxy is not None else _proxy_of(searched),
        test_accuracies=accuracies,
        mean=statistics.fmean(accuracies) if accuracies else None,
        std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        low=min(accuracies) if accuracies else None,
        high=max(accuracies) if accuracies else None,
        repeats=records,
        costs=None if None in costs else costs,  # type: ignore[arg-type]
        latency_ms=latency,
        val_accuracies=validation,
        test_images=_first(_int(t.user_attrs.get(schema.TEST_IMAGES)) for t in complete.values()),
        val_images=_first(_int(t.user_attrs.get(schema.VAL_IMAGES)) for t in complete.values()),
    )


def _best(networks: list[FinalNetwork], by: str) -> int | None:
    """The number of the network with the highest figure ``by`` (VALIDATION, PROXY, or "mean"),
    fewer MACs, then the lower number, on ties; networks without the figure take no part."""

    def figure(n: FinalNetwork) -> float | None:
        return n.mean if by == "mean" else n.chosen(by)

    candidates = [n for n in networks if figure(n) is not None]
    if not candidates:
        return None
    top = max(
        candidates,
        key=lambda n: (figure(n), -(n.macs if n.macs is not None else math.inf), -n.number),
    )
    return top.number


def agreement(networks: Iterable[FinalNetwork], by: str = PROXY) -> Agreement:
    """Kendall's tau-b and Spearman's rho of proxy accuracy vs final test mean, and the bests.

    Only networks with a complete final and a known proxy accuracy take part. With fewer than
    :data:`MIN_RANKED` of them, or when one side is constant (a correlation of ranks is then
    undefined), tau and rho are None and ``note`` says why. The final best is chosen ``by`` the
    validation split (VALIDATION); with PROXY there is no final best apart from the proxy's.
    """
    ranked = sorted(
        (n for n in networks if n.mean is not None and n.proxy_accuracy is not None),
        key=lambda n: n.number,
    )
    proxy = [n.proxy_accuracy for n in ranked]
    final = [n.mean for n in ranked]
    tau = rho = None
    note = None
    if len(ranked) < MIN_RANKED:
        note = (
            f"rank agreement needs at least {MIN_RANKED} retrained networks with a complete "
            f"final (have {len(ranked)})"
        )
    elif len(set(proxy)) == 1 or len(set(final)) == 1:
        note = "rank agreement undefined: the proxy accuracies or the final means are all equal"
    else:
        ranks = rank_correlation(proxy, final)
        tau, rho = ranks.kendall_tau, ranks.spearman_rho
    proxy_best = _best(ranked, PROXY)
    final_best = _best(ranked, VALIDATION) if by == VALIDATION else None
    problems = []
    if tau is not None and tau < TAU_AGREEMENT:
        problems.append(f"tau {tau:.2f} < {TAU_AGREEMENT} (proxy vs test)")
    if final_best is not None and proxy_best != final_best:
        problems.append(
            f"the proxy's best (trial {proxy_best}) is not the final best by validation "
            f"(trial {final_best})"
        )
    measured = (
        f"tau {tau:.2f} >= {TAU_AGREEMENT}, rho {rho:.2f} (proxy vs test)"
        if tau is not None and rho is not None
        else str(note)
    )
    if problems:
        message = "the short trials' ranking disagrees with the final training: " + "; ".join(
            problems
        )
    elif not ranked:
        message = "no retrained network has a complete final yet"
    elif final_best is None:
        message = (
            f"the short trials' ranking against the final training: {measured}; no final best "
            "apart from the proxy's (the finals hold out no validation split to choose by)"
        )
    else:
        message = (
            f"the short trials' ranking agrees with the final training: {measured}; "
            f"the proxy's best (trial {proxy_best}) is also the final best by validation"
        )
    return Agreement(
        ranked=tuple(n.number for n in ranked),
        tau=tau,
        rho=rho,
        note=note,
        proxy_best=proxy_best,
        final_best=final_best,
        agrees=not problems and bool(ranked),
        message=message,
    )


def chosen_by(networks: Iterable[FinalNetwork]) -> str:
    """VALIDATION when every network with a complete final has a validation mean, else PROXY
    (finals without a held-out split cannot be ranked by one)."""
    measured = [n for n in networks if n.mean is not None]
    if measured and all(n.val_mean is not None for n in measured):
        return VALIDATION
    return PROXY


def final_data(study: optuna.Study, storage: optuna.storages.BaseStorage) -> FinalData | None:
    """The final trainings of ``study`` (S) read from ``S:final`` in ``storage``.

    None when the companion study does not exist or has no COMPLETE trial yet: the caller then
    says how to make one (`search final --study S`).
    """
    name = final_study_name(study.study_name)
    if name not in optuna.get_all_study_names(storage):
        return None
    companion = optuna.load_study(study_name=name, storage=storage)
    finals = companion.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE and t.values for t in finals):
        return None
    searched = {t.number: t for t in study.get_trials(deepcopy=False)}
    objectives = objectives_of(study)
    groups: dict[int, list[FrozenTrial]] = {}
    for trial in finals:
        source = _int(trial.user_attrs.get(schema.SOURCE_TRIAL))
        if source is not None:
            groups.setdefault(source, []).append(trial)
    networks = tuple(
        summarise(number, groups[number], searched.get(number), objectives)
        for number in sorted(groups)
    )
    config = companion.user_attrs.get(schema.CONFIG)
    found = Counter(trial_record(t).status for t in finals)
    by = chosen_by(networks)
    scores = [n.score for n in networks if n.score is not None]
    return FinalData(
        source_study=study.study_name,
        name=name,
        config=dict(config) if isinstance(config, dict) else {},
        networks=networks,
        final_front=tuple(front.pareto_front(networks, lambda n: n.final_point(by))),
        proxy_front=tuple(front.pareto_front(networks, lambda n: n.proxy_point)),
        agreement=agreement(networks, by),
        counts={status: found.get(status, 0) for status in STATUSES},
        objectives=objectives,
        chosen_by=by,
        unordered=tuple(unordered_pairs(scores)),
    )


def no_final_message(study: str) -> str:
    """The line every reader prints when S has no final training yet."""
    return f"no final training for study {study} yet; run `search final --study {study}`"


ROW_COLUMNS: tuple[str, ...] = (
    "trial",
    "final_front",
    "proxy_front",
    "spec",
    "macs",
    "latency_ms",
    "params",
    "proxy_accuracy",
    "val_mean",
    "test_mean",
    "test_se",
    "test_std",
    "test_min",
    "test_max",
    "repeats",
    "test_accuracies",
)


def network_row(network: FinalNetwork, data: FinalData) -> dict[str, Any]:
    """One network as a plain dict (:data:`ROW_COLUMNS`): the HTML table and `best --json`."""
    final_front = {n.number for n in data.final_front}
    proxy_front = {n.number for n in data.proxy_front}
    return {
        "trial": network.number,
        "final_front": network.number in final_front,
        "proxy_front": network.number in proxy_front,
        "spec": network.spec.canonical() if network.spec is not None else None,
        "macs": network.macs,
        "latency_ms": network.latency_ms,
        "params": network.params,
        "proxy_accuracy": network.proxy_accuracy,
        "val_mean": network.val_mean,
        "test_mean": network.mean,
        "test_se": network.test_se,
        "test_std": network.std,
        "test_min": network.low,
        "test_max": network.high,
        "repeats": network.count,
        "test_accuracies": list(network.test_accuracies),
    }


def final_rows(data: FinalData, front_only: bool = False) -> list[dict[str, Any]]:
    """The networks' rows: the final front first (by cost), then the rest by trial number."""
    first = list(data.final_front)
    numbers = {n.number for n in first}
    rest = [] if front_only else [n for n in data.networks if n.number not in numbers]
    return [network_row(n, data) for n in [*first, *rest]]


def agreement_record(data: FinalData) -> dict[str, Any]:
    """The agreement as a plain dict (JSON-ready)."""
    a = data.agreement
    return {
        "chosen_by": data.chosen_by,
        "chooser": data.chooser,
        "measure": data.measure,
        "networks": list(a.ranked),
        "kendall_tau": a.tau,
        "spearman_rho": a.rho,
        "note": a.note,
        "proxy_best": a.proxy_best,
        "final_best": a.final_best,
        "agrees": a.agrees,
        "message": a.message,
        "unordered": [
            {
                "trials": [u.first.number, u.second.number],
                "difference": u.difference,
                "threshold": u.threshold,
                "message": u.message,
            }
            for u in data.unordered
        ],
    }
