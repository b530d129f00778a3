"""Build the PyTorch network of docs/design.md section 1 from an :class:`ArchSpec`.

stem (3x3 conv, BN, ReLU) -> blocks stage by stage -> head (1x1 conv, BN, ReLU) -> global average
pool -> linear. Everything is read from the resolved :class:`~space.plan.NetworkPlan`, the same
plan ``space.macs`` counts, so the counter and the model agree by construction (and a test checks
it against thop and ``parameters()``).
"""

from __future__ import annotations

import torch
from torch import nn

from space.blocks import make_block
from space.plan import ConvPlan, NetworkPlan, resolve
from space.spec import ArchSpec


def _conv_bn_relu(conv: ConvPlan) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(conv.in_ch, conv.out_ch, conv.kernel, conv.stride, conv.kernel // 2, bias=False),
        nn.BatchNorm2d(conv.out_ch),
        nn.ReLU(inplace=True),
    )


class EfficientNet(nn.Module):
    def __init__(self, plan: NetworkPlan) -> None:
        super().__init__()
        self.plan = plan
        self.stem = _conv_bn_relu(plan.stem)
        self.blocks = nn.Sequential(
            *(make_block(stage.block) for stage in plan.stages for _ in range(stage.repeats))
        )
        self.head = _conv_bn_relu(plan.head)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(plan.head.out_ch, plan.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.blocks(x)
        x = self.head(x)
        return self.classifier(self.pool(x).flatten(1))


def build_model(spec: ArchSpec | NetworkPlan) -> EfficientNet:
    plan = spec if isinstance(spec, NetworkPlan) else resolve(spec)
    return EfficientNet(plan)
