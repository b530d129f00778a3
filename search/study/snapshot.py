"""The driver's view of its study: one read and one write per decision, whatever the study's size.

A search decides something (start a trial, store an epoch, finish a trial) one to three times a
second with 32 trials at once, and every part of a decision reads the study: the trial count
towards ``--trials``, the planner's stage and its no-repeat rule, the sampler (Optuna's TPE reads
the trials once per parameter group with ``constant_liar``), the progress line. Optuna's own
cache (``optuna.storages._CachedStorage``) keeps finished trials but still asks the database for
the new and unfinished ones on *every* read, about ten per candidate, and writes every attribute
and parameter in a transaction of its own, about forty commits per trial (each an fsync on
SQLite). :class:`SnapshotStorage` wraps the same ``RDBStorage`` and changes two things:

- **Reads.** Finished trials never change, so they are read once and kept (Optuna's rule); new
  and unfinished trials are read again at most once per :meth:`SnapshotStorage.decision`: the
  first read of a decision refreshes, every later read of it is answered from memory. What this
  driver writes is applied to its cached trials as it writes it, so a decision always sees its own
  writes; what other drivers wrote appears at the next decision (their trials are claimed through
  the database, never through the snapshot: a waiting trial is taken with a conditional update,
  and a stale one is recovered by changing its state, which fails once another driver finished
  it). Outside a decision every read refreshes, as Optuna's cache does.
- **Writes.** Inside a decision, a trial's parameters and attributes are kept and written
  together in one transaction when the decision ends, or with the trial's next state change
  (attrs first, then the state, in the same transaction: a told trial never lacks its attrs).

Readers that want only what changed (counts, indexes of finished trials) use
:meth:`SnapshotStorage.finished_trials`, an append-only log of finished trials in the order this
process first saw them finished, and :meth:`SnapshotStorage.unfinished_trials`
(``search.study.feed``). Everything else (studies, heartbeats) goes straight to the backend.

Optuna offers no batched writes, so :meth:`_write` writes a trial's rows in one of
``RDBStorage``'s sessions itself: its parameters in one insert and its attrs in one upsert per
table, with Optuna's checks (a finished trial is not updatable, a parameter keeps its first
distribution) and Optuna's helpers for values and intermediate values; tests read the result
back through Optuna.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import functools
import json
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna import distributions
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.study._frozen import FrozenStudy
from optuna.study._study_direction import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from common.clock import DECISIONS
from search.study.reader import read_trials
from search.study.schema import SPEC

UNFINISHED = frozenset((TrialState.RUNNING, TrialState.WAITING))

# one pending write: ("param", name, internal value, distribution), ("user", key, value),
# ("system", key, value) or ("step", step, intermediate value)
Write = tuple[Any, ...]


@dataclass
class _Study:
    """One study's cached trials."""

    by_number: dict[int, FrozenTrial] = field(default_factory=dict)
    by_id: dict[int, FrozenTrial] = field(default_factory=dict)
    numbers: list[int] = field(default_factory=list)  # sorted
    unfinished: dict[int, FrozenTrial] = field(default_factory=dict)  # trial id -> trial
    finished: list[FrozenTrial] = field(default_factory=list)  # append-only
    max_read_id: int = -1  # the highest trial id a refresh returned
    distributions: dict[str, distributions.BaseDistribution] = field(default_factory=dict)
    filtered: dict[frozenset[TrialState] | None, list[FrozenTrial]] = field(default_factory=dict)
    generation: int = 0  # bumped whenever a trial is added, replaced or changes state

    def changed(self) -> None:
        self.filtered.clear()
        self.generation += 1

    directions: list[StudyDirection] | None = None
    name: str | None = None
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "user"/"system" -> attrs


