"""Where candidates are timed: this driver's machine, or the Ray node of ``--latency-resource``.

Latency is measured where the network will be deployed. By default that is the machine running
the search driver: the candidate is timed in the driver's process (``space.latency``), with its
threads pinned, before it is handed to Ray. On a cluster, ``--latency-resource NAME`` sends each
measurement as a Ray task that needs a sliver of the custom resource NAME, so it runs on the node
started with ``ray start --resources '{"NAME": 1}'`` (say a CPU edge box that joined a cluster of
GPU workers). A search whose trials run on the driver's machine while it times the next
candidate disturbs that figure; each record keeps the spread of its repeats (``cv``).
"""

from __future__ import annotations

from common.errors import UserError
from search.config import SearchConfig
from search.study.latency import Measure
from space.latency import LatencyRecord, LatencySettings, measure_latency
from space.onnx import check_onnx_packages
from space.spec import ArchSpec

RESOURCE_SHARE = 0.001  # of the custom resource per measurement: any number of them fit


def check_latency_here(config: SearchConfig) -> None:
    """What can be checked before the study is touched, when this machine does the timing: a
    CUDA device for ``--latency-device cuda``, onnxruntime for ``--latency-backend onnxruntime``."""
    if not config.uses_latency or config.latency_resource is not None:
        return
    import torch

    if config.latency_device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--latency-device cuda but no CUDA GPU is visible on this machine; pass "
            "--latency-device cpu, or --latency-resource NAME of a Ray node with one"
        )
    if config.latency_backend == "onnxruntime":
        check_onnx_packages("--latency-backend onnxruntime")


def latency_measure(config: SearchConfig) -> Measure:
    """How this search times a candidate; with ``--latency-resource`` Ray must be running
    (``search run``'s executor) and some node must offer the resource, else ``UserError``."""
    resource = config.latency_resource
    if resource is None or not config.uses_latency:
        return measure_latency
    import ray

    if not ray.is_initialized():
        raise UserError(
            f"--latency-resource {resource} needs Ray, which this executor does not start; "
            "drop the flag to time candidates on this machine"
        )
    offered = ray.cluster_resources().get(resource, 0.0)
    if offered <= 0:
        raise UserError(
            f"no Ray node offers the custom resource {resource!r}; start the node that should "
            f"time candidates with ray start --resources '{{\"{resource}\": 1}}' --address ..."
        )
    task = ray.remote(measure_latency).options(
        num_cpus=config.latency_settings().threads, resources={resource: RESOURCE_SHARE}
    )

    def on_node(spec: ArchSpec, settings: LatencySettings) -> LatencyRecord:
        record: LatencyRecord = ray.get(task.remote(spec, settings))
        return record

    return on_node
