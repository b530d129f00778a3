"""The search space: pins and ranges validated, conditional sampling, the compound constraint."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from space import UserError, count_spec
from space.searchspace import SearchSpace, load_space_file, product_violation


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'space.db'}", sampler=optuna.samplers.RandomSampler(seed=1)
    )


def test_defaults_are_design_section_5() -> None:
    space = SearchSpace()
    assert space.block == ("standard", "se", "condconv")
    assert space.expansion == (1, 2, 3, 4, 6)
    assert space.se_ratio == (2, 4, 8, 16) and space.experts == (2, 4, 8)
    assert space.mid_conv == ("depthwise", "dense") and space.kernel == (3, 5)
    assert space.alpha == space.gamma == (1.0, 2.0)
    assert space.beta == (1.0, 1.4142)  # beta > sqrt(2) can never give gamma >= 1
    assert space.tolerance == 0.1


def test_lists_narrow_scalars_pin_and_order_is_canonical() -> None:
    space = SearchSpace.from_mapping(
        {
            "block": ["condconv", "se"],
            "expansion": [6, 4],
            "alpha": [1.0, 1.5],
            "se_ratio": 4,
            "gamma": 1.2,
            "tolerance": 0.05,
            "resolution": 32,
        }
    )
    assert space.block == ("se", "condconv") and space.expansion == (4, 6)
    assert space.alpha == (1.0, 1.5) and space.gamma == (1.2, 1.2)
    assert (
        space.is_pinned("se_ratio") and space.is_pinned("gamma") and space.is_pinned("resolution")
    )
    assert not space.is_pinned("alpha")
    assert space.to_dict()["resolution"] == 32 and space.to_dict()["tolerance"] == 0.05


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"blocks": ["se"]}, "unknown search-space key(s) ['blocks']"),
        ({"expansion": [4, 5]}, "expansion value(s) [5]"),
        ({"block": "mbconv"}, "block value(s) ['mbconv']"),
        ({"kernel": [7]}, "kernel value(s) [7]"),
        ({"alpha": [0.5, 1.5]}, "alpha range [0.5, 1.5]"),
        ({"beta": [1.5, 1.2]}, "beta range [1.5, 1.2]"),
        ({"gamma": "big"}, "gamma in the space must be a number"),
        ({"tolerance": 2}, "tolerance=2"),
        ({"block": []}, "empty list"),
        ({"alpha": 1.0, "beta": 1.0, "gamma": 1.0}, "violate the compound constraint"),
        ({"phi": -1}, "phi=-1"),
    ],
)
def test_bad_values_are_user_errors_naming_them(data: dict, message: str) -> None:
    with pytest.raises(UserError, match=None) as caught:
        SearchSpace.from_mapping(data)
    assert message in str(caught.value)


def test_conditional_params_only_when_they_matter(study: optuna.Study) -> None:
    space = SearchSpace()
    seen: dict[str, set[str]] = {}
    for _ in range(40):
        trial = study.ask()
        sample = space.sample(trial)
        seen.setdefault(sample.values["block"], set()).update(trial.params)
        study.tell(trial, 0.0)
    assert "se_ratio" not in seen["standard"] and "experts" not in seen["standard"]
    assert "se_ratio" in seen["se"] and "experts" not in seen["se"]
    assert {"se_ratio", "experts"} <= seen["condconv"]
    assert "gamma" not in set().union(*seen.values())  # derived, never sampled


def test_gamma_is_derived_from_alpha_and_beta(study: optuna.Study) -> None:
    space = SearchSpace()
    feasible = 0
    for _ in range(60):
        trial = study.ask()
        sample = space.sample(trial)
        values = sample.values
        product = values["alpha"] * values["beta"] ** 2 * values["gamma"] ** 2
        assert 1.0 <= values["gamma"] <= 2.0
        if sample.violation is None:
            feasible += 1
            assert abs(product / 2 - 1) <= 0.1 + 1e-9
        else:
            assert values["gamma"] == 1.0  # clipped: alpha * beta^2 alone exceeds 2 (1 + tol)
            assert product > 2.2
        study.tell(trial, 0.0)
    assert feasible > 10


def test_pins_are_not_sampled(study: optuna.Study) -> None:
    space = SearchSpace.from_mapping(
        {
            "block": "se",
            "expansion": 4,
            "se_ratio": 8,
            "mid_conv": "dense",
            "kernel": 5,
            "alpha": 1.2,
            "beta": 1.1,
        }
    )
    trial = study.ask()
    sample = space.sample(trial)
    assert trial.params == {}
    assert sample.values["gamma"] == round(math.sqrt(2 / (1.2 * 1.1**2)), 4)
    assert sample.violation is None


def test_start_point_is_efficientnet_b0(study: optuna.Study) -> None:
    params, attrs = SearchSpace().start_point()
    study.enqueue_trial(params, user_attrs=attrs)
    trial = study.ask()
    sample = SearchSpace().sample(trial, gamma_override=trial.user_attrs["start_gamma"])
    assert (sample.values["alpha"], sample.values["beta"], sample.values["gamma"]) == (
        1.2,
        1.1,
        1.15,
    )
    assert sample.violation is None  # 1.2 * 1.1^2 * 1.15^2 = 1.92, within 0.1 of 2
    with pytest.raises(UserError, match=r"--b0 starts at alpha=1\.2"):
        SearchSpace.from_mapping({"alpha": [1.5, 2.0]}).start_point()


def test_smallest_spec_is_the_cheapest_network() -> None:
    space = SearchSpace.from_mapping({"block": ["se", "condconv"], "expansion": [2, 6]})
    smallest = space.smallest_spec(classes=10)
    assert (smallest.block, smallest.expansion, smallest.se_ratio) == ("se", 2, 16)
    assert (smallest.mid_conv, smallest.kernel, smallest.phi) == ("depthwise", 3, 0.0)
    other = smallest.replace(block="condconv", experts=2)
    assert count_spec(smallest).macs < count_spec(other).macs


def test_product_violation_message() -> None:
    assert product_violation(1.2, 1.1, 1.15, 0.1) is None
    assert "not within 0.01 of 2" in (product_violation(1.2, 1.1, 1.15, 0.01) or "")


def test_space_files_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('block = ["se", "condconv"]\nalpha = [1.0, 1.5]\nse_ratio = 4\n')
    assert load_space_file(toml) == {
        "block": ["se", "condconv"],
        "alpha": [1.0, 1.5],
        "se_ratio": 4,
    }
    js = tmp_path / "s.json"
    js.write_text('{"expansion": [4, 6], "tolerance": 0.2}')
    assert SearchSpace.from_mapping(load_space_file(js)).expansion == (4, 6)
    bad = tmp_path / "bad.toml"
    bad.write_text("block = [")
    with pytest.raises(UserError, match="not valid TOML"):
        load_space_file(bad)
    with pytest.raises(UserError, match="cannot read --space file"):
        load_space_file(tmp_path / "missing.toml")
