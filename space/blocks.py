"""The network's building blocks: squeeze-excite, CondConv and the inverted-residual block.

- ``SqueezeExcite`` follows Hu et al. (2018) as used in EfficientNet: pool, 1x1 reduce, ReLU,
  1x1 expand, sigmoid, multiply. docs/design.md fixes its width at ``Ne / R`` expanded channels.
- ``CondConv2d`` follows Yang et al. (2019, CondConv): ``M`` expert kernels are mixed per sample,
  ``W = sum_m r_m W_m``, and the batch runs as one grouped convolution with ``B * groups`` groups,
  exactly as timm's ``CondConv2d`` does. The routing vector comes from the block
  (``CondConvMBConv``): one ``sigmoid(linear(avgpool(x)))`` per block input, shared by the block's
  three convs as in timm's ``CondConvResidual``; squeeze-excite stays a plain module (also timm).
- ``MBConv`` is the inverted residual of MobileNetV2 / EfficientNet (docs/design.md section 2).

Every module here is built from a :class:`~space.plan.BlockPlan`, the same record the MAC counter
reads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from space.plan import BlockPlan


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean((2, 3), keepdim=True)
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(squeezed))))
        return x * gate


class CondConv2d(nn.Module):
    """A conv whose kernel is a per-sample mixture of ``experts`` kernels (no bias: BN follows)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int, experts: int
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.stride, self.groups, self.experts = stride, groups, experts
        self.weight = nn.Parameter(torch.empty(experts, out_ch, in_ch // groups, kernel, kernel))
        for expert in self.weight:  # each expert initialised like a plain conv (timm does too)
            nn.init.kaiming_uniform_(expert, a=math.sqrt(5))

    def forward(self, x: torch.Tensor, routing: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        mixed = routing @ self.weight.flatten(1)  # (B, M) @ (M, K) -> (B, K)
        kernels = mixed.reshape(
            batch * self.out_ch, self.in_ch // self.groups, *self.weight.shape[-2:]
        )
        out = F.conv2d(
            x.reshape(1, batch * self.in_ch, height, width),
            kernels,
            stride=self.stride,
            padding=self.kernel // 2,
            groups=self.groups * batch,
        )
        return out.reshape(batch, self.out_ch, *out.shape[-2:])


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, middle kxk, [squeeze-excite], project 1x1, [+ input]."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.shortcut = plan.shortcut
        self.expand = self._conv(plan, plan.in_ch, plan.expanded, 1, 1, 1)
        self.bn1 = nn.BatchNorm2d(plan.expanded)
        self.mid = self._conv(
            plan, plan.expanded, plan.expanded, plan.kernel, plan.stride, plan.mid_groups
        )
        self.bn2 = nn.BatchNorm2d(plan.expanded)
        self.se = SqueezeExcite(plan.expanded, plan.se_hidden) if plan.se_hidden else nn.Identity()
        self.project = self._conv(plan, plan.expanded, plan.out_ch, 1, 1, 1)
        self.bn3 = nn.BatchNorm2d(plan.out_ch)

    def _conv(
        self, plan: BlockPlan, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int
    ) -> nn.Module:
        return nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.expand(x)))
        out = F.relu(self.bn2(self.mid(out)))
        out = self.se(out)
        out = self.bn3(self.project(out))  # linear bottleneck: no activation
        return out + x if self.shortcut else out


class CondConvMBConv(MBConv):
    """MBConv + SE whose three convs are CondConv, routed once per block input."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__(plan)
        self.router = nn.Linear(plan.in_ch, plan.experts)

    def _conv(
        self, plan: BlockPlan, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int
    ) -> nn.Module:
        return CondConv2d(in_ch, out_ch, kernel, stride, groups, plan.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = torch.sigmoid(self.router(x.mean((2, 3))))
        out = F.relu(self.bn1(self.expand(x, routing)))
        out = F.relu(self.bn2(self.mid(out, routing)))
        out = self.se(out)
        out = self.bn3(self.project(out, routing))
        return out + x if self.shortcut else out


def make_block(plan: BlockPlan) -> MBConv:
    return CondConvMBConv(plan) if plan.experts else MBConv(plan)
