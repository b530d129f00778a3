"""A study padded with thousands of finished trials of this search, made in seconds.

How the driver's cost grows with a study's size is measured on studies of 100, 1,000 and 10,000
trials (``benchmarks/scale.py``), and those must hold what a long search leaves behind: trials
with this search's params, attrs, statuses and curves, as many pruned and infeasible ones as
MO-ASHA and the no-repeat rule make. :func:`padding_trials` makes them with the search's own
machinery (planner, searcher, MO-ASHA over each rung's latest 1,000 points on the simulated
clock, ``search.driver.simulated``) on a throw-away in-memory study, sampling at random (what
TPE would propose costs the same to store; random sampling costs nothing to draw), so nothing
is written to a database trial by trial; :func:`pad` then adds them to a study in one
transaction (numbered after the study's own). :func:`rung_points` reads back what MO-ASHA's
rungs would hold after such a search, so a scheduler of a resumed run can start from it. For
benchmarks and tests only; `search run` never pads.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy
from optuna import distributions
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial

from search.config import SearchConfig
from search.driver.executor import Resources, Work
from search.driver.searcher import StudySearcher
from search.driver.simulated import SimulatedExecutor
from search.strategy.planner import Planner
from search.strategy.scheduler import ParetoASHA, make_scheduler
from search.strategy.seeding import TrialSeededSampler
from search.study import schema
from search.study.schema import cost_values, directions_for
from search.worker.curves import CurveSource
from search.worker.trial import TrialSettings


def padding_trials(
    config: SearchConfig,
    classes: int,
    count: int,
    source: CurveSource,
    seed: int = 0,
    concurrency: int = 8,
) -> list[FrozenTrial]:
    """``count`` trained trials of the search ``config`` describes (plus the infeasible
    candidates met on the way), finished, in the order they were made."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
    study = optuna.create_study(directions=directions_for(config.objectives), sampler=sampler)
    study.set_metric_names(list(config.objectives))
    config = dataclasses.replace(config, trials=count, concurrency=concurrency)
    searcher = StudySearcher(study, Planner(config, classes))
    settings = TrialSettings(
        epochs=config.epochs, batch_size=config.batch_size, device="cpu", threads=1
    )
    no_data = None  # simulated trials read no images
    resources = Resources("cpu", 1, 0.0, 0)
    work = Work(config, searcher, no_data, no_data, settings, resources, count)  # type: ignore[arg-type]
    SimulatedExecutor(source, concurrency=concurrency, scheduler=_RecentASHA).run(work)
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


class _RecentASHA(ParetoASHA):
    """MO-ASHA over each rung's latest ``KEEP`` points: padding needs MO-ASHA's mix of stopped
    and finished trials, not its exact decisions, and a rung of all 10,000 would cost a
    10,000-point ranking per trial."""

    KEEP = 1000

    def __init__(self, epochs: int) -> None:
        template = make_scheduler(epochs)
        super().__init__(template.max_t, 1, template.reduction_factor)

    def _decide(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> str:
        for rung in self.rungs.values():
            for old in list(rung)[: max(0, len(rung) - self.KEEP)]:
                del rung[old]
        return super()._decide(trial_id, config, result)


def pad(storage: RDBStorage, study_id: int, trials: list[FrozenTrial]) -> None:
    """Add finished ``trials`` to the study ``study_id``, numbered after its own, in one
    transaction: what Optuna's ``Study.add_trials`` writes (its rows, through its models), with
    one insert per table instead of one transaction per trial (10,000 trials in seconds, not
    minutes). Optuna reads them back as it reads its own (a test checks it)."""
    tables = models.BaseModel.metadata.tables
    with _create_scoped_session(storage.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        first = session.query(models.TrialModel).filter_by(study_id=study_id).count()
        rows = [
            {
                "number": first + index,
                "study_id": study_id,
                "state": trial.state,
                "datetime_start": _utc(trial.datetime_start),
                "datetime_complete": _utc(trial.datetime_complete),
            }
            for index, trial in enumerate(trials)
        ]
        insert = sqlalchemy.insert(tables["trials"]).returning(
            tables["trials"].c.trial_id, sort_by_parameter_order=True
        )
        ids = [row[0] for row in session.execute(insert, rows)]
        children: dict[str, list[dict[str, Any]]] = {
            "trial_params": [],
            "trial_values": [],
            "trial_user_attributes": [],
            "trial_system_attributes": [],
            "trial_intermediate_values": [],
        }
        for trial_id, trial in zip(ids, trials, strict=True):
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                children["trial_params"].append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": distribution.to_internal_repr(value),
                        "distribution_json": distributions.distribution_to_json(distribution),
                    }
                )
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                children["trial_values"].append(
                    {
                        "trial_id": trial_id,
                        "objective": objective,
                        "value": stored,
                        "value_type": kind,
                    }
                )
            for table, attrs in (
                ("trial_user_attributes", trial.user_attrs),
                ("trial_system_attributes", trial.system_attrs),
            ):
                children[table] += [
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                    for k, v in attrs.items()
                ]
            for step, value in trial.intermediate_values.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(
                    value
                )
                children["trial_intermediate_values"].append(
                    {
                        "trial_id": trial_id,
                        "step": step,
                        "intermediate_value": stored,
                        "intermediate_value_type": kind,
                    }
                )
        for table, table_rows in children.items():
            if table_rows:
                session.execute(sqlalchemy.insert(tables[table]), table_rows)


def _utc(moment: datetime | None) -> datetime | None:
    """A naive local time as Optuna's models store it: naive UTC."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def rung_points(
    trials: list[FrozenTrial], scheduler: ParetoASHA, objectives: tuple[str, ...]
) -> ParetoASHA:
    """``scheduler`` with its rungs holding what the trained ``trials`` recorded there: the
    accuracy each reached at the rung's epoch, with its costs (as a long search's MO-ASHA
    would hold them), keyed by a name no live trial has."""
    for trial in trials:
        curve = trial.user_attrs.get(schema.ACCURACY_PER_EPOCH) or []
        costs = cost_values(trial.user_attrs, objectives)
        if costs is None or trial.user_attrs.get(schema.STATUS) == schema.INFEASIBLE:
            continue
        for milestone in scheduler.milestones:
            if len(curve) >= milestone:
                scheduler.rungs[milestone][f"padded-{trial.number}"] = (
                    float(curve[milestone - 1]),
                    *costs,
                )
    return scheduler
