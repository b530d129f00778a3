"""Exact analytic MAC and parameter counts, from the plan alone (no model is built).

Convention (docs/design.md sec. 3, as in the EfficientNet paper and thop): the headline counts the
multiply-accumulates of the trainable operations, i.e. every convolution
``k*k*Cin/groups*Cout*Hout*Wout`` and every linear layer ``in*out``; squeeze-excite's two 1x1
convs, CondConv's routing layer and its kernel mixing (``M`` multiplies per kernel weight per
sample) count too. BatchNorm, activations, pooling and the residual add do not. Parameters are
the model's trainable parameters (conv weights, BatchNorm affine pairs, SE and routing biases,
the classifier's weight and bias), so ``count(plan).params`` equals
``sum(p.numel() for p in build_model(spec).parameters())``.

Counting takes microseconds, which is what lets the searcher reject an over-budget candidate
before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from space.plan import BlockPlan, ConvPlan, NetworkPlan, resolve
from space.spec import ArchSpec


@dataclass(frozen=True)
class LayerCount:
    """A table row: the stem, a stage of ``repeats`` equal blocks, the head or the classifier."""

    name: str
    repeats: int
    out_shape: tuple[int, ...]
    macs: int  # for all repeats together
    params: int  # for all repeats together


@dataclass(frozen=True)
class MacReport:
    layers: tuple[LayerCount, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def to_dict(self) -> dict[str, object]:
        return {
            "macs": self.macs,
            "params": self.params,
            "layers": [
                {
                    "name": layer.name,
                    "repeats": layer.repeats,
                    "out_shape": list(layer.out_shape),
                    "macs": layer.macs,
                    "params": layer.params,
                }
                for layer in self.layers
            ],
        }


def conv_macs(in_ch: int, out_ch: int, kernel: int, groups: int, out_hw: int) -> int:
    return kernel * kernel * (in_ch // groups) * out_ch * out_hw * out_hw


def conv_weights(in_ch: int, out_ch: int, kernel: int, groups: int) -> int:
    return kernel * kernel * (in_ch // groups) * out_ch


def _plain_conv(conv: ConvPlan) -> tuple[int, int]:
    """conv (no bias) + BatchNorm (weight, bias)."""
    macs = conv_macs(conv.in_ch, conv.out_ch, conv.kernel, 1, conv.out_hw)
    return macs, conv_weights(conv.in_ch, conv.out_ch, conv.kernel, 1) + 2 * conv.out_ch


def block_counts(b: BlockPlan) -> tuple[int, int]:
    """(MACs, params) of one block: expand 1x1, middle kxk, [SE], project 1x1, [CondConv]."""
    weights = (
        conv_weights(b.in_ch, b.expanded, 1, 1),
        conv_weights(b.expanded, b.expanded, b.kernel, b.mid_groups),
        conv_weights(b.expanded, b.out_ch, 1, 1),
    )
    macs = (
        conv_macs(b.in_ch, b.expanded, 1, 1, b.in_hw)
        + conv_macs(b.expanded, b.expanded, b.kernel, b.mid_groups, b.out_hw)
        + conv_macs(b.expanded, b.out_ch, 1, 1, b.out_hw)
    )
    bn_params = 2 * (b.expanded + b.expanded + b.out_ch)
    params = sum(weights) + bn_params
    if b.se_hidden:
        # two 1x1 convs with bias on the pooled (1x1) map
        macs += 2 * b.expanded * b.se_hidden
        params += 2 * b.expanded * b.se_hidden + b.se_hidden + b.expanded
    if b.experts:
        m = b.experts
        macs += b.in_ch * m  # routing linear on the pooled block input
        macs += m * sum(weights)  # mixing M expert kernels into one, per sample
        params += (m - 1) * sum(weights)  # M experts instead of one kernel
        params += b.in_ch * m + m  # routing linear with bias
    return macs, params


def count(plan: NetworkPlan) -> MacReport:
    rows = []
    stem_macs, stem_params = _plain_conv(plan.stem)
    rows.append(
        LayerCount(
            "stem",
            1,
            (plan.stem.out_ch, plan.stem.out_hw, plan.stem.out_hw),
            stem_macs,
            stem_params,
        )
    )
    for index, stage in enumerate(plan.stages, start=1):
        b = stage.block
        macs, params = block_counts(b)
        rows.append(
            LayerCount(
                f"stage{index}.{b.block}{'+skip' if b.shortcut else ''}",
                stage.repeats,
                (b.out_ch, b.out_hw, b.out_hw),
                macs * stage.repeats,
                params * stage.repeats,
            )
        )
    head_macs, head_params = _plain_conv(plan.head)
    rows.append(
        LayerCount(
            "head",
            1,
            (plan.head.out_ch, plan.head.out_hw, plan.head.out_hw),
            head_macs,
            head_params,
        )
    )
    features = plan.head.out_ch
    rows.append(
        LayerCount(
            "classifier",
            1,
            (plan.classes,),
            features * plan.classes,
            features * plan.classes + plan.classes,
        )
    )
    return MacReport(tuple(rows))


def count_spec(spec: ArchSpec) -> MacReport:
    return count(resolve(spec))
