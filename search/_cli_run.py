"""`search run`, `search studies` and `search best`: the search commands (issue 6).

Option values combine as: SearchConfig defaults < ``--preset`` < flags; the search space as:
the full space of docs/design.md < the preset's ``[space]`` < ``--space FILE`` < pin flags
(``--block se --experts 4 ...``).
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click
import optuna

from search._options import given_spec_values, spec_options
from search.config import DEFAULT_STORAGE, SearchConfig
from search.ledger import Counts, pareto_front, status_of
from search.presets import PRESET_KEYS, load_preset
from search.progress import summary_table
from search.storage import check_database, mask_url, open_storage, scrub, url_secrets
from search.userfiles import read_text_file
from space.searchspace import SearchSpace, load_space_file

# what a preset may set, less the two keys read separately, plus the flag a preset cannot set
_RUN_KEYS = (
    *(key for key in PRESET_KEYS if key not in ("budget_flops", "space")),
    "ray_address",
)


@click.command("run")
@click.option("--budget-flops", "budget_flops", type=float, help="MAC budget, e.g. 3e8.")
@click.option("--preset", default=None, help="Named preset (e.g. quick) or a .toml file.")
@click.option("--dataset", default=None, help="fashion-mnist | cifar10 | cifar100 | folder.")
@click.option("--data-dir", "data_dir", default=None, help="Directory of the data set.")
@click.option("--trials", type=int, default=None, help="Trials in total for the study.")
@click.option("--epochs", type=int, default=None, help="Training epochs per trial.")
@click.option("--subset", type=int, default=None, help="Training images used (all if unset).")
@click.option("--study", default=None, help="Study name (same name + storage = resume).")
@click.option("--storage", default=None, help=f"SQLAlchemy URL [default: {DEFAULT_STORAGE}].")
@click.option("--concurrency", type=int, default=None, help="Trials running at once.")
@click.option("--gpus-per-trial", "gpus_per_trial", type=float, default=None, help="e.g. 0.25.")
@click.option("--device", default=None, help="auto | cpu | cuda.")
@click.option("--seed", type=int, default=None, help="Search seed (per-trial seeds derive).")
@click.option("--space", "space_file", default=None, help="TOML/JSON file of pins and ranges.")
@click.option("--strategy", default=None, help="joint | two-stage.")
@click.option("--ray-address", "ray_address", default=None, help="Join a running Ray cluster.")
@click.option("--batch-size", "batch_size", type=int, default=None, help="Training batch size.")
@click.option("--val-fraction", "val_fraction", type=float, default=None, help="e.g. 0.1.")
@click.option("--weights-dir", "weights_dir", default=None, help="Save each trial's weights.")
@click.option(
    "--trial-timeout", "trial_timeout", type=float, default=None, help="Stop a trial after S s."
)
@spec_options
def run_command(**options: Any) -> None:
    """Search architectures and compound scaling under a MAC budget (Ray Tune + Optuna)."""
    from search.run import run_search

    config = build_config(options)
    _hide_password_from_ray(config.storage)
    try:
        summary = run_search(config)
    except KeyboardInterrupt:
        _print_resume(config)
        raise
    click.echo(summary.table, err=True)
    counts = summary.counts
    click.echo(
        f"study {summary.study!r}: {counts.done}/{config.trials} trials done "
        f"({counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed, "
        f"{counts.infeasible} infeasible); Pareto trials {list(summary.pareto)}",
        err=True,
    )
    if summary.note:
        click.echo(f"note: {summary.note}", err=True)
    if summary.interrupted:
        _print_resume(config)
        sys.exit(130)
    click.echo(dashboard_line(summary.storage), err=True)


def dashboard_line(storage: str) -> str:
    """The closing hint; the password, if the URL has one, is masked (``search.storage``)."""
    shown = mask_url(storage)
    note = " (password masked: give it through PGPASSWORD or ~/.pgpass)" if shown != storage else ""
    return f"dashboard: optuna-dashboard {shlex.quote(shown)}{note}"


def resume_line(storage: str, argv: list[str]) -> str:
    """The Ctrl-C hint: this command line with every storage password masked."""
    command = shlex.join(["search", *(scrub(arg, [storage]) for arg in argv)])
    return f"interrupted; resume with: {command}"


def _print_resume(config: SearchConfig) -> None:
    click.echo(resume_line(config.storage, sys.argv[1:]), err=True)


def _hide_password_from_ray(storage: str) -> None:
    """Ray records the driver's command line (psutil's cmdline, not ``sys.argv``) as the job's
    entrypoint, which `ray list jobs` and the dashboard show to everyone on a cluster; when the
    storage URL has a password, give Ray the masked command line instead."""
    if not url_secrets(storage):
        return
    import ray._private.utils as ray_utils

    if hasattr(ray_utils, "get_entrypoint_name"):
        entrypoint = scrub(ray_utils.get_entrypoint_name(), [storage])
        ray_utils.get_entrypoint_name = lambda: entrypoint


def build_config(options: dict[str, Any]) -> SearchConfig:
    """Defaults < preset < flags; space: full < preset [space] < --space file < pin flags.

    A flag given as 0 is a value, never "unset": only ``None`` falls back to the preset.
    """
    preset_name = options.get("preset")
    preset = load_preset(preset_name) if preset_name is not None else {}
    values: dict[str, Any] = {k: preset[k] for k in _RUN_KEYS if k in preset}
    values.update({k: options[k] for k in _RUN_KEYS if options.get(k) is not None})
    budget = options.get("budget_flops")
    if budget is None:
        budget = preset.get("budget_flops")
    if budget is None:
        raise click.UsageError("Missing option '--budget-flops' (e.g. --budget-flops 3e8)")
    space_values: dict[str, Any] = dict(preset.get("space", {}))
    source = f"--preset {preset_name}" if preset_name is not None else "the space"
    space_file = options.get("space_file")
    if space_file is not None:
        read_text_file(space_file, "--space")  # binary, directory, not UTF-8: one line
        space_values.update(load_space_file(space_file))
        source = f"--space {space_file}"
    pins = given_spec_values({**options, "b0": False})
    space_values.update({k: v for k, v in pins.items() if v is not None})
    if pins:
        source += " and the pin flags"
    space = SearchSpace.from_mapping(space_values, source)
    return SearchConfig(budget_macs=budget, space=space, b0=bool(options.get("b0")), **values)


@click.command("studies")
@click.option("--storage", default=DEFAULT_STORAGE, show_default=True, help="SQLAlchemy URL.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per study.")
def studies_command(storage: str, as_json: bool) -> None:
    """List the studies in a database with their trial counts per state."""
    check_database(storage, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = open_storage(storage)
    rows = []
    for summary in optuna.get_all_study_summaries(backend, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=backend)
        trials = study.get_trials(deepcopy=False)
        counts = Counts.of(trials)
        best = [t.values[0] for t in trials if t.values and status_of(t) == "complete"]
        rows.append(
            {
                "study": summary.study_name,
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
def best_command(study: str, storage: str, as_json: bool) -> None:
    """Print the Pareto-optimal COMPLETE trials (max accuracy, min MACs) with their specs."""
    from space import UserError

    check_database(storage, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(storage))
    except KeyError as exc:
        shown = mask_url(storage)
        raise UserError(
            f"no study {study!r} in {shown}; list them with `search studies --storage {shown}`"
        ) from exc
    trials = loaded.get_trials(deepcopy=False)
    front = pareto_front(trials)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "number": t.number,
                        "accuracy": t.values[0],
                        "macs": int(t.values[1]),
                        "params": t.user_attrs.get("params"),
                        "stage": t.user_attrs.get("stage"),
                        "spec": t.user_attrs.get("spec"),
                        "spec_json": t.user_attrs.get("spec_json"),
                        "spec_id": t.user_attrs.get("spec_id"),
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


COMMANDS = [run_command, studies_command, best_command]
