"""The model builder: every block type and grouping, at several scalings."""

from __future__ import annotations

import pytest
import torch

from space import ArchSpec, build_model, count_spec
from space.blocks import CondConv2d

SCALINGS = [
    {},
    {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "phi": 1.0, "resolution": 32},
    {"alpha": 1.4, "beta": 1.2, "gamma": 1.0, "phi": 0.5, "resolution": 24, "expansion": 2},
]


@pytest.mark.parametrize("block", ["standard", "se", "condconv"])
@pytest.mark.parametrize("mid_conv", ["depthwise", "dense"])
@pytest.mark.parametrize("scaling", SCALINGS, ids=["paper", "b0-phi1", "deep-narrow"])
def test_forward_shape_finite_and_params(block: str, mid_conv: str, scaling: dict) -> None:
    spec = ArchSpec(block=block, mid_conv=mid_conv, classes=10, **scaling)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    size = model.plan.resolution
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == count_spec(spec).params


def test_block_count_follows_depth_scaling() -> None:
    model = build_model(ArchSpec(alpha=1.2, phi=1, resolution=16))
    assert len(model.blocks) == 2 + 1 + 2 + 1 + 3 + 1 + 4 + 1 + 5 + 1


def test_condconv_is_a_per_sample_mixture_of_experts() -> None:
    torch.manual_seed(0)
    conv = CondConv2d(4, 6, 3, 1, 1, experts=3)
    x = torch.randn(2, 4, 5, 5)
    routing = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
    out = conv(x, routing)
    for sample in range(2):
        kernel = sum(routing[sample, m] * conv.weight[m] for m in range(3))
        expected = torch.nn.functional.conv2d(x[sample : sample + 1], kernel, padding=1)
        torch.testing.assert_close(out[sample : sample + 1], expected, rtol=1e-5, atol=1e-5)


def test_depthwise_condconv_mixes_fully_grouped_kernels() -> None:
    conv = CondConv2d(8, 8, 3, 2, groups=8, experts=4)
    assert conv.weight.shape == (4, 8, 1, 3, 3)
    out = conv(torch.randn(3, 8, 9, 9), torch.rand(3, 4))
    assert out.shape == (3, 8, 5, 5)


def test_condconv_routes_each_sample_differently() -> None:
    torch.manual_seed(0)
    model = build_model(ArchSpec(block="condconv", classes=10, resolution=16)).eval()
    x = torch.randn(1, 3, 16, 16)
    pair = torch.cat([x, torch.randn(1, 3, 16, 16)])
    with torch.no_grad():
        alone = model(x)
        batched = model(pair)[:1]
    torch.testing.assert_close(alone, batched, rtol=1e-4, atol=1e-5)
