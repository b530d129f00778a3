"""`search run --ray-address` joins a running multi-node Ray cluster.

A head and a worker node are started with the real ``ray start`` command (tests/fixtures_ray.py),
each with exactly the CPUs one trial asks for, so two concurrent trials cannot share a node and
must spread over both. The driver (the `search` command, in a subprocess) is the only writer of
the study (SQLite here); the trials' Ray actors leave ``:actor_name:`` lines in the logs of the
node they ran on, which is how the test sees both nodes at work.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_pg import free_port
from tests.fixtures_ray import RayCluster, start_cluster, stop_cluster

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

CONCURRENCY = 2
# Joining a cluster, `search run` asks one CPU per trial; with one CPU per node, two concurrent
# trials must run on different nodes.
CPUS_PER_NODE = 1
TINY = ["--preset", "quick", "--budget-flops", "3e7", "--subset", "200", "--expansion", "1"]
TINY += ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--device", "cpu"]


@pytest.fixture
def two_node_cluster() -> Iterator[RayCluster]:
    cluster = start_cluster(workers=1, cpus_per_node=CPUS_PER_NODE)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def actor_names(cluster: RayCluster, node: int) -> set[str]:
    return set(re.findall(r":actor_name:(\w+)", cluster.log_text(node)))


def test_search_runs_on_an_existing_two_node_cluster(
    two_node_cluster: RayCluster, tmp_path: Path
) -> None:
    nodes = two_node_cluster.alive_nodes()
    assert len(nodes) == 2
    assert [node["cpus"] for node in nodes] == [CPUS_PER_NODE, CPUS_PER_NODE]
    storage = f"sqlite:///{tmp_path / 'cluster.db'}"
    cluster_args = ["--ray-address", two_node_cluster.address, "--storage", storage]
    cluster_args += ["--study", "cluster", "--trials", "2", "--concurrency", str(CONCURRENCY)]
    result = subprocess.run(
        [sys.executable, "-m", "search.cli", "run", *TINY, *cluster_args],
        env=two_node_cluster.driver_env(),  # the cluster's auth token
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    trials = optuna.load_study(study_name="cluster", storage=storage).trials
    done = [t for t in trials if t.user_attrs.get("status") in ("complete", "pruned")]
    assert len(done) == 2
    assert [t.number for t in trials] == list(range(len(trials)))
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert complete
    for trial in complete:
        assert 0.0 <= trial.values[0] <= 1.0
        assert 0 < trial.values[1] <= 30_000_000
        assert trial.user_attrs["epochs_run"] == 1

    # The trials ran as Ray actors on both nodes (each node fits exactly one trial at a time).
    head, worker = actor_names(two_node_cluster, 0), actor_names(two_node_cluster, 1)
    assert head, "no trial actor ran on the head node"
    assert worker, "no trial actor ran on the worker node"

    # The cluster outlives the driver: it is still up, with both nodes, for the next search.
    assert len(two_node_cluster.alive_nodes()) == 2


def test_unreachable_ray_address_fails_cleanly(tmp_path: Path) -> None:
    """A wrong --ray-address is one error line (exit 2) and leaves no study behind."""
    database = tmp_path / "none.db"
    address = f"127.0.0.1:{free_port()}"
    args = ["--ray-address", address, "--storage", f"sqlite:///{database}", "--study", "nowhere"]
    result = subprocess.run(
        [sys.executable, "-m", "search.cli", "run", *TINY, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and address in lines[0], lines
    assert not database.exists() or not optuna.get_all_study_names(f"sqlite:///{database}")
