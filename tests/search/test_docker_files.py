"""docker/: the compose file and Dockerfile agree with the real `search` CLI.

What can go stale between runs of the slow container test (tests/search/test_containers.py,
which builds the images and starts the stack with podman): the compose file parses (PyYAML)
with the expected services, publishes on loopback only and carries no password, every
`search ...` command line written in docker/ parses with the real click CLI (options exist,
values convert), the image pins the project's torch version and copies every package, and the
image's entrypoint joins a driver to the Ray cluster and hands it the password file (run here
with stand-ins for `ray` and `search`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from search.cli import cli, main

DOCKER = Path(__file__).resolve().parents[2] / "docker"
# no password in a URL: the clients get it from the secret file (docker/entrypoint.sh)
PG_URL = re.compile(r"^postgresql\+psycopg://[^@/:]+@postgres:5432/effnas$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def _expand(text: str) -> str:
    """Compose's ``${NAME:-default}`` interpolation, with the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(text))


def parse_search(args: list[str]) -> click.Context:
    """Parse ``search ARGS`` down to the leaf command without running it (types converted)."""
    ctx = cli.make_context("search", list(args))
    command: click.Command = cli
    remaining = list(args)
    while isinstance(command, click.Group):
        assert remaining, f"`search {shlex.join(args)}` names no command"
        name, *remaining = remaining
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`search {shlex.join(args)}`: no command {name!r}"
        ctx = sub.make_context(name, remaining, parent=ctx)
        command = sub
    return ctx


def _search_command_lines() -> list[list[str]]:
    """Every `search` invocation written in docker/: the compose service without its own
    entrypoint (the image's is `search`), the Dockerfile's RUN checks and CMD, and the README's
    `docker compose run --rm search ...` lines."""
    lines: list[list[str]] = []
    for service in _compose()["services"].values():
        if "entrypoint" not in service and str(service.get("image", "")).endswith("effnas:latest}"):
            lines.append([_expand(arg) for arg in service["command"]])
    dockerfile = _dockerfile()
    for match in re.finditer(r"&& search ([^\n\\&>]+)", dockerfile):
        lines.append(shlex.split(match.group(1)))
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None
    lines.append(json.loads(cmd.group(1)))
    for line in (DOCKER / "README.md").read_text().splitlines():
        for start, marker in (
            ("docker compose", "run --rm search "),
            ("bash docker/podman-stack.sh", "podman-stack.sh search "),
        ):
            if line.startswith(start) and marker in line:
                tail = line.split(marker, 1)[1].split("#", 1)[0]
                if tail.strip():
                    lines.append(shlex.split(tail))
    return lines


def test_compose_has_the_cluster_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "head", "worker", "dashboard", "search"}
    assert _expand(services["postgres"]["image"]) == "postgres:16"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    head = services["head"]
    assert head["entrypoint"] == ["ray"]
    # trials never run on the head: no CPUs, no GPUs
    assert {"start", "--head", "--port=6379", "--num-cpus=0", "--block"} <= set(head["command"])
    worker = services["worker"]
    assert worker["entrypoint"] == ["ray"]
    assert {"start", "--address=head:6379", "--block"} <= set(worker["command"])
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert _expand(worker["deploy"]["replicas"]) == "1"
    dashboard = services["dashboard"]
    assert dashboard["entrypoint"] == ["effnas-entrypoint", "optuna-dashboard"]
    assert PG_URL.match(_expand(dashboard["command"][0]))
    assert "8080" in dashboard["command"]
    assert "127.0.0.1:8080:8080" in map(_expand, dashboard["ports"])
    # Ray needs the same Ray and Python on the driver and every node: one image for all.
    images = {services[name]["image"] for name in ("head", "worker", "dashboard", "search")}
    assert images == {"${EFFNAS_IMAGE:-effnas:latest}"}


def test_compose_publishes_on_loopback_and_holds_no_password() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert _expand(port).startswith("127.0.0.1:"), (name, port)
    # the password is a secret file, mounted into the database and its clients only
    assert _expand(compose["secrets"]["db_password"]["file"]) == "./secrets/db_password"
    for name in ("postgres", "dashboard", "search"):
        assert compose["services"][name]["secrets"] == ["db_password"], name
    for name in ("head", "worker"):
        assert "secrets" not in compose["services"][name], name
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    text = (DOCKER / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:" not in text and "PGPASSWORD:" not in text
    assert not re.search(r"://[^@/\s]+:[^@/\s]*@", text)  # no user:password@ in any URL


def test_search_job_targets_the_cluster_and_postgres() -> None:
    job = _compose()["services"]["search"]
    ctx = parse_search([_expand(arg) for arg in job["command"]])
    assert ctx.info_name == "run"
    assert ctx.params["ray_address"] == "head:6379"
    assert PG_URL.match(ctx.params["storage"])
    assert ctx.params["device"] == "cuda"
    assert ctx.params["gpus_per_trial"] == 1.0  # one trial per GPU across the workers
    assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert job["depends_on"]["head"]["condition"] == "service_healthy"


def test_every_search_command_in_docker_parses_with_the_real_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = _search_command_lines()
    assert len(lines) >= 5  # compose job, two RUN checks, CMD, README lines
    for args in lines:
        if "--help" in args:
            assert main(args) == 0, args
            assert "Usage: search" in capsys.readouterr().out
        else:
            parse_search(args)


def test_parse_search_rejects_unknown_options() -> None:
    with pytest.raises(click.NoSuchOption):
        parse_search(["macs", "--no-such-option", "1"])


def test_dockerfile_pins_torch_and_installs_postgres_extra() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.MULTILINE)
    # the CUDA index by default; empty: pip's own index and find-links (the CPU wheel)
    assert re.search(r"^ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cu\d+$", text, re.M)
    assert (
        'pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX:+--index-url "${TORCH_INDEX}"}' in text
    )
    assert 'pip install --no-deps ".[postgres]"' in text
    assert 'p["optional-dependencies"]["postgres"]' in text  # the dependency layer
    assert re.search(r'^ENTRYPOINT \["effnas-entrypoint"\]$', text, re.MULTILINE)
    # the base is a build argument: the CUDA runtime by default
    assert re.search(r"^ARG BASE=nvidia/cuda:[\w.-]+-ubuntu\d", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.MULTILINE)
    assert "dataset-fashion-mnist" in text


