"""CUDA MPS for trials that share a GPU (``--gpus-per-trial`` < 1), started and stopped per search.

Why: Ray's fractional GPUs only let several trial processes open a context on one GPU; without
MPS the GPU time-slices between those contexts, so four small trials together run about as fast
as one. Under the Multi-Process Service (NVIDIA, https://docs.nvidia.com/deploy/mps/) the
kernels of all client processes share the GPU at the same time, which is what small search
trials need: one paper-preset trial keeps an H100 only a few per cent busy.

How: ``nvidia-cuda-mps-control -d`` starts the control daemon with ``CUDA_MPS_PIPE_DIRECTORY`` and
``CUDA_MPS_LOG_DIRECTORY`` in a private temporary directory, so it never meets a system-wide
daemon or another user's. Both variables are exported in this process before ``ray.init``, so
the local raylet and every worker it starts inherit them, and a CUDA context opened by a trial
connects to this daemon. ``echo quit | nvidia-cuda-mps-control`` (same variables) stops it when the
search ends, however it ends; the variables and the directory are removed.

Decisions:
- a missing binary, or a daemon that does not start, is one warning line and the search runs
  with plain time-slicing: MPS is a speed-up, and a GPU without the MPS tools still trains;
- ``EFFNAS_MPS=0`` turns it off (e.g. when an administrator's daemon already serves the GPUs);
- on a joined cluster (``--ray-address``) the workers' environment was fixed by whoever ran
  ``ray start``, so MPS must be started on each GPU node before ``ray start`` there::

      export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
      nvidia-cuda-mps-control -d && ray start --address=HEAD:6379

  and the driver only prints that hint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

CONTROL = "nvidia-cuda-mps-control"
ENV_KEYS = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")
OPT_OUT = "EFFNAS_MPS"
JOINED_HINT = (
    "note: trials share GPUs on a joined Ray cluster; for concurrent kernels start CUDA MPS on "
    "each GPU node before `ray start` (nvidia-cuda-mps-control -d), see search/driver/mps.py\n"
)


def wants_mps(device: str, gpus_per_trial: float) -> bool:
    """MPS pays off when several trials share one GPU."""
    return device == "cuda" and 0 < gpus_per_trial < 1 and os.environ.get(OPT_OUT, "1") != "0"


@contextmanager
def mps_for_trials(
    device: str, gpus_per_trial: float, ray_address: str | None, stream: TextIO
) -> Iterator[dict[str, str]]:
    """MPS around a search whose trials share GPUs; yields the MPS variables ({} when off)."""
    if not wants_mps(device, gpus_per_trial):
        yield {}
        return
    if ray_address:
        stream.write(JOINED_HINT)
        yield {}
        return
    with mps_daemon(stream) as env:
        yield env


@contextmanager
def mps_daemon(stream: TextIO) -> Iterator[dict[str, str]]:
    """Start a private MPS control daemon, export its variables, stop it on the way out."""
    binary = shutil.which(CONTROL)
    if binary is None:
        stream.write(
            f"warning: {CONTROL} not found, so trials sharing a GPU time-slice instead of running "
            "together; install the CUDA MPS tools (NVIDIA driver utilities) to run them at once\n"
        )
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="effnas-mps-"))
    env = {ENV_KEYS[0]: str(folder / "pipe"), ENV_KEYS[1]: str(folder / "log")}
    for path in env.values():
        Path(path).mkdir()
    started = _control(binary, ["-d"], env, None)
    if started is not None:
        stream.write(
            f"warning: {CONTROL} -d failed ({started}), so trials sharing a GPU time-slice "
            "instead of running together\n"
        )
        shutil.rmtree(folder, ignore_errors=True)
        yield {}
        return
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stopped = _control(binary, [], env, "quit\n")
        if stopped is not None:
            stream.write(f"warning: stopping the MPS daemon failed ({stopped})\n")
        _wait_for_exit(Path(env[ENV_KEYS[0]]) / f"{CONTROL}.pid")
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_exit(pid_file: Path, timeout: float = 10.0) -> None:
    """Until the daemon named in its pid file has exited (``quit`` returns before it has)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)


def _control(binary: str, args: list[str], env: dict[str, str], stdin: str | None) -> str | None:
    """Run the control binary; None on success, else a one-line reason."""
    try:
        done = subprocess.run(
            [binary, *args],
            input=stdin,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return " ".join(str(exc).split())[:200]
    if done.returncode != 0:
        output = " ".join((done.stderr or done.stdout).split())[:200]
        return f"exit code {done.returncode}: {output}" if output else f"exit {done.returncode}"
    return None
