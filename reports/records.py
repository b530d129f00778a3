"""Plain records read from an Optuna study: the data side of every report.

The study schema (``search.study.schema``) is the project's contract between ``search run``
(writer) and this package (reader): values ``[accuracy, *costs]`` on COMPLETE trials (costs:
MACs and/or latency, as the study's objectives say), everything else in trial user attrs under
the schema's keys; MACs and latency are read from their attrs, which every study has.
Turning each ``optuna.trial.FrozenTrial`` into a frozen :class:`TrialRecord` once keeps the Pareto
computation, the table and the drawing free of Optuna (and testable with hand-made records).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from common.errors import UserError
from search.study import METRIC_NAMES, Point, schema
from search.study.schema import (
    COMPLETE,
    DEFAULT_OBJECTIVES,
    FAILED,
    INFEASIBLE,
    OBJECTIVE_SETS,
    PRUNED,
    RUNNING,
    WAITING,
)
from space import ArchSpec

# Display order of statuses in headers and counts.
STATUSES: tuple[str, ...] = (COMPLETE, PRUNED, INFEASIBLE, FAILED, RUNNING, WAITING)

_STATUS_OF_STATE = {
    TrialState.COMPLETE: COMPLETE,
    TrialState.PRUNED: PRUNED,
    TrialState.FAIL: FAILED,
    TrialState.RUNNING: RUNNING,
    TrialState.WAITING: WAITING,
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the report sees it. ``accuracy`` is set on COMPLETE trials only."""

    number: int
    state: str  # Optuna state name: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    status: str  # one of STATUSES
    spec: ArchSpec | None
    accuracy: float | None = None
    macs: int | None = None
    params: int | None = None
    last_accuracy: float | None = None
    epochs_run: int | None = None
    accuracy_per_epoch: tuple[float, ...] = ()
    loss_per_epoch: tuple[float, ...] = ()
    seconds: float | None = None
    images_per_second: float | None = None
    peak_memory_bytes: int | None = None
    stage: str | None = None
    fail_reason: str | None = None
    weights_dir: str | None = None
    latency_ms: float | None = None  # measured median latency, when the search timed it
    latency_cv: float | None = None  # that measurement's coefficient of variation
    latency_host: str | None = None  # the host that timed it (older records: unknown)
    # the costs the study optimised, in its objective order (``trial.values[1:]``); None for a
    # record made without a study's values, which then stands in the default objectives' place
    costs: tuple[float, ...] | None = None

    @property
    def block(self) -> str:
        return self.spec.block if self.spec is not None else "unknown"

    @property
    def measured(self) -> bool:
        """True when the trial has a final point in the study's objectives: it may join the
        front."""
        if self.status != COMPLETE or self.accuracy is None:
            return False
        return self.costs is not None or self.macs is not None

    @property
    def point(self) -> Point | None:
        """The trial's (accuracy, *costs) in the study's objectives (``trial.values``, the point
        `search best` ranks) when it is measured, else None (it is off the front). A record
        without the study's values is placed at (accuracy, MACs), the default objectives."""
        if not self.measured or self.accuracy is None:
            return None
        if self.costs is not None:
            return (self.accuracy, *self.costs)
        return (self.accuracy, float(self.macs)) if self.macs is not None else None


@dataclass(frozen=True)
class StudyData:
    """A study's header data and all its trials, in trial-number order."""

    name: str
    storage: str  # display form (password masked)
    config: dict[str, Any]
    version: str | None
    trials: tuple[TrialRecord, ...]
    metric_names: tuple[str, ...] = tuple(METRIC_NAMES)

    @property
    def objectives(self) -> tuple[str, ...]:
        """The study's objectives (``accuracy`` then its costs), as `search run` named them."""
        names = tuple(self.metric_names)
        return names if names in OBJECTIVE_SETS else DEFAULT_OBJECTIVES

    @property
    def timed(self) -> bool:
        """Whether any trial carries a measured latency (else the report shows no latency)."""
        return any(t.latency_ms is not None for t in self.trials)

    def counts(self) -> dict[str, int]:
        """Trials per status, every status present (zeros included), in STATUSES order."""
        found = Counter(t.status for t in self.trials)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def running(self) -> int:
        return sum(1 for t in self.trials if t.status == RUNNING)

    @property
    def classes(self) -> int | None:
        """The class count of the study's networks (from its specs, else from its config)."""
        for trial in self.trials:
            if trial.spec is not None:
                return trial.spec.classes
        value = self.config.get("classes")
        return int(value) if isinstance(value, (int, float)) else None


