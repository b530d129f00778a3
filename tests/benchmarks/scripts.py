"""Load or run a script of ``benchmarks/`` the way its tests need it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def script(name: str) -> Path:
    return ROOT / "benchmarks" / f"{name}.py"


def load(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (registered first: dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, script(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_json(name: str, argv: list[str], timeout: float = 300) -> dict[str, Any]:
    """Run ``benchmarks/<name>.py argv`` in a fresh interpreter from the repository root; the
    JSON object on its last line of stdout."""
    done = subprocess.run(
        [sys.executable, str(script(name)), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
