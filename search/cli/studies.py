"""`search studies` and `search best`: read a study database (never create one).

`search best --final` shows the truth next to the proxy: the front of the study's final
trainings (companion study ``S:final``, test split) with each network's proxy accuracy and the
line that says whether the short trials ranked the networks as full training does
(``reports.finals``).
"""

from __future__ import annotations

import json

import click
import optuna

from reports.final_stats import unordered_pairs
from reports.finals import FinalData, agreement_record, final_data, final_rows, no_final_message
from search.driver.progress import summary_table
from search.study import schema
from search.study.database import (
    DEFAULT_STORAGE,
    check_database,
    open_storage,
    reading,
    study_names,
)
from search.study.front import pareto_front
from search.study.schema import COMPLETE, Counts, status_of
from search.study.urls import mask_url


@click.command("studies")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help="SQLAlchemy URL.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per study.")
def studies_command(storage: str, as_json: bool) -> None:
    """List the studies in a database with their trial counts per state."""
    check_database(storage, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = reading(open_storage(storage))
    rows = []
    for name in study_names(backend):
        study = optuna.load_study(study_name=name, storage=backend)
        trials = study.get_trials(deepcopy=False)
        counts = Counts.of(trials)
        best = [t.values[0] for t in trials if t.values and status_of(t) == COMPLETE]
        rows.append(
            {
                "study": name,
                "trials": len(trials),
                **{k: getattr(counts, k) for k in counts.__dataclass_fields__},
                "best_accuracy": max(best) if best else None,
            }
        )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo(f"no studies in {mask_url(storage)}")
        return
    header = f"{'study':<24}{'trials':>7}{'complete':>9}{'pruned':>7}{'infeas.':>8}"
    click.echo(f"{header}{'failed':>7}{'running':>8}{'waiting':>8}{'best acc':>9}")
    for row in rows:
        best = "-" if row["best_accuracy"] is None else f"{row['best_accuracy']:.4f}"
        click.echo(
            f"{row['study']:<24}{row['trials']:>7}{row['complete']:>9}{row['pruned']:>7}"
            f"{row['infeasible']:>8}{row['failed'] + row['interrupted']:>7}{row['running']:>8}"
            f"{row['waiting']:>8}{best:>9}"
        )


@click.command("best")
@click.option("--study", required=True, help="Study name.")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help="SQLAlchemy URL.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of the Pareto trials.")
@click.option(
    "--final",
    "final",
    is_flag=True,
    help="The front of the final trainings (`search final`): which figure chose it (the finals' "
    "validation split, else the proxy), the test scores with their standard errors, the pairs "
    "the test split cannot order, and whether the proxy ranks the networks as full training does.",
)
def best_command(study: str, storage: str, as_json: bool, final: bool) -> None:
    """Print the Pareto-optimal COMPLETE trials in the study's own objectives (accuracy up; MACs
    and/or latency down, as `search run --objectives` chose) with their specs."""
    from common.errors import UserError

    check_database(storage, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = open_storage(storage)
    try:
        loaded = optuna.load_study(study_name=study, storage=reading(backend))
    except KeyError as exc:
        shown = mask_url(storage)
        raise UserError(
            f"no study {study!r} in {shown}; list them with `search studies --storage {shown}`"
        ) from exc
    if final:
        _print_final(study, final_data(loaded, backend), as_json)
        return
    trials = loaded.get_trials(deepcopy=False)
    front = pareto_front(trials)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "number": t.number,
                        "accuracy": t.values[0],
                        "macs": t.user_attrs.get(schema.MACS),
                        "latency_ms": t.user_attrs.get(schema.LATENCY_MS),
                        "params": t.user_attrs.get(schema.PARAMS),
                        "stage": t.user_attrs.get(schema.STAGE),
                        "spec": t.user_attrs.get(schema.SPEC),
                        "spec_json": t.user_attrs.get(schema.SPEC_JSON),
                        "spec_id": t.user_attrs.get(schema.SPEC_ID),
                    }
                    for t in front
                ]
            )
        )
        return
    if not front:
        click.echo(f"study {study!r} has no complete trials yet")
        return
    click.echo(summary_table(front, limit=len(front)))


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_final(study: str, data: FinalData | None, as_json: bool) -> None:
    """`search best --final`: the final front, which figure chose it and which measures it, the
    test scores with their standard errors, the pairs the test split cannot order and the
    agreement line (or how to get them)."""
    if data is None:
        click.echo(no_final_message(study))
        return
    front = final_rows(data, front_only=True)
    shown = [n.score for n in data.final_front if n.score is not None]
    unordered = unordered_pairs(shown)
    if as_json:
        record = {
            "study": data.source_study,
            "final_study": data.name,
            "objectives": list(data.objectives),
            "front": front,
            "final_best": data.best.number if data.best is not None else None,
            "agreement": agreement_record(data),
            "front_unordered": [u.message for u in unordered],
        }
        click.echo(json.dumps(record, allow_nan=False))
        return
    click.echo(
        f"final front of study {study} ({data.name}; objectives {', '.join(data.objectives)}): "
        f"{len(data.final_front)} of {len(data.measured)} retrained networks"
    )
    click.echo(f"chosen by: {data.chooser}")
    click.echo(f"measured by: {data.measure}")
    latency = "latency" in data.objectives
    ms_head = f"  {'ms':>7}" if latency else ""
    click.echo(
        f"{'trial':>6}  {'MACs':>14}{ms_head}  {'proxy acc':>9}  {'val acc':>7}  "
        f"{'test acc ± SE':>15}  {'std':>6}  reps  spec"
    )
    for row in front:
        test = _accuracy(row["test_mean"])
        if row["test_se"] is not None:
            test += f" ± {row['test_se']:.4f}"
        macs = "-" if row["macs"] is None else f"{row['macs']:,}"
        ms = ""
        if latency:
            ms = "  " + (f"{row['latency_ms']:>7.3g}" if row["latency_ms"] is not None else " " * 7)
        std = "-" if row["test_std"] is None else f"{row['test_std']:.4f}"
        click.echo(
            f"{row['trial']:>6}  {macs:>14}{ms}  {_accuracy(row['proxy_accuracy']):>9}  "
            f"{_accuracy(row['val_mean']):>7}  {test:>15}  {std:>6}  {row['repeats']:>4}  "
            f"{row['spec'] or '-'}"
        )
    best = data.best
    if best is not None and best.mean is not None:
        click.echo(
            f"final best (chosen by {data.chosen_by}): trial {best.number}, test "
            f"{best.mean:.4f} ± {best.test_se or 0.0:.4f}"
        )
    for pair in unordered:
        click.echo(pair.message)
    click.echo(data.agreement.message)
