"""The search space: architecture specs, compound scaling, the model builder, MAC counting and
the training-memory estimate."""

from space.fit import Fit, fit_phi
from space.macs import LayerCount, MacReport, count, count_spec
from space.memory import MemoryEstimate, choose_micro_batch, estimate_memory
from space.model import EfficientNet, build_model
from space.plan import NetworkPlan, resolve
from space.scaling import EFFICIENTNET_B0
from space.spec import BLOCK_TYPES, KERNELS, MID_CONVS, ArchSpec

__all__ = [
    "BLOCK_TYPES",
    "EFFICIENTNET_B0",
    "KERNELS",
    "MID_CONVS",
    "ArchSpec",
    "EfficientNet",
    "Fit",
    "LayerCount",
    "MacReport",
    "MemoryEstimate",
    "NetworkPlan",
    "build_model",
    "choose_micro_batch",
    "count",
    "count_spec",
    "estimate_memory",
    "fit_phi",
    "resolve",
]
