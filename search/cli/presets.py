"""Named run presets (``search run --preset quick``): TOML files shipped in ``search/cli/presets/``.

A preset holds `search run` option values (``budget_flops = 3e8``, ``epochs = 1``, ...) and an
optional ``[space]`` table in the ``--space`` file format; ``search.cli.run.build_config`` layers
it between the defaults and the flags. A path to a ``.toml`` file works as a preset too.

Every value is type-checked here, so ``budget_flops = "lots"``, ``epochs = 1.5`` or
``trials = true`` is one line naming the key and the preset; the ranges are then checked by
``SearchConfig`` like those of the flags, and ``[space]`` by ``SearchSpace.from_mapping``.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from typing import Any

from common.errors import UserError
from search.cli.userfiles import read_text_file

# key -> (accepted kind, example); "number" accepts TOML integers and floats, never booleans
PRESET_TYPES: dict[str, tuple[str, str]] = {
    "budget_flops": ("number", "budget_flops = 3e8"),
    "dataset": ("string", 'dataset = "fashion-mnist"'),
    "data_dir": ("string", 'data_dir = "/data/cifar10"'),
    "trials": ("integer", "trials = 20"),
    "epochs": ("integer", "epochs = 5"),
    "subset": ("integer", "subset = 1000"),
    "study": ("string", 'study = "quick"'),
    "storage": ("string", 'storage = "sqlite:///search.db"'),
    "concurrency": ("integer", "concurrency = 2"),
    "gpus_per_trial": ("number", "gpus_per_trial = 0.25"),
    "device": ("string", 'device = "cpu"'),
    "seed": ("integer", "seed = 0"),
    "strategy": ("string", 'strategy = "joint"'),
    "batch_size": ("integer", "batch_size = 64"),
    "val_fraction": ("number", "val_fraction = 0.1"),
    "weights_dir": ("string", 'weights_dir = "weights"'),
    "trial_timeout": ("number", "trial_timeout = 600"),
    "space": ("table", '[space] with block = ["se"] and similar pins'),
}
PRESET_KEYS: tuple[str, ...] = tuple(PRESET_TYPES)
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def preset_names() -> list[str]:
    folder = resources.files("search.cli") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """The preset's values; UserError for unknown names, bad files, bad TOML, keys or types."""
    if name.endswith(".toml") or "/" in name:
        text = read_text_file(name, "--preset")
    else:
        resource = resources.files("search.cli") / "presets" / f"{name}.toml"
        if not _NAME.fullmatch(name) or not resource.is_file():
            raise UserError(
                f"unknown --preset {name!r}; choose from {preset_names()} or pass a .toml file"
            )
        text = resource.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--preset {name!r} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise UserError(
            f"unknown key(s) {unknown} in --preset {name!r}; known keys are {list(PRESET_KEYS)}"
        )
    for key, value in data.items():
        kind, example = PRESET_TYPES[key]
        if not _is_kind(value, kind):
            raise UserError(
                f"{key} = {value!r} in --preset {name!r} must be a TOML {kind}, e.g. {example}"
            )
    return data


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, dict)
