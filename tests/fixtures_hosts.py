"""Two hosts on this machine, made by the test: namespaces joined by a veth pair.

Why namespaces and not a patched host name: what tells machines apart for the search is their
network addresses, host names and process ids. A driver on host B must reach host A's
PostgreSQL and Ray head over a real network link, must not see host A's processes (so only the
lease, never a pid check, can tell that a driver on the other host is gone), and Ray must find
only host B's node when that driver joins the cluster. Each :class:`Host` is

- a network namespace (``ip netns add``) holding loopback and one end of a veth pair at a
  test-chosen private address (:data:`SUBNET`); there is no default route and no other interface,
  so its processes reach the other host's address and their own loopback, nothing else;
- a UTS and a PID namespace (``unshare --uts --pid --fork --mount-proc``) whose init, a small
  reaper (:data:`_INIT`), sets the host name; every command runs there through ``nsenter`` into
  the init's namespaces (:attr:`Host.prefix`).

:meth:`Host.kill_processes` SIGKILLs every process of a host but its init (a Ray node that dies
while its machine stays up); :meth:`Host.power_off` SIGKILLs the init, and the kernel kills every
process of the PID namespace with it (a host lost at once); :meth:`Host.boot` starts a fresh init
(the host restarted, with new pids). :func:`two_host_bed` adds host A's PostgreSQL (listening on
A's address, tests/fixtures_pg.py) and a Ray cluster with the head on A and a worker node on B
(``ray start``, tests/fixtures_ray.py). Teardown stops the server, kills every process of both
hosts and deletes the namespaces (and with them the veth pair), whatever the test did.

Needs root; skipped with the reason where a namespace cannot be made (``ip netns add`` fails in
an unprivileged container) or a tool is missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
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

from tests.fixtures_driver import Driver, start_driver
from tests.fixtures_pg import PostgresServer, find_pg_bin, start_postgres, stop_postgres
from tests.fixtures_ray import RayCluster, _ray_start, _wait_for_nodes, cluster_env, stop_cluster

REPO = Path(__file__).resolve().parents[1]
SUBNET = "10.231.0"  # /24; host A is .1, host B is .2 (inside the namespaces only)
PG_PORT = 5432  # fixed ports are free: each namespace has its own
RAY_PORT = 6379
TOOLS = ("ip", "unshare", "nsenter")
# a host's own host name and pids; /proc shows only its processes (Ray looks for raylets there)
UNSHARE = ("unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child")

# pid 1 of a host: sets the host name, then reaps orphans (Ray workers re-parent to it)
_INIT = """
import os, socket, sys, time
socket.sethostname(sys.argv[1])
print("up", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
"""


# a driver that takes its node's one CPU with an actor pinned there, until it is killed
_HOLD_CPU = """
import sys, time, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
node = ray.get_runtime_context().get_node_id()
@ray.remote(num_cpus=1)
class Hold:
    def ready(self):
        return True
hold = Hold.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
ray.get(hold.ready.remote())
print("held", flush=True)
time.sleep(3600)
"""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


@dataclass
class Host:
    """One simulated machine: a network namespace plus its own host name and process tree."""

    netns: str
    address: str
    hostname: str
    root: Path  # this host's files: Ray's temp dir, driver logs
    init: subprocess.Popen[bytes] | None = None

    # ----- life ---------------------------------------------------------------------------------
    def boot(self, timeout: float = 60) -> None:
        """Start the host's init in fresh UTS and PID namespaces inside its network namespace."""
        netns = ("ip", "netns", "exec", self.netns)
        self.init = subprocess.Popen(
            [*netns, *UNSHARE, sys.executable, "-c", _INIT, self.hostname],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.init.stdout is not None
        line = self.init.stdout.readline()  # blocks until the init has set the host name
        if line.strip() != b"up":
            raise RuntimeError(f"host {self.hostname} did not boot: {line!r}")
        deadline = time.monotonic() + timeout
        while self.init_pid() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"host {self.hostname}: no init process")
            time.sleep(0.1)

    def init_pid(self) -> int | None:
        """The init's pid as this (the outer) PID namespace numbers it: unshare's child."""
        if self.init is None or self.init.poll() is not None:
            return None
        try:
            children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children").read_text()
        except OSError:
            return None
        return int(children.split()[0]) if children.split() else None

    @property
    def up(self) -> bool:
        return self.init_pid() is not None

    @property
    def prefix(self) -> tuple[str, ...]:
        """Put in front of a command to run it on this host (its namespaces, its files)."""
        pid = self.init_pid()
        if pid is None:
            raise RuntimeError(f"host {self.hostname} is down")
        namespaces = ("--net", "--uts", "--pid", "--mount")
        return ("nsenter", f"--target={pid}", *namespaces, f"--wd={self.root}", "--")

    def processes(self) -> list[int]:
        """Pids (outer numbering) of every live process of this host, its init first."""
        init = self.init_pid()
        if init is None:
            return []
        try:
            mine = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return []
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(proc / "ns" / "pid") == mine and not _zombie(proc):
                    found.append(int(proc.name))
        return sorted(found, key=lambda pid: pid != init)

    def kill_processes(self) -> int:
        """SIGKILL every process of the host but its init; returns how many were killed."""
        init = self.init_pid()
        victims = [pid for pid in self.processes() if pid != init]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(victims)

    def power_off(self, timeout: float = 30) -> None:
        """SIGKILL the init: the kernel kills every process of the host's PID namespace."""
        init = self.init_pid()
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
        if self.init is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.init.wait(timeout)
            if self.init.poll() is None:
                self.init.kill()
                self.init.wait(timeout)
            if self.init.stdout is not None:
                self.init.stdout.close()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (outer pids), parents first."""
    found, index = [pid], 0
    while index < len(found):
        parent = found[index]
        with contextlib.suppress(OSError):
            found += [
                int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            ]
        index += 1
    return found


def _zombie(proc: Path) -> bool:
    stat = (proc / "stat").read_text()
    return stat[stat.rindex(")") + 2 :].startswith("Z")


@dataclass
class TwoHosts:
    """Hosts A and B; :meth:`close` removes everything the fixture made."""

    a: Host
    b: Host
    names: list[str] = field(default_factory=list)  # namespaces made so far
    link: str | None = None  # one end of the veth pair, once made

    def close(self) -> None:
        for host in (self.b, self.a):
            host.power_off()
        for name in self.names:
            _ip("netns", "del", name)  # takes the veth ends inside it along
        if self.link is not None and _ip("link", "show", self.link).returncode == 0:
            _ip("link", "del", self.link)  # still here: made but not yet moved
        for host in (self.a, self.b):
            shutil.rmtree(host.root, ignore_errors=True)


def skip_reason() -> str | None:
    """Why this machine cannot make the two hosts, or None when it can."""
    if os.geteuid() != 0:
        return "the two-host test bed needs root (network, UTS and PID namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the two-host test bed needs {', '.join(missing)} (iproute2, util-linux)"
    probe = f"effnas-probe-{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"cannot make a network namespace: `ip netns add` says {made.stderr.strip()!r}"
    _ip("netns", "del", probe)
    return None


def make_two_hosts() -> TwoHosts:
    """Namespaces ``effnas-<pid>-a`` / ``-b`` joined by a veth pair; both hosts booted."""
    tag = str(os.getpid())
    hosts = []
    for index, letter in enumerate("ab", start=1):
        root = Path(tempfile.mkdtemp(prefix=f"effnas-h{letter}-"))  # short: Ray's socket paths
        root.chmod(0o755)  # the working directory of its commands, PostgreSQL's user's too
        hosts.append(
            Host(f"effnas-{tag}-{letter}", f"{SUBNET}.{index}", f"effnas-host-{letter}", root)
        )
    pair = TwoHosts(*hosts)
    try:
        ends = (f"ef{tag}a", f"ef{tag}b")  # interface names: at most 15 characters
        for host in hosts:
            _checked("netns", "add", host.netns)
            pair.names.append(host.netns)
        _checked("link", "add", ends[0], "type", "veth", "peer", "name", ends[1])
        pair.link = ends[0]
        for host, end in zip(hosts, ends, strict=True):
            _checked("link", "set", end, "netns", host.netns)
            _checked("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", end)
            _checked("-n", host.netns, "link", "set", "lo", "up")
            _checked("-n", host.netns, "link", "set", end, "up")
            routes = _checked("-n", host.netns, "route", "show")
            assert "default" not in routes, routes  # only the link's own /24: nowhere else
            host.boot()
    except BaseException:
        pair.close()
        raise
    return pair


def _checked(*args: str) -> str:
    result = _ip(*args)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class TwoHostBed:
    """Two hosts, host A's PostgreSQL, a Ray head on A and a worker node on B."""

    hosts: TwoHosts
    postgres: PostgresServer | None = None
    cluster: RayCluster | None = None

    @property
    def a(self) -> Host:
        return self.hosts.a

    @property
    def b(self) -> Host:
        return self.hosts.b

    @property
    def url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url()

    def env(self, host: Host) -> dict[str, str]:
        """What a process on ``host`` needs: this checkout first on its path, the cluster's auth
        token, and Ray's files in the host's own directory."""
        assert self.cluster is not None
        path = os.environ.get("PYTHONPATH")
        return {
            **self.cluster.env,
            "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "RAY_TMPDIR": str(host.root),
            "OMP_WAIT_POLICY": "PASSIVE",
        }

    def start_node(
        self, host: Host, nodes: int, timeout: float = 240, resources: str | None = None
    ) -> None:
        """``ray start`` on ``host``: the head on host A, a worker node joined to it elsewhere;
        one CPU, no GPU, no dashboard, a small object store, and the custom ``resources`` (a JSON
        object, e.g. '{"timer": 1}'). Returns once it has started and a driver on host A sees
        ``nodes`` alive nodes."""
        assert self.cluster is not None
        index = len(self.cluster.processes)
        node_dir = host.root / f"ray{index}"
        node_dir.mkdir()
        self.cluster.node_dirs.append(node_dir)
        if host is self.a:
            role = ["--head", f"--port={RAY_PORT}", "--include-dashboard=false"]
        else:
            role = [f"--address={self.cluster.address}"]
        args = [*role, "--num-cpus=1", "--num-gpus=0", f"--node-ip-address={host.address}"]
        args += ["--object-store-memory=200000000", f"--temp-dir={node_dir}"]
        if resources is not None:
            args.append(f"--resources={resources}")
        log = self.cluster.root / f"n{index}.log"
        self.cluster.processes.append(_ray_start(args, log, self.env(host), host.prefix))
        _wait_for_nodes(self.cluster, nodes, timeout, index)

    def driver(
        self, host: Host, args: list[str], name: str, env: dict[str, str] | None = None
    ) -> Driver:
        """``search run ARGS`` on ``host`` against host A's study and cluster (``env`` added to
        its environment); its output in ``NAME.err`` / ``NAME.out`` in the host's directory."""
        assert self.cluster is not None
        joined = [*args, "--storage", self.url, "--ray-address", self.cluster.address]
        environment = {**self.env(host), **(env or {})}
        return start_driver(joined, host.root, name, env=environment, prefix=host.prefix)

    @contextlib.contextmanager
    def cpu_taken(self, host: Host, timeout: float = 240) -> Iterator[None]:
        """While inside, the Ray node of ``host`` has no free CPU (a helper driver there holds
        it with an actor pinned to the node), so Ray places every new trial on the other node.
        Ray Tune asks for trial resources through placement groups, which do not prefer the
        driver's own node: this is how a test decides where a driver's trial runs."""
        assert self.cluster is not None
        helper = subprocess.Popen(
            [*host.prefix, sys.executable, "-c", _HOLD_CPU, self.cluster.address],
            env={**os.environ, **self.env(host)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert helper.stdout is not None
            deadline = time.monotonic() + timeout
            while True:
                ready = select.select([helper.stdout], [], [], 0.5)[0]
                if ready and helper.stdout.readline().strip() == b"held":
                    break
                if helper.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"could not take the CPU of {host.hostname}'s node")
            yield
        finally:
            for pid in _tree(helper.pid):  # nsenter and the helper inside the host: its actor goes
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            helper.wait(30)
            if helper.stdout is not None:
                helper.stdout.close()

    def python(self, host: Host, code: str, *args: str, timeout: float = 120) -> str:
        """Run a Python snippet on ``host``; its stdout (the test process is on neither host)."""
        result = subprocess.run(
            [*host.prefix, sys.executable, "-c", code, *args],
            env={**os.environ, **self.env(host)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"snippet on {host.hostname} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def close(self) -> None:
        """Stop the server, kill both hosts' processes, delete the namespaces and files."""
        if self.postgres is not None and self.a.up:
            stop_postgres(self.postgres)  # inside host A: its pids are A's
        self.hosts.close()
        if self.cluster is not None:
            stop_cluster(self.cluster, grace=1.0)  # nothing left to kill: reaps, removes files
        if self.postgres is not None:
            shutil.rmtree(self.postgres.root, ignore_errors=True)


def start_two_host_bed(b_resources: str | None = None) -> TwoHostBed:
    """Both hosts, PostgreSQL on host A's address, Ray head on A and a worker node on B (with
    the custom resources ``b_resources``, a JSON object, when given)."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run initdb as")
    bed = TwoHostBed(make_two_hosts())
    try:
        bed.postgres = start_postgres(pg_bin, bed.a.address, PG_PORT, bed.a.prefix)
        root = Path(tempfile.mkdtemp(prefix="effnas-hc-"))
        address = f"{bed.a.address}:{RAY_PORT}"
        bed.cluster = RayCluster(address, root, [], cluster_env(), prefix=bed.a.prefix)
        bed.start_node(bed.a, nodes=1)
        bed.start_node(bed.b, nodes=2, resources=b_resources)
    except BaseException:
        bed.close()
        raise
    return bed


@pytest.fixture
def two_host_bed() -> Iterator[TwoHostBed]:
    """A fresh test bed per test (skipped with the reason where it cannot be made)."""
    yield from _bed(None)


TIMER = "timer"  # the custom resource of host B's node in ``two_host_timing_bed``


@pytest.fixture
def two_host_timing_bed() -> Iterator[TwoHostBed]:
    """The test bed with host B's Ray node offering the resource ``timer`` (one timing node)."""
    yield from _bed(f'{{"{TIMER}": 1}}')


def _bed(b_resources: str | None) -> Iterator[TwoHostBed]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    bed = start_two_host_bed(b_resources)
    try:
        yield bed
    finally:
        bed.close()
