"""The report's latency data: the accuracy-vs-latency front and how MACs rank like latency.

Plain records from :class:`~reports.records.TrialRecord` s, no drawing (``reports.figures``
draws them). A study whose search timed its candidates (latency an objective or capped) has
``latency_ms`` on its trials; a study without any gets no latency section.

- the **latency front**: the completed trials not dominated in (accuracy up, latency down), by
  the study's one dominance (``search.study.front``);
- the **MACs-latency agreement**: Kendall's tau-b and Spearman's rho (``reports.ranks``) of
  counted MACs against measured latency over every network of the study that was timed (each
  network once, by ``spec_id``; infeasible candidates too: they were timed before being
  refused), which says how far a MAC budget stands in for a latency one on this device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reports.ranks import RankCorrelation, rank_correlation
from reports.records import TrialRecord
from search.study.front import pareto_front


@dataclass(frozen=True)
class TimedNetwork:
    """One timed network: the MACs and latency point of the scatter."""

    number: int  # the first trial that built it
    block: str
    macs: int
    latency_ms: float
    spec: str


@dataclass(frozen=True)
class LatencyData:
    """Everything the report shows about latency."""

    completed: tuple[TrialRecord, ...]  # completed trials with a latency
    front: tuple[TrialRecord, ...]  # their (accuracy, latency) front, fastest first
    networks: tuple[TimedNetwork, ...]  # every timed network once
    correlation: RankCorrelation  # MACs vs latency over ``networks``


def latency_point(trial: TrialRecord) -> tuple[float, float] | None:
    """(accuracy, latency) of a completed, timed trial; None otherwise."""
    if not trial.measured or trial.accuracy is None or trial.latency_ms is None:
        return None
    return (trial.accuracy, trial.latency_ms)


def latency_data(trials: Sequence[TrialRecord]) -> LatencyData | None:
    """The latency records of a study's trials; None when no trial was timed."""
    networks: dict[str, TimedNetwork] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.latency_ms is None or trial.macs is None or trial.spec is None:
            continue
        networks.setdefault(
            trial.spec.spec_id,
            TimedNetwork(
                trial.number, trial.block, trial.macs, trial.latency_ms, trial.spec.canonical()
            ),
        )
    if not networks:
        return None
    timed = list(networks.values())
    completed = tuple(t for t in trials if latency_point(t) is not None)
    return LatencyData(
        completed=completed,
        front=tuple(pareto_front(completed, latency_point)),
        networks=tuple(timed),
        correlation=rank_correlation([n.macs for n in timed], [n.latency_ms for n in timed]),
    )
