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

Both fronts use the one Pareto definition (``search.study.front``), on (test-accuracy mean, MACs)
and (proxy accuracy, MACs) of the same networks, so the two fronts are directly comparable.
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

from reports.ranks import MIN_RANKED, rank_correlation
from reports.records import STATUSES, TrialRecord, trial_record
from search.study import front, schema
from search.study.schema import final_study_name
from space import ArchSpec

TAU_AGREEMENT = 0.5  # below this Kendall's tau the short trials' ranking "disagrees"


@dataclass(frozen=True)
class FinalNetwork:
    """One retrained network of S: its final repeats (grouped by the searched trial's number).

    ``test_accuracies`` holds the COMPLETE repeats only, in repeat order; ``mean`` / ``std`` /
    ``low`` / ``high`` summarise them (``std`` is the sample standard deviation, None with one
    repeat; all are None with none). ``repeats`` lists every final trial of the network, complete
    or not, so a report can say what is still running or failed.
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

    @property
    def count(self) -> int:
        """How many complete repeats the statistics rest on."""
        return len(self.test_accuracies)

    @property
    def final_point(self) -> front.Point | None:
        """(test-accuracy mean, MACs) once a repeat is complete, else None (off the front)."""
        if self.mean is None or self.macs is None:
            return None
        return (self.mean, self.macs)

    @property
    def proxy_point(self) -> front.Point | None:
        """(proxy accuracy, MACs) of a network with a complete final, else None."""
        if self.mean is None or self.proxy_accuracy is None or self.macs is None:
            return None
        return (self.proxy_accuracy, self.macs)


@dataclass(frozen=True)
class Agreement:
    """How well the proxy ranks the retrained networks against their final test accuracy.

    ``tau`` (Kendall's tau-b) and ``rho`` (Spearman's rho) are None when they cannot be
    computed; ``note`` then says why. ``proxy_best`` / ``final_best`` are trial numbers (ties
    broken by fewer MACs, then the lower number); ``agrees`` is False when tau is below
    :data:`TAU_AGREEMENT` or the two bests differ; ``message`` is the one line to print.
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
    final_front: tuple[FinalNetwork, ...]  # on (test mean up, MACs down), by MACs
    proxy_front: tuple[FinalNetwork, ...]  # the same networks on (proxy up, MACs down)
    agreement: Agreement
    counts: dict[str, int]  # final trials per status (STATUSES order, zeros included)

    @property
    def measured(self) -> tuple[FinalNetwork, ...]:
        """The networks with at least one complete final."""
        return tuple(n for n in self.networks if n.mean is not None)


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


def summarise(number: int, finals: list[FrozenTrial], searched: FrozenTrial | None) -> FinalNetwork:
    """One network's record from its final trials (and its searched trial, for fallbacks)."""
    finals = sorted(finals, key=lambda t: (_int(t.user_attrs.get(schema.REPEAT)) or 0, t.number))
    records = tuple(trial_record(t) for t in finals)
    accuracies = tuple(r.accuracy for r in records if r.measured and r.accuracy is not None)
    searched_record = trial_record(searched) if searched is not None else None
    fallback = [searched_record] if searched_record is not None else []
    proxy = _first(_float(t.user_attrs.get(schema.PROXY_ACCURACY)) for t in finals)
    return FinalNetwork(
        number=number,
        spec=_first(r.spec for r in [*records, *fallback]),
        macs=_first(r.macs for r in [*records, *fallback]),
        params=_first(r.params for r in [*records, *fallback]),
        proxy_accuracy=proxy if proxy is not None else _proxy_of(searched),
        test_accuracies=accuracies,
        mean=statistics.fmean(accuracies) if accuracies else None,
        std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        low=min(accuracies) if accuracies else None,
        high=max(accuracies) if accuracies else None,
        repeats=records,
    )


def _best(networks: list[FinalNetwork], value: str) -> int | None:
    """The number of the network with the highest ``value`` (fewer MACs, then number, on ties)."""
    if not networks:
        return None
    top = max(
        networks,
        key=lambda n: (getattr(n, value), -(n.macs if n.macs is not None else math.inf), -n.number),
    )
    return top.number


def agreement(networks: Iterable[FinalNetwork]) -> Agreement:
    """Kendall's tau-b and Spearman's rho of proxy accuracy vs final mean, and the bests.

    Only networks with a complete final and a known proxy accuracy take part. With fewer than
    :data:`MIN_RANKED` of them, or when one side is constant (a correlation of ranks is then
    undefined), tau and rho are None and ``note`` says why; the bests still compare.
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
    proxy_best = _best(ranked, "proxy_accuracy")
    final_best = _best(ranked, "mean")
    problems = []
    if tau is not None and tau < TAU_AGREEMENT:
        problems.append(f"tau {tau:.2f} < {TAU_AGREEMENT}")
    if proxy_best != final_best:
        problems.append(
            f"the proxy's best (trial {proxy_best}) is not the final best (trial {final_best})"
        )
    if problems:
        message = "the short trials' ranking disagrees with the final training: " + "; ".join(
            problems
        )
    elif not ranked:
        message = "no retrained network has a complete final yet"
    else:
        measured = (
            f"tau {tau:.2f} >= {TAU_AGREEMENT}, rho {rho:.2f}"
            if tau is not None and rho is not None
            else str(note)
        )
        message = (
            f"the short trials' ranking agrees with the final training: {measured}; "
            f"the proxy's best (trial {proxy_best}) is also the final best"
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
    groups: dict[int, list[FrozenTrial]] = {}
    for trial in finals:
        source = _int(trial.user_attrs.get(schema.SOURCE_TRIAL))
        if source is not None:
            groups.setdefault(source, []).append(trial)
    networks = tuple(
        summarise(number, groups[number], searched.get(number)) for number in sorted(groups)
    )
    config = companion.user_attrs.get(schema.CONFIG)
    found = Counter(trial_record(t).status for t in finals)
    return FinalData(
        source_study=study.study_name,
        name=name,
        config=dict(config) if isinstance(config, dict) else {},
        networks=networks,
        final_front=tuple(front.pareto_front(networks, lambda n: n.final_point)),
        proxy_front=tuple(front.pareto_front(networks, lambda n: n.proxy_point)),
        agreement=agreement(networks),
        counts={status: found.get(status, 0) for status in STATUSES},
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
    "params",
    "proxy_accuracy",
    "test_mean",
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
        "params": network.params,
        "proxy_accuracy": network.proxy_accuracy,
        "test_mean": network.mean,
        "test_std": network.std,
        "test_min": network.low,
        "test_max": network.high,
        "repeats": network.count,
        "test_accuracies": list(network.test_accuracies),
    }


def final_rows(data: FinalData, front_only: bool = False) -> list[dict[str, Any]]:
    """The networks' rows: the final front first (by MACs), then the rest by trial number."""
    first = list(data.final_front)
    numbers = {n.number for n in first}
    rest = [] if front_only else [n for n in data.networks if n.number not in numbers]
    return [network_row(n, data) for n in [*first, *rest]]


def agreement_record(data: FinalData) -> dict[str, Any]:
    """The agreement as a plain dict (JSON-ready)."""
    a = data.agreement
    return {
        "networks": list(a.ranked),
        "kendall_tau": a.tau,
        "spearman_rho": a.rho,
        "note": a.note,
        "proxy_best": a.proxy_best,
        "final_best": a.final_best,
        "agrees": a.agrees,
        "message": a.message,
    }
