"""Named run presets (``search run --preset quick``): TOML files shipped in ``search/presets/``.

A preset holds `search run` option values (``budget_flops = 3e8``, ``epochs = 1``, ...) and an
optional ``[space]`` table in the ``--space`` file format; flags given on the command line
override it. A path to a ``.toml`` file works as a preset too.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from space import UserError

PRESET_KEYS: tuple[str, ...] = (
    "budget_flops",
    "dataset",
    "data_dir",
    "trials",
    "epochs",
    "subset",
    "study",
    "storage",
    "concurrency",
    "gpus_per_trial",
    "device",
    "seed",
    "strategy",
    "batch_size",
    "val_fraction",
    "weights_dir",
    "space",
)


def preset_names() -> list[str]:
    folder = resources.files("search") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """The preset's values; UserError for unknown names, bad TOML or unknown keys."""
    if name.endswith(".toml"):
        path = Path(name).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"cannot read --preset file {name!r}: {exc.strerror}") from exc
    else:
        resource = resources.files("search") / "presets" / f"{name}.toml"
        if not resource.is_file():
            raise UserError(f"unknown --preset {name!r}; choose from {preset_names()}")
        text = resource.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--preset {name!r} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise UserError(
            f"unknown key(s) {unknown} in --preset {name!r}; known keys are {list(PRESET_KEYS)}"
        )
    space = data.get("space", {})
    if not isinstance(space, dict):
        raise UserError(f"[space] in --preset {name!r} must be a table of pins")
    return data
