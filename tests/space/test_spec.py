"""ArchSpec: validation, canonical string, JSON round trip, stable id."""

from __future__ import annotations

import pytest

from common.errors import UserError
from space import ArchSpec, resolve


def test_default_is_the_paper_preset() -> None:
    spec = ArchSpec()
    assert spec.canonical() == (
        "block=standard,e=4,mid=depthwise,k=3,a=1,b=1,g=1,phi=0,res=auto,classes=100"
    )


def test_fields_a_block_does_not_have_are_not_part_of_the_spec() -> None:
    # a standard block has no SE ratio and no experts, an se block no experts
    assert ArchSpec(se_ratio=8, experts=2) == ArchSpec()
    assert (ArchSpec().se_ratio, ArchSpec().experts) == (None, None)
    se = ArchSpec(block="se", se_ratio=8, experts=2)
    assert (se.se_ratio, se.experts) == (8, None)
    assert se.canonical().startswith("block=se,e=4,r=8,mid=")
    condconv = ArchSpec(block="condconv", experts=8)
    assert (condconv.se_ratio, condconv.experts) == (4, 8)  # the reference R where not given
    assert "r=4,m=8" in condconv.canonical()
    # re-pinning the block type fills or drops them
    assert se.replace(block="standard") == ArchSpec()
    assert ArchSpec().replace(block="condconv").canonical().startswith("block=condconv,e=4,r=4,m=4")
    # strings and JSON written before the change still read, and normalise
    old = "block=standard,e=2,r=4,m=4,mid=depthwise,k=3,a=1,b=1,g=1,phi=0,res=auto,classes=10"
    assert ArchSpec.parse(old) == ArchSpec(expansion=2, classes=10)
    assert ArchSpec.parse(old).canonical() == old.replace("r=4,m=4,", "")
    assert ArchSpec.from_dict({"block": "se", "se_ratio": 4, "experts": 4}).experts is None
    with pytest.raises(UserError, match="se_ratio=0"):
        ArchSpec(block="se", se_ratio=0)


def test_specs_that_build_the_same_network_share_an_id() -> None:
    # at phi = 0 the coefficients change nothing, and res=auto is 56 px
    b0 = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15)
    assert b0 != ArchSpec() and b0.spec_id == ArchSpec(resolution=56).spec_id
    assert b0.canonical() != ArchSpec().canonical()  # the spec keeps its scaling direction
    assert ArchSpec.parse(b0.canonical()) == b0
    # with a pinned resolution gamma changes nothing
    pinned = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15, phi=2.0, resolution=32)
    assert pinned.spec_id == pinned.replace(gamma=1.3).spec_id
    # ... but it does once the resolution follows gamma, and so do alpha and beta at phi > 0
    scaled = pinned.replace(resolution=None)
    assert scaled.spec_id != scaled.replace(gamma=1.3).spec_id
    assert scaled.spec_id != scaled.replace(alpha=1.3).spec_id
    assert ArchSpec(block="se").spec_id != ArchSpec(block="se", se_ratio=8).spec_id


@pytest.mark.parametrize(
    "spec",
    [
        ArchSpec(),
        ArchSpec(block="se", se_ratio=8, alpha=1.2, beta=1.1, gamma=1.15, phi=1.37),
        ArchSpec(
            block="condconv", experts=8, mid_conv="dense", kernel=5, resolution=40, classes=10
        ),
    ],
)
def test_canonical_and_json_round_trip(spec: ArchSpec) -> None:
    assert ArchSpec.parse(spec.canonical()) == spec
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.parse(spec.canonical()).spec_id == spec.spec_id


def test_id_is_stable_and_distinguishes_specs() -> None:
    assert ArchSpec().spec_id == ArchSpec(alpha=1, beta=1.0).spec_id
    assert len(ArchSpec().spec_id) == 12
    assert ArchSpec().spec_id != ArchSpec(block="se").spec_id


def test_parse_accepts_a_subset_of_keys() -> None:
    assert ArchSpec.parse("block=se,k=5") == ArchSpec(block="se", kernel=5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"block": "resnet"}, "block='resnet'"),
        ({"alpha": 0.9}, "alpha=0.9"),
        ({"gamma": float("nan")}, "gamma=nan"),
        ({"phi": -1}, "phi=-1"),
        ({"kernel": 7}, "kernel=7"),
        ({"expansion": 0}, "expansion=0"),
        ({"mid_conv": "grouped"}, "mid_conv='grouped'"),
        ({"classes": 1}, "classes=1"),
        ({"resolution": 4}, "resolution=4"),
    ],
)
def test_bad_values_name_the_value(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        ArchSpec(**changes)  # type: ignore[arg-type]


def test_bad_spec_strings() -> None:
    with pytest.raises(UserError, match="bad spec item"):
        ArchSpec.parse("depth=3")
    with pytest.raises(UserError, match="must be an integer"):
        ArchSpec.parse("e=2.5")
    with pytest.raises(UserError, match="unknown spec field"):
        ArchSpec.from_dict({"width": 2})
    with pytest.raises(UserError, match="not valid JSON"):
        ArchSpec.from_json("{")


def test_a_plans_layout_is_the_network_whatever_the_spec_says() -> None:
    # the planner's no-repeat rule compares layouts: rounding makes nearby phis one network,
    # which spec_id (it only drops what phi = 0 ignores) cannot see
    spec = ArchSpec(block="standard", expansion=1, alpha=1.2, beta=1.1, gamma=1.15, resolution=32)
    near, far = spec.replace(phi=0.5), spec.replace(phi=0.51)
    assert resolve(near).layout == resolve(far).layout and near.spec_id != far.spec_id
    assert resolve(near).layout != resolve(spec.replace(phi=1.0)).layout
    zero = spec.replace(phi=0.0)
    assert resolve(zero).layout == resolve(zero.replace(alpha=1.9, beta=1.01, gamma=1.01)).layout


def test_a_base_resolution_scales_from_its_own_size_and_keeps_old_strings_and_ids() -> None:
    # the default 56 px base is not written, so every string and id made before it is unchanged
    assert "res0" not in ArchSpec().canonical()
    assert ArchSpec(base_resolution=56) == ArchSpec()
    small = ArchSpec(block="se", expansion=2, base_resolution=8, classes=10)
    assert small.canonical().endswith("res=auto,res0=8,classes=10")
    assert ArchSpec.parse(small.canonical()) == small
    assert ArchSpec.from_json(small.to_json()) == small
    assert resolve(small).resolution == 8
    # scaled as the 56 px base is, and rounded by the one rounding rule (multiples of 8, never
    # below 90 %): 8 * 1.3**1 = 10.4 -> 16, 8 * 1.3**3 = 17.6 -> 16, 8 * 1.3**4 = 22.8 -> 24
    grown = small.replace(alpha=1.1, beta=1.1, gamma=1.3)
    assert [resolve(grown.replace(phi=p)).resolution for p in (1, 3, 4)] == [16, 16, 24]
    # at phi = 0 the base is the network's input size; a pinned resolution makes it irrelevant
    assert small.spec_id == small.replace(resolution=8).spec_id
    assert (
        ArchSpec(base_resolution=12, classes=10).spec_id
        == ArchSpec(resolution=16, classes=10).spec_id
    )
    assert grown.replace(phi=2).spec_id != grown.replace(phi=2, base_resolution=16).spec_id
    pinned = grown.replace(phi=2, resolution=32)
    assert pinned.spec_id == pinned.replace(base_resolution=16).spec_id
    with pytest.raises(UserError, match="base_resolution"):
        ArchSpec(base_resolution=4)
