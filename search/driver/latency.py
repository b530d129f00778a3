"""Where candidates are timed: this driver's machine, or the Ray node of ``--latency-resource``.

Latency is measured where the network will be deployed. By default that is the machine running
the search driver: the candidate is timed in the driver's process (``space.latency``), with its
threads pinned, before it is handed to Ray. On a cluster, ``--latency-resource NAME`` sends each
measurement as a Ray task that needs the whole custom resource NAME (one unit), so it runs on the
node started with ``ray start --resources '{"NAME": 1}'`` (say a CPU edge box that joined a
cluster of GPU workers), one measurement at a time, whichever driver meets the network. The task
asks for no CPU: it never waits behind trials (a trial actor Ray Tune keeps for reuse would hold
the CPU while the driver waits for the measurement); start the timing node with ``--num-cpus 0``
so that no trial trains beside it.

:func:`timing_machine` names the machine that times (this host, or asks the resource's node),
and :func:`check_timing` holds a study to one such machine (``search.study.latency``): a second
driver on another host that would time locally is refused in one line before it writes anything.
A search whose trials run on the timing machine disturbs the figures; ``space.latency`` re-times
a measurement whose spread says so, and each record keeps its ``cv``, its attempts and the load.
"""

from __future__ import annotations

import optuna

from common.errors import UserError
from search.config import SearchConfig
from search.study import schema
from search.study.database import open_existing
from search.study.latency import Measure, check_machine, recorded_machines
from space.latency import LatencyRecord, LatencySettings, Machine, measure_latency, this_machine
from space.onnx import check_onnx_packages
from space.spec import ArchSpec

RESOURCE_UNITS = 1.0  # of the custom resource per measurement: one at a time on that node
ASK_SHARE = 0.001  # of it to ask the node its name (runs beside a measurement)


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
    task = ray.remote(measure_latency).options(num_cpus=0, resources={resource: RESOURCE_UNITS})

    def on_node(spec: ArchSpec, settings: LatencySettings) -> LatencyRecord:
        record: LatencyRecord = ray.get(task.remote(spec, settings))
        return record

    return on_node


def timing_machine(config: SearchConfig) -> Machine:
    """The machine that times this search's candidates: this one, or the node offering
    ``--latency-resource`` (asked through a Ray task; call after :func:`latency_measure`)."""
    device = config.latency_settings().device
    if config.latency_resource is None:
        return this_machine(device)
    import ray

    ask = ray.remote(this_machine).options(
        num_cpus=0, resources={config.latency_resource: ASK_SHARE}
    )
    machine: Machine = ray.get(ask.remote(device))
    return machine


def check_timing(config: SearchConfig, machine: Machine, exists: bool) -> None:
    """Refuse to time this existing study's candidates on ``machine`` when it measured on
    another (``search.study.latency.check_machine``); reads the study without writing."""
    if not exists:
        return
    study = optuna.load_study(study_name=config.study, storage=open_existing(config.storage))
    machines = recorded_machines(study.user_attrs, study.get_trials(deepcopy=False))
    check_machine(config.study, machines, machine, config.latency_resource)


def check_loaded_study(study: optuna.Study, config: SearchConfig, machine: Machine) -> None:
    """:func:`check_timing` on a study this driver just loaded (it lost the race to create it:
    the winner recorded its timing machine before its config)."""
    machines = recorded_machines(study.user_attrs, [])
    check_machine(config.study, machines, machine, config.latency_resource)


def timing_line(config: SearchConfig, machine: Machine) -> str:
    """The one line that says where every candidate of this search is timed."""
    threads = config.latency_settings().threads
    if config.latency_resource is not None:
        return (
            f"latency: every candidate is timed on the Ray node offering "
            f"{config.latency_resource!r}: {machine.label}, {threads} thread(s), one at a time, "
            "whichever driver meets it"
        )
    return (
        f"latency: candidates are timed on this machine, {machine.label}, {threads} thread(s); "
        "a driver on another host is refused (time on one node: --latency-resource NAME)"
    )


def has_timing_record(study: optuna.Study) -> bool:
    return isinstance(study.user_attrs.get(schema.LATENCY_MACHINE), dict)
