"""A study's trials read in six plain queries: what Optuna's RDBStorage reads, without its ORM.

``RDBStorage._get_trials`` loads trials as SQLAlchemy ORM objects with five eager-loaded
collections (params, values, user attrs, system attrs, intermediate values) and then builds a
``FrozenTrial`` from each: on this project's studies (about thirty attrs per trial) that is
roughly 4 ms per trial on a 2-core machine, 40 s for a 10,000-trial study, paid by every
`search report`, `best` and `studies` and by a driver resuming such a study. :func:`read_trials`
selects the same rows with SQLAlchemy Core (one query per table, rows as tuples) and builds the
same ``FrozenTrial`` objects with the same conversions (Optuna's own ``stored_repr_to_*`` and
``json_to_distribution``, datetimes from naive UTC to naive local time as Optuna's models do); a
test compares the two field by field on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import sqlalchemy
from optuna import distributions
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial

CHUNK = 500  # trial ids per IN list (SQLite's default limit of bound variables is larger)


def read_trials(
    storage: RDBStorage, study_id: int, trial_ids: Collection[int] | None = None
) -> list[FrozenTrial]:
    """The study's trials, or those among ``trial_ids``, in trial-id order."""
    tables = models.BaseModel.metadata.tables
    trials = tables["trials"]
    with storage.engine.connect() as connection:
        if trial_ids is None:
            selected = sqlalchemy.select(trials.c.trial_id).where(trials.c.study_id == study_id)
            found = _read(connection, tables, [trials.c.study_id == study_id], selected)
        else:
            found = {}
            ids = sorted(trial_ids)
            for chunk in (ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)):
                found.update(_read(connection, tables, [trials.c.trial_id.in_(chunk)], chunk))
    return [found[trial_id] for trial_id in sorted(found)]


def _read(
    connection: sqlalchemy.Connection,
    tables: Any,
    where: list[Any],
    ids: Any,
) -> dict[int, FrozenTrial]:
    trials = tables["trials"]
    rows = connection.execute(
        sqlalchemy.select(
            trials.c.trial_id,
            trials.c.number,
            trials.c.state,
            trials.c.datetime_start,
            trials.c.datetime_complete,
        ).where(*where)
    ).all()
    if not rows:
        return {}
    children = {name: defaultdict(list) for name in ("params", "values", "user", "system", "steps")}
    for name, table, columns, order in (
        ("params", "trial_params", ("param_name", "param_value", "distribution_json"), "param_id"),
        ("values", "trial_values", ("objective", "value", "value_type"), None),
        ("user", "trial_user_attributes", ("key", "value_json"), None),
        ("system", "trial_system_attributes", ("key", "value_json"), None),
        (
            "steps",
            "trial_intermediate_values",
            ("step", "intermediate_value", "intermediate_value_type"),
            None,
        ),
    ):
        child = tables[table]
        query = sqlalchemy.select(child.c.trial_id, *(child.c[c] for c in columns)).where(
            child.c.trial_id.in_(ids)
        )
        if order is not None:
            query = query.order_by(child.c[order])
        for row in connection.execute(query):
            children[name][row[0]].append(row[1:])
    return {row[0]: _frozen(row, *(children[n][row[0]] for n in children)) for row in rows}


def _frozen(
    row: Any,
    params: list[tuple[Any, ...]],
    values: list[tuple[Any, ...]],
    user: list[tuple[Any, ...]],
    system: list[tuple[Any, ...]],
    steps: list[tuple[Any, ...]],
) -> FrozenTrial:
    """``RDBStorage._build_frozen_trial_from_trial_model`` on plain rows."""
    trial_id, number, state, started, completed = row
    objectives: list[float] | None = None
    if values:
        objectives = [0.0] * len(values)
        for objective, value, kind in values:
            objectives[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    kept = {name: (value, _distribution(text)) for name, value, text in params}
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=objectives,
        datetime_start=_local(started),
        datetime_complete=_local(completed),
        params={name: dist.to_external_repr(value) for name, (value, dist) in kept.items()},
        distributions={name: dist for name, (_, dist) in kept.items()},
        user_attrs={key: json.loads(text) for key, text in user},
        system_attrs={key: json.loads(text) for key, text in system},
        intermediate_values={
            step: models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(v, kind)
            for step, v, kind in steps
        },
        trial_id=trial_id,
    )


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> distributions.BaseDistribution:
    """A parsed distribution; a study has a handful, repeated on every trial (treat as frozen)."""
    return distributions.json_to_distribution(text)


def _local(moment: datetime | None) -> datetime | None:
    """Optuna's models store naive UTC and hand out naive local time."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)
