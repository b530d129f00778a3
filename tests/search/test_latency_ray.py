"""``--latency-resource``: candidates are timed by a Ray task on the node offering the resource."""

from __future__ import annotations

import pytest

from common.errors import UserError
from search.config import SearchConfig
from search.driver.latency import latency_measure, timing_line, timing_machine
from space import ArchSpec
from space.latency import LatencySettings, measure_latency, this_machine

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


def test_a_named_resource_sends_the_timing_to_a_ray_task() -> None:
    import ray

    config = SearchConfig(budget_macs=3e8, objectives=("accuracy", "latency"))
    assert latency_measure(config) is measure_latency  # no resource: here, in this process
    edge = SearchConfig(
        budget_macs=3e8, objectives=("accuracy", "latency"), latency_resource="edge"
    )
    with pytest.raises(UserError, match="needs Ray"):
        latency_measure(edge)
    ray.init(num_cpus=1, resources={"edge": 1}, include_dashboard=False, logging_level="ERROR")
    try:
        measure = latency_measure(edge)
        spec = ArchSpec(expansion=1, resolution=16, classes=10)
        record = measure(spec, LatencySettings(warmup=1, repeats=3))
        assert record.median_ms > 0 and record.threads == 1 and record.repeats == 3
        # the node names itself: the record and the study's timing machine say where
        assert record.machine == timing_machine(edge) == this_machine()
        assert timing_line(edge, record.machine) == (
            f"latency: every candidate is timed on the Ray node offering 'edge': "
            f"{record.machine.label}, 1 thread(s), one at a time, whichever driver meets it"
        )
        missing = SearchConfig(budget_macs=3e8, latency_budget_ms=5.0, latency_resource="gpu-box")
        with pytest.raises(UserError, match="no Ray node offers the custom resource 'gpu-box'"):
            latency_measure(missing)
    finally:
        ray.shutdown()