def test_dockerfile_copies_every_package_of_the_project() -> None:
    import tomllib

    pyproject = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())
    tops = {name.split(".")[0] for name in pyproject["tool"]["setuptools"]["packages"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", _dockerfile(), re.MULTILINE))
    assert tops == copied


def test_project_pins_the_same_torch() -> None:
    pyproject = (DOCKER.parent / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject
    assert '"psycopg[binary]>=3.1"' in pyproject


# ----- the image's entrypoint, with stand-ins for the programs it starts -----------------------
ENTRYPOINT = DOCKER / "entrypoint.sh"
STAND_IN = """#!/bin/sh
echo "NAME $*" >>"$CALLS"
if [ -n "${PGPASSWORD:-}" ]; then echo "NAME PGPASSWORD=$PGPASSWORD" >>"$CALLS"; fi
exit "${STAND_IN_EXIT:-0}"
"""


def entrypoint(
    tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run docker/entrypoint.sh with stand-in `ray`, `search` and `optuna-dashboard` that log
    their arguments (and the PGPASSWORD they got) to a file; returns the run and that log."""
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir(exist_ok=True)
    for name in ("ray", "search", "optuna-dashboard"):
        (stand_ins / name).write_text(STAND_IN.replace("NAME", name))
        (stand_ins / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.unlink(missing_ok=True)
    environment = {
        "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(DOCKER.parent),
        "CALLS": str(calls),
        "TMPDIR": str(tmp_path),
        "EFFNAS_DB_PASSWORD_FILE": str(tmp_path / "no-such-file"),
        **env,
    }
    run = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return run, calls.read_text().splitlines() if calls.exists() else []


JOIN = "ray start --address=head:6379 --num-cpus=0 --num-gpus=0 --disable-usage-stats"


@pytest.mark.parametrize("address", [["--ray-address", "head:6379"], ["--ray-address=head:6379"]])
def test_a_driver_joins_the_cluster_as_a_node_without_resources(
    tmp_path: Path, address: list[str]
) -> None:
    args = ["run", *address, "--storage", "sqlite:///x.db"]
    run, calls = entrypoint(tmp_path, *args, EFFNAS_JOIN_RAY="1")
    assert run.returncode == 0, run.stderr
    assert calls == [JOIN, f"search {' '.join(args)}"]


def test_other_commands_and_a_node_here_do_not_join(tmp_path: Path) -> None:
    run, calls = entrypoint(tmp_path, "report", "--study", "s", EFFNAS_JOIN_RAY="1")
    assert run.returncode == 0 and calls == ["search report --study s"]
    driver = ["run", "--ray-address", "head:6379"]
    assert entrypoint(tmp_path, *driver, EFFNAS_JOIN_RAY="0")[1] == [f"search {' '.join(driver)}"]
    # unset: no joining where a raylet already runs (a process named "raylet")
    raylet = tmp_path / "raylet"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", raylet)
    process = subprocess.Popen([str(raylet), "60"])
    try:
        assert entrypoint(tmp_path, *driver)[1] == [f"search {' '.join(driver)}"]
    finally:
        process.kill()
        process.wait()


def test_a_failed_join_is_one_error_line(tmp_path: Path) -> None:
    run, calls = entrypoint(
        tmp_path, "run", "--ray-address", "head:6379", EFFNAS_JOIN_RAY="1", STAND_IN_EXIT="1"
    )
    assert run.returncode == 2 and calls == [JOIN]  # search never started
    assert run.stderr.splitlines()[-1] == (
        "error: cannot join the Ray cluster at head:6379 as the driver's node (above)"
    )


def test_the_password_file_becomes_pgpassword(tmp_path: Path) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("s3cret\n")
    run, calls = entrypoint(tmp_path, "studies", EFFNAS_DB_PASSWORD_FILE=str(secret))
    assert run.returncode == 0 and calls == ["search studies", "search PGPASSWORD=s3cret"]
    # a PGPASSWORD already set wins
    _, calls = entrypoint(
        tmp_path, "studies", EFFNAS_DB_PASSWORD_FILE=str(secret), PGPASSWORD="given"
    )
    assert calls == ["search studies", "search PGPASSWORD=given"]


def test_the_dashboard_starts_on_a_database_without_a_study(tmp_path: Path) -> None:
    # optuna-dashboard itself exits on a database without Optuna's tables: they are made first
    db = tmp_path / "empty.db"
    url = f"sqlite:///{db}"
    run, calls = entrypoint(tmp_path, "optuna-dashboard", url, "--port", "8080")
    assert run.returncode == 0, run.stderr
    assert calls == [f"optuna-dashboard {url} --port 8080"]
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("studies",) in tables and ("version_info",) in tables
    # a database that does not answer: one line, the password masked, no dashboard
    down = "postgresql+psycopg://effnas:s3cret@127.0.0.1:1/effnas"
    run, calls = entrypoint(tmp_path, "optuna-dashboard", down, EFFNAS_DB_WAIT_S="0")
    assert run.returncode != 0 and calls == []
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: the study database postgresql+psycopg://effnas:***@127.0.0.1")
    assert "s3cret" not in run.stderr
