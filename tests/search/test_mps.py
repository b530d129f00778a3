"""CUDA MPS control around a search, with a stand-in ``nvidia-cuda-mps-control`` on PATH.

The machine running the default tests has no GPU and no MPS tools, so a small shell script
named ``nvidia-cuda-mps-control`` (first on PATH) records every call (its arguments, the MPS
variables it was given and what came on stdin) the way the real binary receives them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from search.driver.mps import ENV_KEYS, OPT_OUT, mps_daemon, mps_for_trials, wants_mps

FAKE = """#!/bin/sh
input=""
if [ "$#" -eq 0 ]; then input=$(cat); fi
echo "args=[$*] pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY stdin=[$input]" >> "{log}"
exit {code}
"""


# A stand-in that behaves like the real control binary: ``-d`` starts a daemon (its standard
# streams detached, so ``-d`` returns at once) that writes its pid file into the pipe directory
# and serves commands through a FIFO there; without arguments the binary is the client and sends
# each stdin line to the daemon. ``quit`` returns before the daemon has exited (it takes half a
# second to shut down), as with the real one. Calls and what the daemon was asked go to {log}.
DAEMON = """#!/bin/sh
pipe="$CUDA_MPS_PIPE_DIRECTORY"
echo "args=[$*]" >> "{log}"
if [ "$1" = "-d" ]; then
  mkfifo "$pipe/control"
  (
    echo "daemon: started" >> "{log}"
    while read -r command < "$pipe/control"; do
      echo "daemon: $command" >> "{log}"
      if [ "$command" = quit ]; then sleep 0.5; echo "daemon: exited" >> "{log}"; exit 0; fi
    done
  ) < /dev/null > /dev/null 2>&1 &
  echo $! > "$pipe/nvidia-cuda-mps-control.pid"
  exit 0
fi
while read -r command; do echo "$command" > "$pipe/control"; done
"""


def fake_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int = 0, script: str = FAKE
) -> Path:
    """Put a stand-in ``nvidia-cuda-mps-control`` (``FAKE`` or ``DAEMON``) first on PATH;
    returns the file it records its calls in."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "calls.log"
    binary = folder / "nvidia-cuda-mps-control"
    binary.write_text(script.format(log=log, code=code))
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return log


def test_a_daemon_is_asked_to_quit_and_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a stand-in daemon: it runs (its pid file names a live process) while the search
    does, receives ``quit`` on the way out, and has exited, not just been asked to, when the
    search goes on, although ``quit`` returned half a second before."""
    log = fake_control(tmp_path, monkeypatch, script=DAEMON)
    stream = io.StringIO()
    with mps_daemon(stream) as env:
        pipe = Path(env["CUDA_MPS_PIPE_DIRECTORY"])
        pid = int((pipe / "nvidia-cuda-mps-control.pid").read_text())
        os.kill(pid, 0)  # alive
        assert (pipe / "control").exists()
    lines = log.read_text().splitlines()
    assert lines == [
        "args=[-d]",
        "daemon: started",
        "args=[]",
        "daemon: quit",
        "daemon: exited",
    ]
    assert stream.getvalue() == "" and not pipe.parent.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_daemon_started_for_the_search_and_stopped_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_control(tmp_path, monkeypatch)
    stream = io.StringIO()
    with mps_daemon(stream) as env:
        pipe, logs = env["CUDA_MPS_PIPE_DIRECTORY"], env["CUDA_MPS_LOG_DIRECTORY"]
        assert os.environ["CUDA_MPS_PIPE_DIRECTORY"] == pipe  # what ray.init's workers inherit
        assert Path(pipe).is_dir() and Path(logs).is_dir()
        assert Path(pipe).parent.name.startswith("effnas-mps-")
        assert log.read_text().splitlines() == [f"args=[-d] pipe={pipe} log={logs} stdin=[]"]
    assert log.read_text().splitlines()[1] == f"args=[] pipe={pipe} log={logs} stdin=[quit]"
    assert all(key not in os.environ for key in ENV_KEYS)
    assert not Path(pipe).parent.exists() and stream.getvalue() == ""


def test_stopped_even_when_the_search_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_control(tmp_path, monkeypatch)
    with pytest.raises(KeyboardInterrupt), mps_daemon(io.StringIO()):
        raise KeyboardInterrupt
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["args=[-d]", "args=[]"]
    assert "stdin=[quit]" in log.read_text().splitlines()[1]


def test_missing_binary_is_one_warning_and_time_slicing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    stream = io.StringIO()
    with mps_daemon(stream) as env:
        assert env == {} and "CUDA_MPS_PIPE_DIRECTORY" not in os.environ
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: nvidia-cuda-mps-control not found")
    assert "time-slice" in lines[0]


def test_a_daemon_that_fails_to_start_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_control(tmp_path, monkeypatch, code=3)
    stream = io.StringIO()
    with mps_daemon(stream) as env:
        assert env == {}
    assert stream.getvalue().startswith("warning: nvidia-cuda-mps-control -d failed (exit 3)")
    assert len(log.read_text().splitlines()) == 1  # nothing to stop


def test_when_mps_is_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPT_OUT, raising=False)
    assert wants_mps("cuda", 0.25) and wants_mps("cuda", 0.5)
    assert not wants_mps("cuda", 1.0) and not wants_mps("cuda", 2) and not wants_mps("cpu", 0)
    monkeypatch.setenv(OPT_OUT, "0")
    assert not wants_mps("cuda", 0.25)


def test_search_level_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_control(tmp_path, monkeypatch)
    monkeypatch.delenv(OPT_OUT, raising=False)
    stream = io.StringIO()
    with mps_for_trials("cpu", 0.0, None, stream) as env:
        assert env == {}
    with mps_for_trials("cuda", 1.0, None, stream) as env:
        assert env == {}
    assert not log.exists()
    with mps_for_trials("cuda", 0.25, "10.0.0.1:6379", stream) as env:
        assert env == {}  # a joined cluster's workers were started by someone else
    assert "start CUDA MPS on each GPU node before `ray start`" in stream.getvalue()
    with mps_for_trials("cuda", 0.25, None, stream) as env:
        assert set(env) == set(ENV_KEYS)
    assert len(log.read_text().splitlines()) == 2


@pytest.mark.ray
def test_the_variables_reach_ray_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local Ray started inside the context (as run_search does) hands the MPS variables to its
    workers, and an OpenMP setting the user exported passes through unchanged."""
    import ray

    from search.driver.ray_session import ray_session

    fake_control(tmp_path, monkeypatch)
    monkeypatch.delenv(OPT_OUT, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    keys = (*ENV_KEYS, "OMP_WAIT_POLICY")

    @ray.remote(num_cpus=1)
    def seen() -> list[str | None]:
        return [os.environ.get(key) for key in keys]

    with (
        mps_for_trials("cuda", 0.25, None, io.StringIO()) as env,
        ray_session(None, num_cpus=1, num_gpus=0, object_store_bytes=128 * 2**20),
    ):
        assert ray.get(seen.remote()) == [*(env[key] for key in ENV_KEYS), "PASSIVE"]
    assert all(key not in os.environ for key in ENV_KEYS)
