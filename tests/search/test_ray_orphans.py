"""A killed driver's Ray agents are ended by the next driver, and a live session is never touched.

The first test stands in for Ray with ``sleep`` processes titled as Ray titles its processes
(``exec -a``): a ``ray::`` process holding a log file of a session that no raylet names is an
orphan; one whose session has a raylet (any process whose argv[0] is ``.../raylet``) is not. The
second runs real Ray: a driver killed with SIGKILL leaves its dashboard and runtime-env agents
behind, a third driver starts, proceeds and ends them, and a second, live driver's session keeps
every process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.driver.ray_orphans import (
    find_orphans,
    live_sessions,
    ray_process_sessions,
    reap_orphans,
)
from search.driver.ray_session import DRIVER_LOG
from tests.fixtures_driver import wait_until


def titled(title: str, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """A sleeping process whose argv starts with ``title`` and ends with ``args``, holding
    ``log`` open (as Ray's processes hold their log files) when given."""
    redirect = f' 3>>"{log}"' if log else ""
    sleep = f'"{sys.executable}" -c "import time; time.sleep(120)"'
    script = f'exec -a "$0" {sleep} "$@"{redirect}'
    return subprocess.Popen(["bash", "-c", script, title, *args], start_new_session=True)


def test_orphans_are_the_ray_processes_of_sessions_without_a_raylet(ray_tmp: Path) -> None:
    sessions = {name: ray_tmp / name / "logs" for name in ("session_dead_1", "session_live_2")}
    for logs in sessions.values():
        logs.mkdir(parents=True)
    sleep_on_path = ray_tmp / "bin"
    sleep_on_path.mkdir()
    processes = [
        titled("ray::DashboardAgent", log=sessions["session_dead_1"] / "dashboard_agent.log"),
        titled("ray::IDLE", log=sessions["session_live_2"] / "worker.out"),
        titled(str(sleep_on_path / "raylet"), f"--log_dir={sessions['session_live_2']}"),
        titled("ray::Unrelated"),  # holds no file of a session: not Ray's of this root
    ]
    orphan, live_worker, raylet, unrelated = processes
    try:
        wait_until(lambda: len(ray_process_sessions(ray_tmp)) == 2, 10, [], "titled processes")
        assert live_sessions(ray_tmp) == {"session_live_2"}
        assert find_orphans(ray_tmp) == [orphan.pid]
        started = time.monotonic()
        assert reap_orphans(ray_tmp, grace_s=2.0) == [orphan.pid]
        assert orphan.wait(5) == -signal.SIGTERM and time.monotonic() - started < 3
        assert all(p.poll() is None for p in (live_worker, raylet, unrelated))
        raylet.kill()
        raylet.wait()  # the live session's raylet is gone: its worker is an orphan now
        assert find_orphans(ray_tmp) == [live_worker.pid]
    finally:
        for process in processes:
            process.kill()
            process.wait()


DRIVER = """
import sys, time
import ray
from search.driver.ray_session import ray_session
with ray_session(None, num_cpus=1, num_gpus=0, object_store_bytes=128 * 2**20):
    print("up", ray.get(ray.put(7)), flush=True)
    if sys.argv[1] == "stay":
        time.sleep(600)
"""


def start_driver(mode: str, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, mode],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def session_of(driver: int, root: Path) -> dict[int, str]:
    """The driver's Ray processes: its session directory's name ends in its pid."""
    return {
        pid: session
        for pid, session in ray_process_sessions(root).items()
        if session.endswith(f"_{driver}")
    }


def agents_of(driver: int, root: Path) -> list[int]:
    titles = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
    return [pid for pid in session_of(driver, root) if _title(pid).startswith(titles)]


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_driver_after_a_killed_one_proceeds_and_ends_its_agents(
    ray_tmp: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0"}
    root = ray_tmp / "ray"
    live = start_driver("stay", env, tmp_path / "live.out")
    killed = start_driver("stay", env, tmp_path / "killed.out")
    try:
        for out in (tmp_path / "live.out", tmp_path / "killed.out"):
            up = f"{out.name} saying up"
            wait_until(lambda out=out: "up 7" in out.read_text(), 300, [], up)
        wait_until(
            lambda: len(agents_of(killed.pid, root)) == 2, 120, [], "the killed one's agents"
        )
        agents = agents_of(killed.pid, root)
        kept = sorted(session_of(live.pid, root))
        assert len(agents_of(live.pid, root)) == 2

        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        killed_session = session_of(killed.pid, root)[agents[0]]
        wait_until(lambda: killed_session not in live_sessions(root), 60, [], "its raylet gone")
        assert all(alive(pid) for pid in agents), "Ray ended the agents by itself"

        started = time.monotonic()
        third = subprocess.run(
            [sys.executable, "-c", DRIVER, "once"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        took = time.monotonic() - started
        assert third.returncode == 0 and "up 7" in third.stdout, third.stdout + third.stderr
        assert not any(alive(pid) for pid in agents), f"agents {agents} outlived a new driver"
        assert all(alive(pid) for pid in kept), "a live session lost a process"
        logs = list(root.glob(f"session_2*/logs/{DRIVER_LOG}"))  # not session_latest
        ended = [log for log in logs if "processes of dead Ray sessions" in log.read_text()]
        assert len(ended) == 1, logs
        print(f"third driver up and down in {took:.1f} s; ended {agents}")
    finally:
        for driver in (live, killed):
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
        for pid in ray_process_sessions(root):  # whatever either left behind
            os.kill(pid, signal.SIGKILL)