def _spec_of(attrs: dict[str, Any]) -> ArchSpec | None:
    """The trial's spec from "spec_json" (preferred) or the canonical "spec" string."""
    try:
        if isinstance(attrs.get(schema.SPEC_JSON), dict):
            return ArchSpec.from_dict(attrs[schema.SPEC_JSON])
        if isinstance(attrs.get(schema.SPEC), str):
            return ArchSpec.parse(attrs[schema.SPEC])
    except (UserError, TypeError):
        return None
    return None


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return kind(value)


def _floats(value: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(float(v) for v in value if isinstance(v, (int, float)))


def trial_record(trial: FrozenTrial) -> TrialRecord:
    """Read one Optuna trial following the study schema (tolerating missing attrs)."""
    attrs = trial.user_attrs
    status = _STATUS_OF_STATE.get(trial.state, trial.state.name.lower())
    if trial.state == TrialState.PRUNED and attrs.get(schema.STATUS) == INFEASIBLE:
        status = INFEASIBLE
    accuracy = None
    costs = None
    if trial.state == TrialState.COMPLETE and trial.values is not None and len(trial.values) >= 2:
        accuracy = _number(trial.values[0], float)
        found = [_number(v, float) for v in trial.values[1:]]
        costs = tuple(found) if None not in found else None
    macs = _number(attrs.get(schema.MACS), int)
    latency = attrs.get(schema.LATENCY)
    cv = _number(latency.get("cv"), float) if isinstance(latency, dict) else None
    host = latency.get("host") if isinstance(latency, dict) else None
    fail_reason = attrs.get(schema.FAIL_REASON)
    weights_dir = attrs.get(schema.WEIGHTS_DIR)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        status=status,
        spec=_spec_of(attrs),
        accuracy=accuracy,
        macs=macs,
        params=_number(attrs.get(schema.PARAMS), int),
        last_accuracy=_number(attrs.get(schema.LAST_ACCURACY), float),
        epochs_run=_number(attrs.get(schema.EPOCHS_RUN), int),
        accuracy_per_epoch=_floats(attrs.get(schema.ACCURACY_PER_EPOCH)),
        loss_per_epoch=_floats(attrs.get(schema.LOSS_PER_EPOCH)),
        seconds=_number(attrs.get(schema.SECONDS), float),
        images_per_second=_number(attrs.get(schema.IMAGES_PER_SECOND), float),
        peak_memory_bytes=_number(attrs.get(schema.PEAK_MEMORY_BYTES), int),
        stage=attrs.get(schema.STAGE) if isinstance(attrs.get(schema.STAGE), str) else None,
        fail_reason=str(fail_reason) if fail_reason is not None else None,
        weights_dir=str(weights_dir) if weights_dir is not None else None,
        latency_ms=_number(attrs.get(schema.LATENCY_MS), float),
        latency_cv=cv,
        latency_host=str(host) if isinstance(host, str) else None,
        costs=costs,  # type: ignore[arg-type]
    )


def study_data(study: optuna.Study, storage_display: str) -> StudyData:
    """All records of ``study`` (read once; a running search may add trials afterwards)."""
    attrs = study.user_attrs
    config = attrs.get(schema.CONFIG) if isinstance(attrs.get(schema.CONFIG), dict) else {}
    trials = tuple(trial_record(t) for t in study.get_trials(deepcopy=False))
    version = attrs.get(schema.EFFNAS_VERSION)
    metric_names = tuple(study.metric_names or METRIC_NAMES)
    return StudyData(
        name=study.study_name,
        storage=storage_display,
        config=dict(config),
        version=str(version) if version is not None else None,
        trials=tuple(sorted(trials, key=lambda t: t.number)),
        metric_names=metric_names,
    )
