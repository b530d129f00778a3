"""The study's latency: each network timed once per machine, and one machine per study.

**The cache.** A measurement (``space.latency``) takes a second or more and a search meets the
same network again (a re-queued trial, a duplicate candidate, a second driver, a resume), so
measurements are kept in the study itself, as study user attrs under
``latency:<spec_id>:<host>:<device>:b<batch>:<backend>`` (:func:`latency_key`): ``spec_id`` is
the id of the built network (``ArchSpec.spec_id``), so two specs that build one network share
one measurement; ``host`` is the machine that times, so another machine never reuses it (it
re-times). Whoever reads the key first uses the stored record; only a missing key is measured.
Two drivers meeting a new network at the same moment may both time it; the last record written
stays, both valid.

**One machine per study.** One objective and one ``--latency-budget-ms`` can only compare
figures taken on one machine: a CPU twice as fast halves every figure it times. So the driver
that creates a study that uses latency records the machine that times its candidates
(:data:`~search.study.schema.LATENCY_MACHINE`: this host, or the node of
``--latency-resource``), and every later driver must time on that machine
(:func:`check_machine`): a driver on another host is refused in one line, before it writes
anything, unless the study times on one named node (``--latency-resource``, which routes all
timing there whichever driver meets a network). A study written before machines were recorded
is judged by its trials: their records' hosts, else the hosts of the drivers that timed them
(an older driver timed on its own machine unless it named a resource).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from common.errors import UserError
from search.study import schema
from search.study.schema import LATENCY_PREFIX
from space.latency import UNKNOWN, LatencyRecord, LatencySettings, Machine, measure_latency
from space.spec import ArchSpec

Measure = Callable[[ArchSpec, LatencySettings], LatencyRecord]


def latency_key(spec_id: str, settings: LatencySettings, host: str) -> str:
    """The study attr that holds network ``spec_id``'s measurement on ``host`` under
    ``settings``."""
    return f"{LATENCY_PREFIX}{spec_id}:{host}:{settings.key()}"


class LatencyCache:
    """Measured latencies of one study's networks on one machine under one set of settings.

    ``measure`` times a network (by default here, in this process; the driver passes a function
    that runs it on the Ray node named by ``--latency-resource``); ``host`` is the machine it
    times on."""

    def __init__(
        self,
        study: optuna.Study,
        settings: LatencySettings,
        measure: Measure = measure_latency,
        host: str = UNKNOWN,
    ) -> None:
        self.study = study
        self.settings = settings
        self.measure = measure
        self.host = host
        self._known: dict[str, LatencyRecord] = {}

    def latency(self, spec: ArchSpec) -> LatencyRecord:
        """The network's stored measurement, or a new one (then stored)."""
        key = latency_key(spec.spec_id, self.settings, self.host)
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


def timing_record(machine: Machine, resource: str | None) -> dict[str, Any]:
    """The :data:`~search.study.schema.LATENCY_MACHINE` attr: the machine, and the resource
    that routes timing there (None: the driver's own machine)."""
    return {**machine.to_dict(), "resource": resource}


def recorded_machines(study_attrs: dict[str, Any], trials: Iterable[FrozenTrial]) -> list[Machine]:
    """The machines a study's latencies were measured on: its recorded timing machine, else
    (an older study) those its timed trials name, or whose drivers timed them; sorted."""
    recorded = study_attrs.get(schema.LATENCY_MACHINE)
    if isinstance(recorded, dict):
        return [Machine.from_dict(recorded)]
    found = set()
    for trial in trials:
        record = trial.user_attrs.get(schema.LATENCY)
        if not isinstance(record, dict):
            continue
        host = record.get("host")
        if not isinstance(host, str):
            driver = trial.user_attrs.get(schema.DRIVER)
            host = driver.get("host") if isinstance(driver, dict) else None
        if isinstance(host, str):
            found.add(Machine(host, str(record.get("processor", UNKNOWN))))
    return sorted(found, key=lambda m: (m.host, m.processor))


def check_machine(study: str, machines: list[Machine], here: Machine, resource: str | None) -> None:
    """Refuse to time on ``here`` a study whose latencies were measured on other ``machines``
    (see the module docstring); nothing to check for a study that timed nothing yet. A
    processor unknown on either side (an older record) compares by host alone."""
    if not machines:
        return
    same = all(
        m == here or (m.host == here.host and UNKNOWN in (m.processor, here.processor))
        for m in machines
    )
    if same:
        return
    shown = ", ".join(m.label for m in machines)
    where = f"the node of --latency-resource {resource}" if resource else "this driver"
    fix = (
        "start that node again, or time on one named node with a new --study"
        if resource
        else f"run this command on {machines[0].host}, or time every candidate on one node: a "
        "new --study with --latency-resource NAME, the node started with ray start "
        "--resources '{\"NAME\": 1}'"
    )
    raise UserError(
        f"study {study!r} measures latency on {shown}, but {where} would time on {here.label}: "
        f"one objective or --latency-budget-ms cannot compare figures from two machines; {fix}"
    )
