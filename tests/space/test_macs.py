"""The analytic MAC/param counter: hand-derived rows, thop cross-check, real parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from space import ArchSpec, build_model, count_spec
from space.blocks import CondConv2d

thop = pytest.importorskip("thop")


def test_paper_preset_rows_derived_by_hand() -> None:
    report = count_spec(ArchSpec())
    rows = {layer.name: layer for layer in report.layers}
    # stem: 3x3 conv 3 -> 16 at 56x56
    assert rows["stem"].macs == 3 * 3 * 3 * 16 * 56 * 56 == 1_354_752
    assert rows["stem"].params == 3 * 3 * 3 * 16 + 2 * 16
    # identity block 16 -> 16, e=4 (Ne=64), 56x56: expand + depthwise 3x3 + project
    identity = 16 * 64 * 56 * 56 + 9 * 64 * 56 * 56 + 64 * 16 * 56 * 56
    assert rows["stage1.standard+skip"].macs == identity == 8_228_864
    assert rows["stage1.standard+skip"].params == 16 * 64 + 9 * 64 + 64 * 16 + 2 * (64 + 64 + 16)
    # stride-2 block 24 -> 40, Ne=96: expand at 56x56, depthwise and project at 28x28
    stride2 = 24 * 96 * 56 * 56 + 9 * 96 * 28 * 28 + 96 * 40 * 28 * 28
    assert rows["stage4.standard"].macs == stride2 == 10_913_280
    # the four identity blocks 160 -> 160 at 7x7 count four times
    one = 160 * 640 * 49 + 9 * 640 * 49 + 640 * 160 * 49
    assert rows["stage9.standard+skip"].repeats == 4
    assert rows["stage9.standard+skip"].macs == 4 * one
    assert rows["head"].macs == 320 * 1280 * 7 * 7
    assert rows["classifier"].macs == 1280 * 100
    assert report.macs == 193_898_304
    assert report.params == 2_029_572


def test_se_and_condconv_extras_by_hand() -> None:
    standard = count_spec(ArchSpec()).layers[1]
    se = count_spec(ArchSpec(block="se", se_ratio=4)).layers[1]
    # SE on Ne=64 with R=4: 1x1 convs 64 -> 16 -> 64 on the pooled map, with biases
    assert se.macs - standard.macs == 2 * 64 * 16
    assert se.params - standard.params == 2 * 64 * 16 + 16 + 64
    cond = count_spec(ArchSpec(block="condconv", se_ratio=4, experts=4)).layers[1]
    kernel_weights = 16 * 64 + 9 * 64 + 64 * 16
    # routing linear 16 -> 4, and mixing 4 multiplies per kernel weight
    assert cond.macs - se.macs == 16 * 4 + 4 * kernel_weights
    assert cond.params - se.params == 3 * kernel_weights + 16 * 4 + 4


def _zero(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    """BatchNorm and pooling are outside the headline (docs/design.md section 3)."""


def _condconv_rule(
    module: CondConv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
) -> None:
    """A CondConv is one conv of the mixed kernel plus M multiplies per kernel weight per sample."""
    batch = inputs[0].shape[0]
    weights = module.weight[0].numel()
    module.total_ops += batch * (
        weights * output.shape[2] * output.shape[3] + module.experts * weights
    )


@pytest.mark.parametrize("block", ["standard", "se", "condconv"])
@pytest.mark.parametrize("mid_conv", ["depthwise", "dense"])
def test_counter_matches_thop_and_parameters(block: str, mid_conv: str) -> None:
    from thop.profile import profile_origin

    spec = ArchSpec(
        block=block,
        mid_conv=mid_conv,
        alpha=1.2,
        beta=1.1,
        gamma=1.15,
        phi=0.7,
        kernel=5 if mid_conv == "depthwise" else 3,
        classes=10,
    )
    model = build_model(spec)
    size = model.plan.resolution
    rules = {nn.BatchNorm2d: _zero, nn.AdaptiveAvgPool2d: _zero, CondConv2d: _condconv_rule}
    macs, params = profile_origin(
        model, (torch.randn(1, 3, size, size),), custom_ops=rules, verbose=False
    )
    report = count_spec(spec)
    assert int(macs) == report.macs
    assert int(params) == report.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "options",
    [
        {"expansion": 1},
        {"block": "se", "se_ratio": 2, "expansion": 6, "kernel": 5},
        {"block": "se", "se_ratio": 16, "mid_conv": "dense", "resolution": 40},
        {"block": "condconv", "experts": 8, "se_ratio": 4, "kernel": 5},
        {"block": "condconv", "experts": 2, "se_ratio": 16, "expansion": 1, "phi": 1.3},
    ],
)
def test_counted_parameters_are_the_built_models(options: dict[str, object]) -> None:
    """``--budget-params`` is checked on the counted parameters: they must be the model's."""
    spec = ArchSpec(alpha=1.2, beta=1.1, gamma=1.15, classes=100, **options)
    model = build_model(spec)
    assert count_spec(spec).params == sum(p.numel() for p in model.parameters())
