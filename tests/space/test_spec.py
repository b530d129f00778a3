"""ArchSpec: validation, canonical string, JSON round trip, stable id."""

from __future__ import annotations

import pytest

from space import ArchSpec, UserError


def test_default_is_the_paper_preset() -> None:
    spec = ArchSpec()
    assert spec.canonical() == (
        "block=standard,e=4,r=4,m=4,mid=depthwise,k=3,a=1,b=1,g=1,phi=0,res=auto,classes=100"
    )


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
