"""The search space: pins and ranges validated, conditional sampling, the compound constraint."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from common.errors import UserError
from space import ArchSpec, count_spec
from space.searchspace import SearchSpace, load_space_file, product_violation


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'space.db'}", sampler=optuna.samplers.RandomSampler(seed=1)
    )


@pytest.fixture
def memory_study() -> optuna.Study:
    """For the tests that draw hundreds of samples (the sampling, not the storage, is tested)."""
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))


def test_defaults_are_design_section_5() -> None:
    space = SearchSpace()
    assert space.block == ("standard", "se", "condconv")
    assert space.expansion == (1, 2, 3, 4, 6)
    assert space.se_ratio == (2, 4, 8, 16) and space.experts == (2, 4, 8)
    assert space.mid_conv == ("depthwise", "dense") and space.kernel == (3, 5)
    assert space.alpha == space.beta == space.gamma == (1.0, 2.0)
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
        ({"alpha": [1.5, 2.0], "beta": [1.3, 1.4]}, "no coefficients with alpha in [1.5, 2]"),
        ({"alpha": 1.2, "beta": 1.1, "gamma": [1.0, 1.1]}, "product ranges over [1.45, 1.76]"),
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
    # the coefficients come from two unit variables; alpha/beta/gamma themselves are not params
    params = set().union(*seen.values())
    assert {"alpha_q", "beta_q"} <= params and not params & {"alpha", "beta", "gamma"}


@pytest.mark.parametrize(
    "ranges",
    [
        {},
        {"alpha": [1.1, 1.5], "beta": [1.05, 1.3], "gamma": [1.0, 1.2]},
        {"alpha": [1.0, 1.25], "gamma": [1.2, 1.4]},
    ],
)
def test_every_sample_meets_the_constraint_even_at_tolerance_0(
    memory_study: optuna.Study, ranges: dict
) -> None:
    study = memory_study
    space = SearchSpace.from_mapping({**ranges, "tolerance": 0})
    coefficients = []
    for _ in range(200):
        trial = study.ask()
        sample = space.sample(trial)
        values = sample.values
        assert sample.violation is None
        product = values["alpha"] * values["beta"] ** 2 * values["gamma"] ** 2
        assert abs(product / 2 - 1) < 1e-5  # exact up to the 6 stored decimals
        for name in ("alpha", "beta", "gamma"):
            low, high = getattr(space, name)
            assert low - 1e-6 <= values[name] <= high + 1e-6
        assert ArchSpec.from_dict(values).canonical()  # a valid spec
        coefficients.append((values["alpha"], values["beta"], values["gamma"]))
        study.tell(trial, 0.0)
    # all distinct, and each coefficient spread over its feasible interval, not one corner
    assert len(set(coefficients)) == len(coefficients)
    assert all(
        max(c[i] for c in coefficients) - min(c[i] for c in coefficients) > 0.1 for i in (0, 1, 2)
    )


def test_default_space_is_uniform_on_the_simplex(memory_study: optuna.Study) -> None:
    study = memory_study
    # shares a = log2 alpha, b = 2 log2 beta, c = 2 log2 gamma are uniform on a + b + c = 1,
    # so each has mean 1/3 (a share drawn uniformly and the rest derived would be skewed)
    space = SearchSpace()
    shares = []
    for _ in range(400):
        trial = study.ask()
        v = space.sample(trial).values
        shares.append((math.log2(v["alpha"]), 2 * math.log2(v["beta"]), 2 * math.log2(v["gamma"])))
        study.tell(trial, 0.0)
    for index in range(3):
        mean = sum(s[index] for s in shares) / len(shares)
        assert abs(mean - 1 / 3) < 0.04
    assert max(s[2] for s in shares) > 0.8 and max(s[0] for s in shares) > 0.8


def test_partly_pinned_coefficients(study: optuna.Study) -> None:
    # alpha pinned: one unit variable moves along the segment beta/gamma
    space = SearchSpace.from_mapping({"alpha": 1.2, "tolerance": 0})
    trial = study.ask()
    values = space.sample(trial).values
    assert set(trial.params) >= {"beta_q"} and "alpha_q" not in trial.params
    assert values["alpha"] == 1.2
    assert abs(1.2 * values["beta"] ** 2 * values["gamma"] ** 2 / 2 - 1) < 1e-5


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
    assert sample.values["gamma"] == round(math.sqrt(2 / (1.2 * 1.1**2)), 6)
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
    with pytest.raises(UserError, match="--b0's coefficients are outside the tolerance"):
        SearchSpace.from_mapping({"tolerance": 0.01}).start_point()


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
    assert product_violation(2.0, 1.0, 1.0, 0.0) is None  # exactly 2 passes at tolerance 0


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
