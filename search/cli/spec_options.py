"""Architecture options shared by every command that takes a spec (macs, space fit, train, run).

All options default to ``None`` ("not given"): ``spec_from_options`` fills the paper preset for
commands that need one spec, and ``search run`` reads the given ones as pins of the search space.
Values are validated by :class:`space.ArchSpec`, so a bad value is one ``UserError`` line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from search.cli.userfiles import read_text_file
from space import EFFICIENTNET_B0, ArchSpec
from space.scaling import BASE_RESOLUTION

SPEC_FIELDS = tuple(field.name for field in dataclasses.fields(ArchSpec))

_OPTIONS = [
    click.option("--block", default=None, help="Block type: standard | se | condconv."),
    click.option("--mid-conv", "mid_conv", default=None, help="Middle conv: depthwise | dense."),
    click.option("--expansion", type=int, default=None, help="Expansion ratio e (1, 2, 3, 4, 6)."),
    click.option("--se-ratio", "se_ratio", type=int, default=None, help="SE reduction ratio R."),
    click.option("--experts", type=int, default=None, help="CondConv expert count M."),
    click.option("--kernel", type=int, default=None, help="Middle conv kernel size (3 or 5)."),
    click.option("--alpha", type=float, default=None, help="Depth coefficient (>= 1)."),
    click.option("--beta", type=float, default=None, help="Width coefficient (>= 1)."),
    click.option("--gamma", type=float, default=None, help="Resolution coefficient (>= 1)."),
    click.option("--phi", type=float, default=None, help="Compound coefficient phi (>= 0)."),
    click.option("--resolution", type=int, default=None, help="Pin the input resolution (px)."),
    click.option(
        "--base-resolution",
        "base_resolution",
        type=int,
        default=None,
        help="Input resolution at phi = 0, scaled by gamma**phi (px; default 56).",
    ),
    click.option("--classes", type=int, default=None, help="Number of classes."),
    click.option(
        "--b0",
        is_flag=True,
        default=False,
        help="Start from EfficientNet-B0's alpha=1.2, beta=1.1, gamma=1.15.",
    ),
    click.option(
        "--spec",
        "spec_file",
        type=click.Path(path_type=Path),
        default=None,
        help="Read the spec from a JSON file (e.g. from `search export`); flags override.",
    ),
]


def spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def given_spec_values(options: dict[str, Any]) -> dict[str, Any]:
    """The spec fields the user set (spec file, then --b0, then explicit flags)."""
    values: dict[str, Any] = {}
    spec_file = options.get("spec_file")
    if spec_file is not None:
        spec = ArchSpec.from_json(read_text_file(spec_file, "--spec"))  # nesting bounded there
        # None = "not applicable" (se_ratio/experts of a block without them) or "auto"; the
        # default base resolution is not a pin either (a file written before it existed has none)
        values.update({k: v for k, v in spec.to_dict().items() if v is not None})
        if values.get("base_resolution") == BASE_RESOLUTION:
            del values["base_resolution"]
    if options.get("b0"):
        values.update(EFFICIENTNET_B0)
    values.update({k: options[k] for k in SPEC_FIELDS if options.get(k) is not None})
    return values


def spec_from_options(options: dict[str, Any], **overrides: Any) -> ArchSpec:
    """One spec: the paper preset, updated with what the user gave and then ``overrides``."""
    return ArchSpec.from_dict({**given_spec_values(options), **overrides})
