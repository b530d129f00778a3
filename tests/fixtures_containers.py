"""The compose stack of docker/ for real, on podman: images built, containers started.

What is run is what a user runs: ``docker/build-local.sh`` builds the CPU image and the
PostgreSQL image (a debootstrap base, no registry), ``docker/podman-stack.sh`` starts
``docker/compose.yaml`` with podman-compose (PostgreSQL, a Ray head, two Ray workers,
optuna-dashboard) and runs ``search`` commands in one-off driver containers. Each stack has its
own project name (containers ``PROJECT_SERVICE_N``, network and database volume), its own free
loopback ports and its own password file and output folder in a temporary directory, so it
collides with nothing else on the machine; teardown removes its containers, network and volume.

Needs root (rootful podman: the stack's network and its loopback ports) and podman,
podman-compose and runc (plus debootstrap while the base image is not built); skipped with the
reason otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
TOOLS = ("podman", "podman-compose", "runc")
BASE_IMAGE = "localhost/effnas-base:bookworm"
WORKERS = 2
# the storage URL every driver and report uses: no password in it (the entrypoint sets PGPASSWORD)
STORAGE = "postgresql+psycopg://effnas@postgres:5432/effnas"
PODMAN_ENV = {"CONTAINERS_CONF": str(DOCKER / "podman" / "containers.conf")}


def skip_reason() -> str | None:
    """Why this machine cannot build and run the stack, or None when it can."""
    if os.geteuid() != 0:
        return "the container stack needs root (rootful podman: its network and loopback ports)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        listed = " ".join(missing)
        return f"the container stack needs {', '.join(missing)}: apt-get install {listed}"
    if shutil.which("debootstrap") is None and not podman_ok("image", "exists", BASE_IMAGE):
        return f"no {BASE_IMAGE} image and no debootstrap to make it: apt-get install debootstrap"
    return None


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``podman ARGS``' stdout (with the project's podman settings)."""
    result = subprocess.run(
        ["podman", *args],
        env={**os.environ, **PODMAN_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def podman_ok(*args: str) -> bool:
    return (
        subprocess.run(
            ["podman", *args], env={**os.environ, **PODMAN_ENV}, capture_output=True, check=False
        ).returncode
        == 0
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Driver:
    """A `search` command running in a driver container (``podman-stack.sh search ...``)."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    handles: list[IO[bytes]] = field(default_factory=list)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            for handle in self.handles:
                handle.close()


@dataclass
class Stack:
    """One running stack: its project name, ports, password and folders."""

    project: str
    root: Path
    ports: dict[str, int]
    password: str
    drivers: list[Driver] = field(default_factory=list)

    @property
    def out(self) -> Path:
        """Mounted at /work in every container: reports and logs land here."""
        return self.root / "out"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **PODMAN_ENV,
            "EFFNAS_PROJECT": self.project,
            "EFFNAS_OUT": str(self.out),
            "EFFNAS_DB_PASSWORD_FILE": str(self.root / "db_password"),
            "EFFNAS_WORKERS": str(WORKERS),
            "EFFNAS_PG_PORT": str(self.ports["postgres"]),
            "EFFNAS_DASHBOARD_PORT": str(self.ports["dashboard"]),
            "EFFNAS_RAY_DASHBOARD_PORT": str(self.ports["ray-dashboard"]),
        }

    def script(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``bash docker/podman-stack.sh ARGS``, its output captured (and kept for the grep)."""
        result = subprocess.run(
            ["bash", str(DOCKER / "podman-stack.sh"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        name = f"script-{len(list(self.root.glob('script-*')))}"
        (self.root / f"{name}.out").write_text(result.stdout)
        (self.root / f"{name}.err").write_text(result.stderr)
        return result

    def driver(self, args: list[str], name: str) -> Driver:
        """``search ARGS`` in a driver container, in the background."""
        out, err = self.root / f"{name}.out", self.root / f"{name}.err"
        handles = [out.open("wb"), err.open("wb")]
        process = subprocess.Popen(
            ["bash", str(DOCKER / "podman-stack.sh"), "search", *args],
            env=self.env(),
            stdout=handles[0],
            stderr=handles[1],
            start_new_session=True,
        )
        driver = Driver(process, out, err, handles)
        self.drivers.append(driver)
        return driver

    def container(self, service: str, number: int = 1) -> str:
        return f"{self.project}_{service}_{number}"

    def containers(self) -> list[str]:
        label = f"label=io.podman.compose.project={self.project}"
        return podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").split()

    def ip(self, container: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return podman("inspect", "--format", template, container).strip()

    def training_here(self, container: str) -> bool:
        """Whether a trial's worker process is training in ``container`` right now."""
        listing = podman("top", container, "args", check=False)
        return "ray::ImplicitFunc.train" in listing

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query run by psql in the PostgreSQL container (its trusted socket)."""
        text = podman(
            "exec", self.container("postgres"), "psql", "-U", "effnas", "-d", "effnas",
            "-At", "-F", "\t", "-c", query,
        )  # fmt: skip
        return [line.split("\t") for line in text.splitlines() if line]

    def trials(self, study: str) -> list[dict[str, Any]]:
        """The study's trials as PostgreSQL has them: number, state, status, node, reason."""

        def attr(key: str) -> str:
            return (
                f"(SELECT value_json FROM trial_user_attributes a WHERE a.trial_id = t.trial_id"
                f" AND a.key = '{key}')"
            )

        rows = self.sql(
            f"SELECT t.number, t.state, {attr('status')}, {attr('node')}, {attr('fail_reason')}"
            " FROM trials t JOIN studies s ON s.study_id = t.study_id"
            f" WHERE s.study_name = '{study}' ORDER BY t.number"
        )
        keys = ("status", "node", "reason")
        return [
            {"number": int(number), "state": state}
            | {
                key: json.loads(value) if value else None
                for key, value in zip(keys, attrs, strict=True)
            }
            for number, state, *attrs in rows
        ]

    def api(self, path: str) -> Any:
        """optuna-dashboard's HTTP API, from the host, through the published loopback port."""
        url = f"http://127.0.0.1:{self.ports['dashboard']}{path}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)

    def logs(self) -> dict[str, str]:
        """Every container's log (``podman logs``), stopped containers' too."""
        return {name: _log(name) for name in self.containers()}

    def ray_logs(self, container: str) -> bytes:
        """Ray's log files in a running container (/tmp/ray), as one byte string."""
        result = subprocess.run(
            ["podman", "exec", container, "tar", "-C", "/tmp/ray", "-c", "."],
            env={**os.environ, **PODMAN_ENV},
            capture_output=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            return b""
        return result.stdout

    def close(self) -> None:
        for driver in self.drivers:
            if driver.process.poll() is None:
                driver.process.kill()
                driver.wait(60)
        self.script("down", "-v", timeout=300)
        shutil.rmtree(self.root, ignore_errors=True)


def _log(name: str) -> str:
    result = subprocess.run(
        ["podman", "logs", name],
        env={**os.environ, **PODMAN_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


def tar_texts(archive: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, contents) of every file in a tar stream."""
    import io

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                yield member.name, handle.read()


def build_images() -> list[str]:
    """docker/build-local.sh; returns its summary lines (what it made, how long it took)."""
    result = subprocess.run(
        ["bash", str(DOCKER / "build-local.sh")],
        env={**os.environ, **PODMAN_ENV},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker/build-local.sh failed:\n{result.stderr[-4000:]}")
    return [line for line in result.stderr.splitlines() if line.startswith("build-local:")]


def start_stack() -> Stack:
    """A fresh stack on free loopback ports, up and answering."""
    root = Path(tempfile.mkdtemp(prefix="effnas-stack-"))
    password = secrets.token_hex(16)
    (root / "db_password").write_text(password)
    (root / "db_password").chmod(0o600)
    ports = {name: free_port() for name in ("postgres", "dashboard", "ray-dashboard")}
    stack = Stack(f"effnastest{os.getpid()}", root, ports, password)
    stack.out.mkdir()
    started = time.monotonic()
    result = stack.script("up", timeout=900)
    if result.returncode != 0:
        stack.close()
        raise RuntimeError(f"podman-stack.sh up failed:\n{result.stderr[-4000:]}")
    print(f"\nstack up in {time.monotonic() - started:.0f} s: {result.stderr.strip()}")
    return stack


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The images built and one stack started for the module's tests; removed afterwards."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    summary = build_images()
    print(f"\nimages ({time.monotonic() - started:.0f} s): " + "; ".join(summary))
    stack = start_stack()
    try:
        yield stack
    finally:
        stack.close()
        assert stack.containers() == [], "containers left behind"
