"""docker/: the compose file and Dockerfile agree with the real `search` CLI.

Docker cannot run on the development machine, so these tests check what can go stale without
it: the compose file parses (PyYAML) with the expected services, every `search ...` command line
written in docker/ parses with the real click CLI (options exist, values convert), and the image
pins the project's torch version.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from search.cli import cli, main

DOCKER = Path(__file__).resolve().parents[2] / "docker"
PG_URL = re.compile(r"^postgresql\+psycopg://[^@/]+@postgres:5432/effnas$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def _expand(text: str) -> str:
    """Compose's ``${NAME:-default}`` interpolation, with the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


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
        marker = "run --rm search "
        if line.startswith("docker compose") and marker in line:
            tail = line.split(marker, 1)[1].split("#", 1)[0]
            if tail.strip():
                lines.append(shlex.split(tail))
    return lines


def test_compose_has_the_cluster_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "head", "worker", "dashboard", "search"}
    assert services["postgres"]["image"] == "postgres:16"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    head = services["head"]
    assert head["entrypoint"] == ["ray"]
    assert {"start", "--head", "--port=6379", "--block"} <= set(head["command"])
    worker = services["worker"]
    assert worker["entrypoint"] == ["ray"]
    assert {"start", "--address=head:6379", "--block"} <= set(worker["command"])
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    dashboard = services["dashboard"]
    assert dashboard["entrypoint"] == ["optuna-dashboard"]
    assert PG_URL.match(_expand(dashboard["command"][0]))
    assert "8080" in dashboard["command"]
    assert "127.0.0.1:8080:8080" in dashboard["ports"]
    # Ray needs the same Ray and Python on the driver and every node: one image for all.
    images = {services[name]["image"] for name in ("head", "worker", "dashboard", "search")}
    assert images == {"${EFFNAS_IMAGE:-effnas:latest}"}


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
    assert 'pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"' in text
    assert "download.pytorch.org/whl/cu" in text
    assert '".[postgres]"' in text
    assert re.search(r'^ENTRYPOINT \["search"\]$', text, re.MULTILINE)
    assert re.search(r"^FROM nvidia/cuda:[\w.-]+-ubuntu\d", text, re.MULTILINE)
    assert "dataset-fashion-mnist" in text


def test_project_pins_the_same_torch() -> None:
    pyproject = (DOCKER.parent / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject
    assert '"psycopg[binary]>=3.1"' in pyproject
