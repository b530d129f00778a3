"""The report's latency data: the accuracy-vs-latency front and how MACs rank like latency.

Plain records from :class:`~reports.records.TrialRecord` s, no drawing (``reports.figures``
draws them). A study whose search timed its candidates (latency an objective or capped) has
``latency_ms`` on its trials; a study without any gets no latency section.

- the **Pareto set** on the accuracy-vs-latency plane: the study's own front (the one `search
  best` prints, over the study's objectives, ``reports.pareto``) among the timed trials. In an
  ``accuracy,latency`` study it is the accuracy-latency front; in an ``accuracy,macs`` study
  that only capped latency, or one of three objectives, it is the same set of trials, ringed
  where they fall on this plane, never a second front of its own;
- **where** the figures were measured: the host (and CPU or GPU) of each record, so a reader
  sees that one machine timed them (a study refuses to mix machines, ``search.study.latency``);
- the **MACs-latency agreement**: Kendall's tau-b and Spearman's rho (``reports.ranks``) of
  counted MACs against measured latency over every network of the study that was timed (each
  network once, by ``spec_id``; infeasible candidates too: they were timed before being
  refused), which says how far a MAC budget stands in for a latency one on this device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reports.pareto import pareto_front
from reports.ranks import RankCorrelation, rank_correlation
from reports.records import TrialRecord
from search.study.schema import DEFAULT_OBJECTIVES


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
    front: tuple[TrialRecord, ...]  # the study's Pareto set among them, fastest first
    networks: tuple[TimedNetwork, ...]  # every timed network once
    correlation: RankCorrelation  # MACs vs latency over ``networks``
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES  # the study's, which its front follows
    hosts: tuple[str, ...] = ()  # the hosts that timed the networks ("unknown" for old records)

    @property
    def where(self) -> str:
        """Where the figures were measured, as the figure's axis says it."""
        if not self.hosts:
            return "host not recorded"
        if len(self.hosts) == 1:
            return f"timed on {self.hosts[0]}"
        return f"timed on {len(self.hosts)} hosts: {', '.join(self.hosts)}"


def latency_point(trial: TrialRecord) -> tuple[float, float] | None:
    """(accuracy, latency) of a completed, timed trial; None otherwise."""
    if not trial.measured or trial.accuracy is None or trial.latency_ms is None:
        return None
    return (trial.accuracy, trial.latency_ms)


def latency_data(
    trials: Sequence[TrialRecord], objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
) -> LatencyData | None:
    """The latency records of a study's trials; None when no trial was timed. ``objectives``:
    the study's, whose front (computed from each record's point) is ringed."""
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
    front = [t for t in pareto_front(trials) if latency_point(t) is not None]
    front.sort(key=lambda t: (t.latency_ms or 0.0, -(t.accuracy or 0.0), t.number))
    hosts = sorted({t.latency_host or "unknown" for t in trials if t.latency_ms is not None})
    return LatencyData(
        completed=completed,
        front=tuple(front),
        networks=tuple(timed),
        correlation=rank_correlation([n.macs for n in timed], [n.latency_ms for n in timed]),
        objectives=objectives,
        hosts=tuple(hosts),
    )