class SnapshotStorage(BaseStorage, BaseHeartbeat):
    """``RDBStorage`` with one refresh and one write per decision (see the module docstring)."""

    def __init__(self, backend: RDBStorage) -> None:
        self.backend = backend
        self._studies: dict[int, _Study] = {}
        self._study_of: dict[int, int] = {}  # trial id -> study id
        self._pending: dict[int, list[Write]] = {}  # trial id -> writes not yet in the database
        self._lost: set[int] = set()  # trials whose pending writes another process overtook
        self._fresh: set[int] = set()  # studies whose trials were read in the current decision
        self._fresh_attrs: set[tuple[str, int]] = set()  # (kind, study id) read in it
        self._depth = 0
        self._lock = threading.RLock()
        self.reads = 0  # refreshes that queried the database (benchmarks, tests)
        self.writes = 0  # transactions

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ----- decisions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def decision(self) -> Iterator[None]:
        """One decision: at most one refresh per study, the writes kept until its end (nested
        decisions join the outer one). A write error at the end is raised from here."""
        with self._lock:
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._fresh.clear()
                    self._fresh_attrs.clear()
                    self._flush_all()

    def _flush_all(self) -> None:
        """Write every trial's pending writes, one transaction per trial (a trial another driver
        finished meanwhile must not cost the others their writes); the first error is raised."""
        error: BaseException | None = None
        for trial_id in list(self._lost):
            try:
                self._raise_if_lost(trial_id)
            except UpdateFinishedTrialError as exc:
                error = error or exc
        for trial_id in list(self._pending):
            writes = self._pending.pop(trial_id)
            try:
                self._write(trial_id, writes)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    # ----- reads -------------------------------------------------------------------------------
    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        with self._lock:
            study = self._fresh_study(study_id)
            key = None if states is None else frozenset(s for s in TrialState if s in states)
            if key is not None and key <= UNFINISHED:
                trials = sorted(
                    (t for t in study.unfinished.values() if t.state in key),
                    key=lambda t: t.number,
                )
            else:
                if key not in study.filtered:
                    ordered = [study.by_number[n] for n in study.numbers]
                    study.filtered[key] = (
                        ordered if key is None else [t for t in ordered if t.state in key]
                    )
                trials = list(study.filtered[key])
        return copy.deepcopy(trials) if deepcopy else trials

    def finished_trials(self, study_id: int) -> list[FrozenTrial]:
        """Every finished trial, in the order this process first saw it finished; append-only, so
        a reader keeps its position and reads only what was added (do not modify it)."""
        with self._lock:
            return self._fresh_study(study_id).finished

    def generation(self, study_id: int) -> int:
        """A number that changes whenever the trials :meth:`get_all_trials` returns change
        membership or state (their params and attrs change in place): lists built from them
        may be kept until it changes. Refreshes like a read."""
        with self._lock:
            return self._fresh_study(study_id).generation

    def unfinished_trials(self, study_id: int) -> list[FrozenTrial]:
        """The RUNNING and WAITING trials, by number (do not modify them)."""
        with self._lock:
            study = self._fresh_study(study_id)
            return sorted(study.unfinished.values(), key=lambda t: t.number)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            self._raise_if_lost(trial_id)
            cached = self._cached(trial_id)
            if cached is not None and cached.state.is_finished():
                return cached
            if cached is not None and self._depth:  # the decision's snapshot
                self._fresh_study(self._study_of[trial_id])
                self._raise_if_lost(trial_id)
                return copy.deepcopy(self._cached(trial_id))
            with DECISIONS.part("read"):
                trial = self.backend.get_trial(trial_id)
            if trial_id in self._study_of:
                self._store(self._studies[self._study_of[trial_id]], trial)
                trial = self._cached(trial_id) or trial
            return copy.deepcopy(trial)

    def _raise_if_lost(self, trial_id: int) -> None:
        """Raise what Optuna raises at a write to a finished trial, for writes this process kept
        for a trial that another one finished before they were written (once)."""
        if trial_id in self._lost:
            self._lost.discard(trial_id)
            number = self._cached(trial_id).number if self._cached(trial_id) else trial_id
            raise UpdateFinishedTrialError(
                f"Trial#{number} has already finished and can not be updated."
            )

    def _cached(self, trial_id: int) -> FrozenTrial | None:
        study_id = self._study_of.get(trial_id)
        if study_id is None:
            return None
        return self._studies[study_id].by_id.get(trial_id)

    def _fresh_study(self, study_id: int) -> _Study:
        study = self._studies.setdefault(study_id, _Study())
        if study_id not in self._fresh:
            self._refresh(study_id, study)
            if self._depth:
                self._fresh.add(study_id)
        return study

    def _refresh(self, study_id: int, study: _Study) -> None:
        """Bring the unfinished and new trials up to date: one light query for their states,
        then a full read of only those that changed (see :func:`_stale`), in plain queries
        (``search.study.reader``)."""
        with DECISIONS.part("read"):
            self._read(study_id, study)

    def _read(self, study_id: int, study: _Study) -> None:
        self.reads += 1
        trials = models.TrialModel.__table__
        query = sqlalchemy.select(trials.c.trial_id, trials.c.state).where(
            trials.c.study_id == study_id
        )
        if study.max_read_id >= 0:
            known = sqlalchemy.or_(
                trials.c.trial_id > study.max_read_id, trials.c.trial_id.in_(study.unfinished)
            )
            query = query.where(known)
        with self.backend.engine.connect() as connection:
            rows = connection.execute(query).all()
        changed = {trial_id for trial_id, state in rows if _stale(self._cached(trial_id), state)}
        if changed:
            first = study.max_read_id < 0  # the whole study: by study, not by a list of ids
            for trial in read_trials(self.backend, study_id, None if first else changed):
                self._study_of[trial._trial_id] = study_id
                self._store(study, trial)
        for trial_id, _ in rows:
            study.max_read_id = max(study.max_read_id, trial_id)

    def _store(self, study: _Study, trial: FrozenTrial) -> None:
        """Put a trial read from the database into the cache (with this driver's pending writes
        applied on top); a trial already finished here is never replaced."""
        known = study.by_number.get(trial.number)
        if known is not None and known.state.is_finished():
            return
        if trial.state.is_finished() and trial._trial_id in self._pending:
            # finished by another driver (its lease had expired) before our writes reached it
            del self._pending[trial._trial_id]
            self._lost.add(trial._trial_id)
        for write in self._pending.get(trial._trial_id, ()):
            _apply(trial, write)
        if known is None:
            bisect.insort(study.numbers, trial.number)
        study.by_number[trial.number] = trial
        study.by_id[trial._trial_id] = trial
        study.changed()
        if trial.state.is_finished():
            study.unfinished.pop(trial._trial_id, None)
            study.finished.append(trial)
        else:
            study.unfinished[trial._trial_id] = trial

    # ----- trial writes --------------------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        with self._lock, DECISIONS.part("write"):
            trial = self.backend._create_new_trial(study_id, template_trial)
            self.writes += 1
            self._study_of[trial._trial_id] = study_id
            self._store(self._studies.setdefault(study_id, _Study()), trial)
            return trial._trial_id

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
    ) -> None:
        with self._lock:
            known = self._distributions(trial_id).get(param_name)
            if known is not None:
                distributions.check_distribution_compatibility(known, distribution)
            self._put(trial_id, ("param", param_name, param_value_internal, distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._put(trial_id, ("user", key, _as_stored(value)))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._put(trial_id, ("system", key, _as_stored(value)))

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Several user attrs at once (one transaction outside a decision)."""
        self._put(trial_id, *(("user", key, _as_stored(value)) for key, value in attrs.items()))

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        self._put(trial_id, ("step", step, intermediate_value))

    def _distributions(self, trial_id: int) -> dict[str, distributions.BaseDistribution]:
        """The parameter distributions this process has written to the study of ``trial_id``
        (Optuna's cache keeps them too: a later write is checked against them, not the database)."""
        study_id = self._study_of.get(trial_id)
        return self._studies[study_id].distributions if study_id is not None else {}

    def _put(self, trial_id: int, *writes: Write) -> None:
        """Apply writes to the cached trial now; to the database now, or at the decision's end."""
        with self._lock:
            self._raise_if_lost(trial_id)
            cached = self._cached(trial_id)
            if cached is not None:
                if cached.state.is_finished():
                    raise UpdateFinishedTrialError(
                        f"Trial#{cached.number} has already finished and can not be updated."
                    )
                for write in writes:
                    _apply(cached, write)
            if self._depth:
                self._pending.setdefault(trial_id, []).extend(writes)
            else:
                self._write(trial_id, list(writes))

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._lock:
            self._raise_if_lost(trial_id)
            writes = self._pending.pop(trial_id, [])
            if state == TrialState.RUNNING:  # taking a waiting trial: Optuna's conditional update
                if writes:
                    self._write(trial_id, writes)
                with DECISIONS.part("write"):
                    taken = self.backend.set_trial_state_values(trial_id, state, values)
                self.writes += 1
                if taken:
                    self._mark(trial_id, state, values)
                else:  # another driver took it: read it again
                    self._fresh.discard(self._study_of.get(trial_id, -1))
                return taken
            self._write(trial_id, writes, state, values)
            self._mark(trial_id, state, values)
            return True

    def _mark(self, trial_id: int, state: TrialState, values: Sequence[float] | None) -> None:
        cached = self._cached(trial_id)
        if cached is None:
            return
        study = self._studies[self._study_of[trial_id]]
        cached.state = state
        if values is not None:
            cached.values = [float(v) for v in values]
        now = datetime.now()
        if state == TrialState.RUNNING:
            cached.datetime_start = now
        study.changed()
        if state.is_finished():
            cached.datetime_complete = now
            study.unfinished.pop(trial_id, None)
            study.finished.append(cached)

    def _write(
        self,
        trial_id: int,
        writes: list[Write],
        state: TrialState | None = None,
        values: Sequence[float] | None = None,
    ) -> None:
        """One transaction: the trial's writes, then its new state and values (Optuna's rules:
        a finished trial is not updatable; values only with a state)."""
        if not writes and state is None:
            return
        try:
            with DECISIONS.part("write"):
                self._transaction(trial_id, writes, state, values)
        except Exception:
            # the cached trial holds writes that did not happen: read it again
            self._fresh.discard(self._study_of.get(trial_id, -1))
            raise

    def _transaction(
        self,
        trial_id: int,
        writes: list[Write],
        state: TrialState | None,
        values: Sequence[float] | None,
    ) -> None:
        backend = self.backend
        checked = self._distributions(trial_id)
        writes = _last_per_key(writes)
        self.writes += 1
        with _create_scoped_session(backend.scoped_session) as session:
            model = models.TrialModel.find_or_raise_by_id(
                trial_id, session, for_update=state is not None
            )
            backend.check_trial_is_updatable(trial_id, model.state)
            params = [w for w in writes if w[0] == "param"]
            for _, name, _, distribution in params:
                if name not in checked:  # Optuna's check against the study's first use
                    _check_distribution(session, model.study_id, name, distribution)
            if params:
                session.execute(
                    sqlalchemy.insert(models.TrialParamModel),
                    [
                        {
                            "trial_id": trial_id,
                            "param_name": name,
                            "param_value": internal,
                            "distribution_json": distributions.distribution_to_json(dist),
                        }
                        for _, name, internal, dist in params
                    ],
                )
            for kind, table in (
                ("user", models.TrialUserAttributeModel),
                ("system", models.TrialSystemAttributeModel),
            ):
                attrs = [(w[1], w[2]) for w in writes if w[0] == kind]
                if attrs:
                    _upsert(backend, session, table, trial_id, attrs)
            for write in writes:
                if write[0] == "step":
                    backend._set_trial_intermediate_value_without_commit(
                        session, trial_id, write[1], write[2]
                    )
            if state is not None:
                for objective, value in enumerate(values or ()):
                    backend._set_trial_value_without_commit(session, model, objective, value)
                model.state = state
                if state.is_finished():
                    model.datetime_complete = datetime.now()
        for _, name, _, distribution in params:
            checked.setdefault(name, distribution)

    # ----- studies and everything else: the backend's ----------------------------------------
    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        study_id = self.backend.create_new_study(directions, study_name)
        with self._lock:
            study = self._studies.setdefault(study_id, _Study())
            study.directions, study.name = list(directions), study_name
        return study_id

    def delete_study(self, study_id: int) -> None:
        with self._lock:
            self._studies.pop(study_id, None)
        self.backend.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_user_attr(study_id, key, value)
        self._study_attrs(study_id, "user", fresh=False)[key] = _as_stored(value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_system_attr(study_id, key, value)
        self._study_attrs(study_id, "system", fresh=False)[key] = _as_stored(value)

    def _study_attrs(self, study_id: int, kind: str, fresh: bool = True) -> dict[str, Any]:
        """The study's user or system attrs, read at most once per decision (``fresh``) and
        kept up to date with this process's own writes."""
        with self._lock:
            study = self._studies.setdefault(study_id, _Study())
            if (fresh and (kind, study_id) not in self._fresh_attrs) or kind not in study.attrs:
                read = (
                    self.backend.get_study_user_attrs
                    if kind == "user"
                    else self.backend.get_study_system_attrs
                )
                with DECISIONS.part("read"):
                    study.attrs[kind] = read(study_id)
                if self._depth:
                    self._fresh_attrs.add((kind, study_id))
            return study.attrs[kind]

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        study = self._studies.setdefault(study_id, _Study())
        if study.name is None:
            study.name = self.backend.get_study_name_from_id(study_id)
        return study.name

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        study = self._studies.setdefault(study_id, _Study())
        if study.directions is None:
            study.directions = self.backend.get_study_directions(study_id)
        return study.directions

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return dict(self._study_attrs(study_id, "user"))

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return dict(self._study_attrs(study_id, "system"))

    def get_all_studies(self) -> list[FrozenStudy]:
        return self.backend.get_all_studies()

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        with self._lock:
            trial = self._studies.get(study_id, _Study()).by_number.get(trial_number)
        if trial is not None:
            return trial._trial_id
        return self.backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def record_heartbeat(self, trial_id: int) -> None:
        self.backend.record_heartbeat(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.backend._get_stale_trial_ids(study_id)

    def get_heartbeat_interval(self) -> int | None:
        return self.backend.get_heartbeat_interval()

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.backend.get_heartbeat_stale_trial_callback()

    def remove_session(self) -> None:
        self.backend.remove_session()


def decision(study: optuna.Study) -> contextlib.AbstractContextManager[Any]:
    """``study``'s storage's decision when it is a :class:`SnapshotStorage`, else nothing."""
    storage = study._storage
    return storage.decision() if isinstance(storage, SnapshotStorage) else contextlib.nullcontext()


def generation(study: optuna.Study) -> int | None:
    """``study``'s :meth:`SnapshotStorage.generation`, or None on another storage."""
    storage = study._storage
    return storage.generation(study._study_id) if isinstance(storage, SnapshotStorage) else None


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """Set several user attrs of a live trial: one write where the storage can batch them."""
    storage = trial.storage
    if isinstance(storage, SnapshotStorage):
        storage.set_trial_user_attrs(trial._trial_id, attrs)
        trial._cached_frozen_trial.user_attrs.update(attrs)  # as Trial.set_user_attr keeps them
        return
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _stale(cached: FrozenTrial | None, state: TrialState) -> bool:
    """Whether a trial the light query returned must be read in full: it is new here, its state
    changed, or it is running and its driver has not yet written its start (the spec attr, in
    the same transaction as its params and the sampler's system attrs: everything another
    driver's decisions read of a live trial). A waiting trial was written whole when it was
    queued; a live trial's later attrs (its curve so far) are read with its next state change."""
    if cached is None or cached.state != state:
        return True
    return state == TrialState.RUNNING and SPEC not in cached.user_attrs


def _check_distribution(
    session: Any, study_id: int, name: str, distribution: distributions.BaseDistribution
) -> None:
    """Optuna's rule: a parameter keeps the distribution of its first use in the study."""
    previous = (
        session.query(models.TrialParamModel.distribution_json)
        .join(models.TrialModel)
        .filter(models.TrialModel.study_id == study_id)
        .filter(models.TrialParamModel.param_name == name)
        .first()
    )
    if previous is not None:
        distributions.check_distribution_compatibility(
            distributions.json_to_distribution(previous[0]), distribution
        )


def _upsert(
    backend: RDBStorage,
    session: Any,
    table: type[models.TrialUserAttributeModel | models.TrialSystemAttributeModel],
    trial_id: int,
    attrs: list[tuple[str, Any]],
) -> None:
    """Insert or replace attrs of one trial: one statement, executed for all of them (SQLite and
    PostgreSQL; Optuna's row-by-row helper elsewhere)."""
    statement = _upsert_statement(backend.engine.name, table)
    if statement is None:
        for key, value in attrs:
            backend._set_trial_attr_without_commit(session, table, trial_id, key, value)
        return
    rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs]
    session.execute(statement, rows)


@functools.cache
def _upsert_statement(dialect: str, table: type[Any]) -> Any:
    """``INSERT ... ON CONFLICT (trial_id, key) DO UPDATE``, built once per dialect and table
    (SQLAlchemy then compiles it once)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return None
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.trial_id, table.key],
        set_={"value_json": statement.excluded.value_json},
    )


def _as_stored(value: Any) -> Any:
    """The value as the database gives it back (JSON: tuples become lists, and so on), so a
    decision reads its own writes exactly as a later run would read them."""
    return json.loads(json.dumps(value))


def _apply(trial: FrozenTrial, write: Write) -> None:
    kind = write[0]
    if kind == "param":
        _, name, internal, distribution = write
        trial.params[name] = distribution.to_external_repr(internal)
        trial.distributions[name] = distribution
    elif kind == "user":
        trial.user_attrs[write[1]] = write[2]
    elif kind == "system":
        trial.system_attrs[write[1]] = write[2]
    else:
        trial.intermediate_values[write[1]] = write[2]


def _last_per_key(writes: list[Write]) -> list[Write]:
    """The writes with only the last of each attr or step kept (params are written once)."""
    last: dict[tuple[Any, ...], Write] = {}
    for write in writes:
        last[(write[0], write[1])] = write
    return list(last.values())
