"""`search run`: layer defaults, preset and flags into one ``SearchConfig``, then search.

``build_config`` is the one place where the layers meet; its docstring states the rule.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from search.cli.presets import PRESET_KEYS, load_preset
from search.cli.spec_options import given_spec_values, spec_options
from search.cli.userfiles import read_text_file
from search.config import SearchConfig
from search.study.database import DEFAULT_STORAGE
from search.study.urls import mask_url, scrub, url_secrets
from space.searchspace import SearchSpace, parse_space_text

# what a preset may set, less the two keys read separately, plus the flags a preset cannot set
_RUN_KEYS = (
    *(key for key in PRESET_KEYS if key not in ("budget_flops", "space")),
    "ray_address",
    "budget_params",
    "latency_device",
    "latency_batch",
    "latency_backend",
    "latency_budget_ms",
    "latency_resource",
)


@click.command("run")
@click.option("--budget-flops", "budget_flops", type=float, help="MAC budget, e.g. 3e8.")
@click.option(
    "--budget-params",
    "budget_params",
    type=float,
    default=None,
    help="Parameter budget, e.g. 5e6 (refused before training, like the MAC budget).",
)
@click.option(
    "--objectives",
    default=None,
    help="accuracy,macs (default) | accuracy,latency | accuracy,macs,latency.",
)
@click.option("--latency-device", "latency_device", default=None, help="cpu (default) | cuda.")
@click.option(
    "--latency-batch", "latency_batch", type=int, default=None, help="Timed batch [default: 1]."
)
@click.option(
    "--latency-backend", "latency_backend", default=None, help="torch (default) | onnxruntime."
)
@click.option(
    "--latency-budget-ms",
    "latency_budget_ms",
    type=float,
    default=None,
    help="Measured latency cap in ms (refused before training).",
)
@click.option(
    "--latency-resource",
    "latency_resource",
    default=None,
    help="Ray custom resource of the node that times candidates [default: this machine].",
)
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
    from search.driver.run import run_search

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
    """The closing hint; the password, if the URL has one, is masked (``search.study.urls``)."""
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
    """The one place where `search run`'s option layers meet, lowest first:

    - option values: ``SearchConfig``'s field defaults < ``--preset`` < flags;
    - the search space: the full space of docs/design.md < the preset's ``[space]`` <
      ``--space FILE`` < pin flags (``--block se --experts 4 ...``).

    Every click option of `search run` defaults to ``None`` ("not given") and a preset holds only
    the keys it sets, so the defaults live in ``SearchConfig`` alone. A flag given as 0 is a
    value, never "unset": only ``None`` falls back to the preset, then to the default.
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
        text = read_text_file(space_file, "--space")  # binary, directory, not UTF-8: one line
        space_values.update(parse_space_text(text, space_file))
        source = f"--space {space_file}"
    pins = given_spec_values({**options, "b0": False})
    space_values.update({k: v for k, v in pins.items() if v is not None})
    if pins:
        source += " and the pin flags"
    space = SearchSpace.from_mapping(space_values, source)
    if options.get("objectives") is not None:
        values["objectives"] = tuple(name.strip() for name in options["objectives"].split(","))
    return SearchConfig(budget_macs=budget, space=space, b0=bool(options.get("b0")), **values)
