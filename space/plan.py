"""Resolve an :class:`ArchSpec` into the concrete network the builder builds and the counter counts.

The plan is the single meeting point of ``space.model`` (PyTorch modules) and ``space.macs``
(analytic MACs/params): both read the same :class:`BlockPlan` fields, so they cannot disagree on a
channel count, a spatial size or a group count.

Choices where docs/design.md is silent, each following timm's EfficientNet builder:
- "same" padding ``k // 2``, so a stride-2 conv gives ``ceil(H / 2)``;
- the SE hidden width is ``max(1, round(Ne / R))`` (timm's ``SqueezeExcite`` rounding);
- the expansion 1x1 conv is kept even for expansion 1, so every block has the same diagram
  (timm would switch to a depthwise-separable block; docs/design.md's table has one block shape).
"""

from __future__ import annotations

from dataclasses import dataclass

from space.scaling import ScaledNetwork, multipliers, scale_network
from space.spec import ArchSpec

IN_CHANNELS = 3


@dataclass(frozen=True)
class ConvPlan:
    """A plain conv + BN + ReLU (stem and head)."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    in_hw: int
    out_hw: int


@dataclass(frozen=True)
class BlockPlan:
    """One block of a stage; every block of a stage has the same plan."""

    block: str
    in_ch: int
    out_ch: int
    expanded: int
    kernel: int
    stride: int
    mid_groups: int
    se_hidden: int  # 0 when the block has no squeeze-excite
    experts: int  # 0 when the convs are plain (not CondConv)
    in_hw: int
    out_hw: int

    @property
    def shortcut(self) -> bool:
        return self.in_ch == self.out_ch and self.stride == 1


@dataclass(frozen=True)
class StagePlan:
    repeats: int
    block: BlockPlan


@dataclass(frozen=True)
class NetworkPlan:
    spec: ArchSpec
    resolution: int
    stem: ConvPlan
    stages: tuple[StagePlan, ...]
    head: ConvPlan
    classes: int

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return sum(stage.repeats for stage in self.stages)

    @property
    def layout(self) -> tuple[object, ...]:
        """Everything that is built, without the spec: two specs with the same layout build the
        same network (at phi = 0 the coefficients change nothing; rounding can merge others)."""
        return (self.resolution, self.stem, self.stages, self.head, self.classes)


def scaled_network(spec: ArchSpec) -> ScaledNetwork:
    """The rounded table for this spec; a pinned ``spec.resolution`` overrides gamma**phi."""
    multiplier = multipliers(spec.alpha, spec.beta, spec.gamma, spec.phi)
    scaled = scale_network(*multiplier, base_resolution=spec.base_resolution)
    if spec.resolution is not None:
        scaled = ScaledNetwork(spec.resolution, scaled.stem, scaled.rows, scaled.head)
    return scaled


def _out_hw(hw: int, stride: int) -> int:
    return -(-hw // stride)


def resolve(spec: ArchSpec) -> NetworkPlan:
    scaled = scaled_network(spec)
    hw = scaled.resolution
    stem = ConvPlan(IN_CHANNELS, scaled.stem, 3, 1, hw, hw)
    stages = []
    for row in scaled.rows:
        expanded = spec.expansion * row.in_ch
        out_hw = _out_hw(hw, row.stride)
        block = BlockPlan(
            block=spec.block,
            in_ch=row.in_ch,
            out_ch=row.out_ch,
            expanded=expanded,
            kernel=spec.kernel,
            stride=row.stride,
            mid_groups=expanded if spec.mid_conv == "depthwise" else 1,
            se_hidden=max(1, round(expanded / spec.se_ratio)) if spec.block != "standard" else 0,
            experts=spec.experts if spec.block == "condconv" else 0,
            in_hw=hw,
            out_hw=out_hw,
        )
        stages.append(StagePlan(row.repeats, block))
        hw = out_hw
    last = scaled.rows[-1].out_ch
    head = ConvPlan(last, scaled.head, 1, 1, hw, hw)
    return NetworkPlan(spec, scaled.resolution, stem, tuple(stages), head, spec.classes)
