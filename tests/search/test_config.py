"""`search run` option handling: defaults < preset < flags, and the space's precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import UserError
from search.cli.presets import load_preset, preset_names
from search.cli.run import build_config
from search.config import SearchConfig
from space.searchspace import SearchSpace


def test_quick_preset_is_a_tiny_cpu_search() -> None:
    assert "quick" in preset_names()
    preset = load_preset("quick")
    assert preset["dataset"] == "fashion-mnist" and preset["epochs"] == 1
    assert preset["trials"] == 4 and preset["subset"] == 2000 and preset["budget_flops"] == 1e8
    assert preset["val_fraction"] == 0.25  # 500 images validate: see quick.toml
    config = build_config({"preset": "quick"})
    assert config.budget_macs == 100_000_000
    assert config.space.pins == {"resolution": 32}
    assert config.space.expansion == (1, 2) and config.space.kernel == (3,)


def test_flags_override_the_preset_and_pins_override_the_space_file(tmp_path: Path) -> None:
    space = tmp_path / "space.toml"
    space.write_text('block = ["se", "condconv"]\nexpansion = [4, 6]\ntolerance = 0.2\n')
    config = build_config(
        {"preset": "quick", "trials": 9, "space_file": str(space), "expansion": 6, "seed": 5}
    )
    assert config.trials == 9 and config.epochs == 1 and config.seed == 5
    assert config.space.block == ("se", "condconv")  # the file replaced the preset's blocks
    assert config.space.expansion == (6,)  # the flag pinned it
    assert config.space.tolerance == 0.2 and config.space.pins == {"resolution": 32}


def test_b0_is_a_start_point_not_a_pin() -> None:
    config = build_config({"budget_flops": 3e8, "b0": True})
    assert config.b0 and not config.space.is_pinned("alpha")
    assert config.identity()["b0"] is True


def test_budget_is_required() -> None:
    import click

    with pytest.raises(click.UsageError, match="--budget-flops"):
        build_config({})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trials": 0}, "trials=0"),
        ({"concurrency": -1}, "concurrency=-1"),
        ({"strategy": "greedy"}, "unknown strategy 'greedy'"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"gpus_per_trial": 0.5, "device": "cpu"}, "--gpus-per-trial > 0 needs"),
        ({"budget_macs": -5}, "not a positive number"),
        ({"budget_params": 0}, "budget_params=0 is out of range"),
        ({"objectives": ("accuracy", "speed")}, "unknown --objectives 'accuracy,speed'; choose"),
        ({"objectives": ("macs", "accuracy")}, "accuracy,macs | accuracy,latency | accuracy,"),
        ({"latency_device": "npu"}, "choose --latency-device from {cpu, cuda}"),
        ({"latency_batch": 0}, "latency_batch=0 is out of range"),
        ({"latency_backend": "tvm"}, "choose --latency-backend from {torch, onnxruntime}"),
        ({"latency_budget_ms": 0}, "pass --latency-budget-ms as a number in (0, 3.6e+06]"),
        ({"latency_resource": " "}, "--latency-resource ' ' must name a Ray custom resource"),
        ({"budget_params": 1e11}, "pass --budget-params as a number in [1, 1e+10]"),
        ({"budget_params": float("nan")}, "budget_params=nan is not a finite number"),
    ],
)
def test_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(UserError) as caught:
        SearchConfig(**{"budget_macs": 3e8, **changes})
    assert message in str(caught.value)


def test_identity_ignores_operational_settings() -> None:
    base = SearchConfig(budget_macs=3e8, space=SearchSpace(), device="cpu")
    other = SearchConfig(budget_macs=3e8, trials=50, concurrency=4, device="cpu")
    assert base.identity() == other.identity()
    # what trains is part of it: a CUDA trial runs in bf16, a CPU one in float32; and the data
    assert base.identity() != SearchConfig(budget_macs=3e8, device="cuda").identity()
    assert base.identity()["device"] == "cpu" and base.identity()["data_dir"] is None
    assert SearchConfig(budget_macs=3e8, data_dir="~/x").identity()["data_dir"] == str(
        Path("~/x").expanduser().resolve()
    )
    assert base.identity() != SearchConfig(budget_macs=3e8, epochs=9).identity()
    limited = SearchConfig(budget_macs=3e8, budget_params=5e6)
    assert limited.budget_params == 5_000_000 and limited.identity()["budget_params"] == 5_000_000
    assert base.identity()["budget_params"] is None  # as in studies written before the flag
    # objectives and latency settings join the identity only when used, so older studies resume
    assert "objectives" not in base.identity() and "latency" not in base.identity()
    timed = SearchConfig(budget_macs=3e8, objectives=("accuracy", "latency"), latency_batch=4)
    assert timed.uses_latency and timed.identity()["objectives"] == ["accuracy", "latency"]
    assert timed.identity()["latency"] == {
        "device": "cpu",
        "batch": 4,
        "backend": "torch",
        "threads": 1,
        "warmup": 5,
        "repeats": 20,
        "budget_ms": None,
        "resource": None,
    }
    capped = SearchConfig(budget_macs=3e8, latency_budget_ms=2.5)
    assert capped.uses_latency and "objectives" not in capped.identity()
    assert capped.identity()["latency"]["budget_ms"] == 2.5
    flags = build_config({"budget_flops": 3e8, "objectives": "accuracy, macs,latency"})
    assert flags.objectives == ("accuracy", "macs", "latency")


def test_the_space_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--space`` goes through the CLI's checked reader only; the space parses its text."""
    space = tmp_path / "space.toml"
    space.write_text("expansion = [4, 6]\n")

    def no_second_read(*args: object, **kwargs: object) -> str:
        raise AssertionError("the --space file was read a second time")

    monkeypatch.setattr(Path, "read_text", no_second_read)
    config = build_config({"budget_flops": 3e8, "space_file": str(space)})
    assert config.space.expansion == (4, 6)
