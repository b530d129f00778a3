"""`search macs` and `search space fit`: count a spec's MACs (and its training memory, from the
same plan: ``space.memory``), or fit phi to a budget."""

from __future__ import annotations

import json
from typing import Any

import click

from common.bounds import MAX_BATCH_SIZE
from common.errors import UserError
from search.cli.spec_options import spec_from_options, spec_options
from space import MacReport, count_spec, fit_phi, resolve
from space.memory import PRECISIONS, MemoryEstimate, estimate_memory

MIB = 1024**2


def format_table(report: MacReport) -> str:
    lines = [f"{'layer':<24}{'repeats':>8}  {'output':<16}{'MACs':>16}{'params':>14}"]
    for layer in report.layers:
        shape = "x".join(str(d) for d in layer.out_shape)
        lines.append(
            f"{layer.name:<24}{layer.repeats:>8}  {shape:<16}{layer.macs:>16,}{layer.params:>14,}"
        )
    lines.append(f"{'total':<24}{'':>8}  {'':<16}{report.macs:>16,}{report.params:>14,}")
    return "\n".join(lines)


def format_memory(estimate: MemoryEstimate, batch_size: int) -> str:
    return (
        f"memory: {estimate.bytes_at(batch_size) / MIB:.1f} MiB for training at batch "
        f"{batch_size} ({estimate.precision}): {estimate.fixed_bytes / MIB:.1f} MiB fixed + "
        f"{estimate.per_image_bytes / MIB:.2f} MiB per image"
    )


@click.command("macs")
@spec_options
@click.option(
    "--batch-size",
    type=int,
    default=256,
    show_default=True,
    help="Batch for the training-memory estimate.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32 (the CPU trainer) or bf16 (CUDA autocast).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def macs_command(batch_size: int, precision: str, as_json: bool, **options: Any) -> None:
    """Count the exact MACs and parameters of one architecture, and estimate its peak training
    memory (no model is built)."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UserError(
            f"--batch-size {batch_size} must be a positive integer of at most "
            f"{MAX_BATCH_SIZE}, e.g. 256"
        )
    spec = spec_from_options(options)
    plan = resolve(spec)
    report = count_spec(spec)
    estimate = estimate_memory(plan, precision)
    if as_json:
        memory = {"batch_size": batch_size, "bytes": estimate.bytes_at(batch_size)}
        click.echo(
            json.dumps(
                {
                    "spec": spec.canonical(),
                    "resolution": plan.resolution,
                    **report.to_dict(),
                    "memory": {**memory, **estimate.to_dict()},
                }
            )
        )
        return
    click.echo(f"spec: {spec.canonical()}  (id {spec.spec_id})")
    click.echo(f"input: 3x{plan.resolution}x{plan.resolution}")
    click.echo(format_table(report))
    click.echo(format_memory(estimate, batch_size))


@click.group("space")
def space_group() -> None:
    """Inspect the search space."""


@space_group.command("fit")
@click.option(
    "--budget-flops",
    "budget",
    type=float,
    required=True,
    help="MAC budget (the paper's 'FLOPs'), e.g. 2.6e9.",
)
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def fit_command(budget: float, as_json: bool, **options: Any) -> None:
    """Choose the largest phi whose counted MACs fit the budget."""
    fit = fit_phi(spec_from_options(options), budget)
    plan = resolve(fit.spec)
    spec = fit.spec
    record = {
        "spec": spec.canonical(),
        "phi": spec.phi,
        "nominal_phi": round(fit.nominal_phi, 4),
        "depth_multiplier": spec.alpha**spec.phi,
        "width_multiplier": spec.beta**spec.phi,
        "resolution_multiplier": spec.gamma**spec.phi,
        "blocks": plan.depth,
        "stem_channels": plan.stem.out_ch,
        "head_channels": plan.head.out_ch,
        "resolution": plan.resolution,
        "macs": fit.macs,
        "budget": fit.budget,
        "baseline_macs": fit.baseline_macs,
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(f"budget        {fit.budget:,} MACs")
    click.echo(f"baseline      {fit.baseline_macs:,} MACs at phi=0")
    click.echo(
        f"phi           {spec.phi:g} (nominal log2(budget/baseline) = {fit.nominal_phi:.3f})"
    )
    click.echo(f"depth   x{record['depth_multiplier']:.3f} -> {plan.depth} blocks")
    click.echo(
        f"width   x{record['width_multiplier']:.3f} -> stem {plan.stem.out_ch}, "
        f"head {plan.head.out_ch} channels"
    )
    click.echo(f"resol.  x{record['resolution_multiplier']:.3f} -> {plan.resolution} px")
    click.echo(f"MACs          {fit.macs:,} ({fit.macs / fit.budget:.1%} of budget)")
    click.echo(f"spec          {spec.canonical()}")
