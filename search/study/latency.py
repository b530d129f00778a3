"""The study's latency cache: each network is timed once per device, batch and backend.

A measurement (``space.latency``) takes a second or more and a search meets the same network
again (a re-queued trial, a duplicate candidate, a second driver, a resume), so measurements are
kept in the study itself, as study user attrs under ``latency:<spec_id>:<device>:b<batch>:
<backend>`` (:func:`latency_key`): ``spec_id`` is the id of the built network
(``ArchSpec.spec_id``), so two specs that build one network share one measurement. Whoever
reads the key first uses the stored record; only a missing key is measured. Two drivers meeting
a new network at the same moment may both time it; the last record written stays, both valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from search.study.schema import LATENCY_PREFIX
from space.latency import LatencyRecord, LatencySettings, measure_latency
from space.spec import ArchSpec

Measure = Callable[[ArchSpec, LatencySettings], LatencyRecord]


def latency_key(spec_id: str, settings: LatencySettings) -> str:
    """The study attr that holds the measurement of network ``spec_id`` under ``settings``."""
    return f"{LATENCY_PREFIX}{spec_id}:{settings.key()}"


class LatencyCache:
    """Measured latencies of one study's networks under one set of ``LatencySettings``.

    ``measure`` times a network (by default here, in this process; the driver passes a function
    that runs it on the Ray node named by ``--latency-resource``)."""

    def __init__(
        self,
        study: optuna.Study,
        settings: LatencySettings,
        measure: Measure = measure_latency,
    ) -> None:
        self.study = study
        self.settings = settings
        self.measure = measure
        self._known: dict[str, LatencyRecord] = {}

    def latency(self, spec: ArchSpec) -> LatencyRecord:
        """The network's stored measurement, or a new one (then stored)."""
        key = latency_key(spec.spec_id, self.settings)
        if key not in self._known:
            stored: Any = self.study.user_attrs.get(key)
            if isinstance(stored, dict):
                record = LatencyRecord.from_dict(stored)
            else:
                record = self.measure(spec, self.settings)
                self.study.set_user_attr(key, record.to_dict())
            self._known[key] = record
        return self._known[key]


def stored_latencies(study_attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every measurement a study holds, by key (for reports and exports)."""
    return {
        key: value
        for key, value in study_attrs.items()
        if key.startswith(LATENCY_PREFIX) and isinstance(value, dict)
    }
