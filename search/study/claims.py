"""Claims on networks: the no-repeat rule kept by the database when several drivers search.

The planner refuses a candidate that builds a network a trial of the study trained or is
training (``search.strategy.planner``, compared by resolved layout). Each driver checks that
against its view of the study, which shows another driver's new trial only once that driver has
written its start: two drivers deciding at the same moment could both pick one new network. A
claim closes that gap the way a lease claims a trial: before a candidate trains, its driver
inserts (study, network) into the table ``effnas_networks`` (created on first use beside
Optuna's tables, primary key (study_id, network)), which only one insert can do. A network
whose claimant no longer trains it (the trial failed, e.g. interrupted, or was infeasible after
all) is taken over with a conditional update (compare and swap on the claimant), so a replay of
an interrupted trial trains its network again, once.

The table holds one short row per trained network; readers of the study (reports, the
dashboard) never see it.
"""

from __future__ import annotations

import hashlib

import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import TrialState

from search.study.schema import INFEASIBLE, STATUS

TABLE = "effnas_networks"
_METADATA = sqlalchemy.MetaData()
CLAIMS = sqlalchemy.Table(
    TABLE,
    _METADATA,
    sqlalchemy.Column("study_id", sqlalchemy.Integer, primary_key=True),
    sqlalchemy.Column("network", sqlalchemy.String(64), primary_key=True),
    sqlalchemy.Column("trial_id", sqlalchemy.Integer, nullable=False),
)


def network_key(layout: object) -> str:
    """A network's key: a digest of its resolved layout (``space.plan`` ``NetworkPlan.layout``)."""
    return hashlib.blake2b(repr(layout).encode(), digest_size=16).hexdigest()


class Claims:
    """The claims of one database (the table is created on first use)."""

    def __init__(self, storage: RDBStorage) -> None:
        self.engine = storage.engine
        self._ready = False

    def claim(self, study_id: int, network: str, trial_id: int) -> int | None:
        """Claim ``network`` for ``trial_id``: None when it is now ours, else the trial id of
        the claimant that still trains (or trained) it."""
        self._create()
        with self.engine.begin() as connection:
            if self._insert(connection, study_id, network, trial_id):
                return None
            holder = connection.execute(
                sqlalchemy.select(CLAIMS.c.trial_id).where(
                    CLAIMS.c.study_id == study_id, CLAIMS.c.network == network
                )
            ).scalar_one()
            if holder == trial_id or _trains(connection, holder):
                return None if holder == trial_id else holder
            taken = connection.execute(
                sqlalchemy.update(CLAIMS)
                .where(
                    CLAIMS.c.study_id == study_id,
                    CLAIMS.c.network == network,
                    CLAIMS.c.trial_id == holder,
                )
                .values(trial_id=trial_id)
            )
            return None if taken.rowcount == 1 else holder

    def _insert(
        self, connection: sqlalchemy.Connection, study_id: int, network: str, trial_id: int
    ) -> bool:
        row = {"study_id": study_id, "network": network, "trial_id": trial_id}
        if self.engine.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.engine.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # elsewhere: the primary key refuses a second insert
            try:
                with connection.begin_nested():
                    connection.execute(sqlalchemy.insert(CLAIMS).values(row))
                return True
            except sqlalchemy.exc.IntegrityError:
                return False
        done = connection.execute(insert(CLAIMS).values(row).on_conflict_do_nothing())
        return done.rowcount == 1

    def _create(self) -> None:
        if not self._ready:
            _METADATA.create_all(self.engine, checkfirst=True)
            self._ready = True


def _trains(connection: sqlalchemy.Connection, trial_id: int) -> bool:
    """Whether the trial trains or trained its network: RUNNING, or COMPLETE / PRUNED and not
    infeasible; an unknown trial (its driver's creation not committed yet) counts as training."""
    trials = models.TrialModel.__table__
    attrs = models.TrialUserAttributeModel.__table__
    state = connection.execute(
        sqlalchemy.select(trials.c.state).where(trials.c.trial_id == trial_id)
    ).scalar_one_or_none()
    if state is None or state == TrialState.RUNNING:
        return True
    if state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return False
    status = connection.execute(
        sqlalchemy.select(attrs.c.value_json).where(
            attrs.c.trial_id == trial_id, attrs.c.key == STATUS
        )
    ).scalar_one_or_none()
    return status != f'"{INFEASIBLE}"'
