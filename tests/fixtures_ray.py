"""A two-node Ray cluster on this machine, started with the real ``ray start`` command.

Why ``ray start`` and not ``ray.init()``: the feature under test is `search run --ray-address`, i.e.
a driver joining a cluster it did not start, which is exactly what the compose file does with a head
container and worker containers. Two ``ray start`` processes on one host give two Ray nodes (two
raylets, separate node ids and temp dirs), as ``ray.cluster_utils.Cluster`` does.

Each node runs ``ray start --block`` in its own process group, so teardown can stop exactly the
processes this fixture started (SIGTERM, then SIGKILL, to the group) instead of ``ray stop
--force``, which would also kill any other Ray runtime on the machine (e.g. a parallel test).
Import the fixture with ``from tests.fixtures_ray import ray_cluster``.

The two-host tests (tests/fixtures_hosts.py) build their cluster from the same pieces, each node
started behind its host's command ``prefix`` (``nsenter`` into that host's namespaces).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures_pg import free_port

NODE_IP = "127.0.0.1"
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this interpreter

_COUNT_NODES = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]
print(json.dumps([{"id": n["NodeID"], "cpus": n["Resources"].get("CPU", 0)} for n in nodes]))
"""


@dataclass
class RayCluster:
    """A running cluster: ``address`` is what `search run --ray-address` takes."""

    address: str
    root: Path
    node_dirs: list[Path]
    env: dict[str, str]  # what a driver needs in its environment (token auth) to join
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    prefix: tuple[str, ...] = ()  # where a driver that can reach ``address`` runs (its host)

    def driver_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def alive_nodes(self) -> list[dict[str, object]]:
        """Alive nodes as seen by a fresh driver (separate process: no Ray in the test process)."""
        try:
            result = subprocess.run(
                [*self.prefix, sys.executable, "-c", _COUNT_NODES, self.address],
                env=self.driver_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return []
        if result.returncode != 0:
            return []
        return list(json.loads(result.stdout.strip().splitlines()[-1]))

    def log_text(self, node: int) -> str:
        """All worker stdout/stderr of one node (``:actor_name:`` lines say which actors ran)."""
        texts = []
        for path in sorted(self.node_dirs[node].glob("session_2*/logs/**/worker-*.out")):
            texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)


def _ray_start(
    args: list[str], log: Path, env: dict[str, str], prefix: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """``ray start --block ARGS`` (behind ``prefix``), its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*prefix, *RAY_CLI, "start", "--block", "--disable-usage-stats", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown kills exactly this tree
            env={**os.environ, **env},
        )


def _our_processes(groups: set[int], root: Path) -> set[int]:
    """Live (non-zombie) processes in the nodes' process groups, plus any process with a file
    open under ``root``: Ray workers ``setsid()`` themselves and so leave the node's group, but
    their log files live in this fixture's temp dir. Nothing else on the machine is touched."""
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            stat = (proc / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] == "Z":
                continue
            if int(fields[2]) in groups or any(
                os.readlink(fd).startswith(str(root)) for fd in (proc / "fd").iterdir()
            ):
                pids.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def cluster_env() -> dict[str, str]:
    """The environment every node and driver of one new cluster shares.

    Ray >= 2.5x turns token auth on for a `ray start --head` when ~/.ray/auth_token exists (any
    earlier local ray.init() writes one) while a joining driver must opt in: so pin the mode
    and give every node and driver the same fresh token, as a real cluster should."""
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def start_cluster(workers: int = 1, cpus_per_node: int = 1, timeout: float = 90) -> RayCluster:
    """Head + ``workers`` worker nodes on this host, each with ``cpus_per_node`` CPUs, no GPU."""
    root = Path(tempfile.mkdtemp(prefix="effnas-rc-"))  # short: Ray's socket paths are long
    port = free_port()
    address = f"{NODE_IP}:{port}"
    cluster = RayCluster(address=address, root=root, node_dirs=[], env=cluster_env())
    common = [f"--num-cpus={cpus_per_node}", "--num-gpus=0", f"--node-ip-address={NODE_IP}"]
    try:
        for index in range(1 + workers):
            node_dir = root / f"n{index}"
            node_dir.mkdir()
            cluster.node_dirs.append(node_dir)
            if index == 0:
                role = [
                    "--head",
                    f"--port={port}",
                    "--include-dashboard=false",
                ]
            else:
                role = [f"--address={address}"]
            args = [*role, *common, f"--temp-dir={node_dir}"]
            cluster.processes.append(_ray_start(args, root / f"n{index}.log", cluster.env))
            _wait_for_nodes(cluster, index + 1, timeout)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _wait_for_nodes(
    cluster: RayCluster, count: int, timeout: float, index: int | None = None
) -> None:
    """Until node ``index`` (default ``count - 1``) says "Ray runtime started" and a driver sees
    ``count`` nodes.

    The log line comes first because a driver that connects while the GCS is still starting
    can hang in ``ray.init`` for a long time."""
    index = count - 1 if index is None else index
    log = cluster.root / f"n{index}.log"
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if cluster.processes[index].poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"ray start (node {index}) did not start:\n{tail}")
        time.sleep(0.5)
    while len(cluster.alive_nodes()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ray cluster at {cluster.address} did not reach {count} nodes")
        time.sleep(1.0)


def stop_cluster(cluster: RayCluster, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, to the processes this fixture started; never raises."""
    groups = {process.pid for process in cluster.processes}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in _our_processes(groups, cluster.root):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for process in cluster.processes:
                process.poll()  # reap our direct children
            if not _our_processes(groups, cluster.root):
                break
            time.sleep(0.25)
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    """Head + one worker node, one CPU each; stopped (by process group) in teardown."""
    cluster = start_cluster(workers=1, cpus_per_node=1)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
