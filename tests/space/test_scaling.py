"""Compound scaling and its single rounding function (docs/design.md section 4)."""

from __future__ import annotations

from space import ArchSpec, count_spec, resolve
from space.scaling import BASELINE_ROWS, scale_network


def test_identity_scaling_is_the_baseline_table() -> None:
    scaled = scale_network(1.0, 1.0, 1.0)
    assert scaled.resolution == 56
    assert scaled.stem == 16
    assert scaled.head == 1280
    assert scaled.rows == BASELINE_ROWS


def test_channels_round_to_multiples_of_eight_never_below_ninety_percent() -> None:
    scaled = scale_network(1.0, 1.1, 1.0)
    # 16*1.1=17.6 -> 16 (>= 15.84); 24*1.1=26.4 -> 24 (>= 23.76); 40*1.1=44 -> 48 (44+4=48);
    # 1280*1.1=1408 -> 1408
    assert scaled.stem == 16
    assert [row.out_ch for row in scaled.rows[:4]] == [16, 24, 24, 48]
    assert scaled.head == 1408
    # 90 % rule: 19*1.0 would round to 16 < 17.1, so it is bumped to 24
    tiny = scale_network(1.0, 20 / 16, 1.0)  # stem 16 * 1.25 = 20 -> 24 (nearest), head 1600
    assert tiny.stem == 24
    assert all(row.in_ch % 8 == 0 and row.out_ch % 8 == 0 for row in tiny.rows)


def test_repeats_round_up_only_for_identity_groups() -> None:
    scaled = scale_network(1.2, 1.0, 1.0)
    repeats = [row.repeats for row in scaled.rows]
    # identity rows 1,1,2,3,4 -> ceil(1.2x) = 2,2,3,4,5; shape-changing rows stay at 1
    assert repeats == [2, 1, 2, 1, 3, 1, 4, 1, 5, 1]


def test_resolution_rounds_to_a_multiple_of_eight() -> None:
    assert scale_network(1, 1, 1.15).resolution == 64  # 64.4 -> 64
    assert scale_network(1, 1, 1.3).resolution == 72  # 72.8 -> 72
    assert resolve(ArchSpec(gamma=1.15, phi=2)).resolution == 72  # 56*1.3225 = 74.06 -> 72


def test_pinned_resolution_overrides_gamma() -> None:
    assert resolve(ArchSpec(gamma=1.3, phi=1, resolution=32)).resolution == 32


def test_b0_coefficients_double_macs_at_phi_one() -> None:
    baseline = count_spec(ArchSpec()).macs
    scaled = count_spec(ArchSpec(alpha=1.2, beta=1.1, gamma=1.15, phi=1)).macs
    ratio = scaled / baseline
    assert 2 * 0.85 <= ratio <= 2 * 1.15
    assert round(ratio, 4) == 2.0025
