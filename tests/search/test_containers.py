"""The image and the compose stack, built and run for real (podman; tests/fixtures_containers.py).

``docker/build-local.sh`` builds the CPU image and the PostgreSQL image, ``docker/podman-stack.sh
up`` starts docker/compose.yaml (PostgreSQL, a Ray head, two Ray workers of one CPU each,
optuna-dashboard), and every `search` command runs in a driver container joined to the cluster:

1. the quick preset's search: its trials train on the two worker containers (the ``node`` attr
   of each trial, mapped to the container with that address), its study is in the PostgreSQL
   container, optuna-dashboard's HTTP API answers for it, and `search report` run in a container
   writes the report to the mounted folder;
2. a worker container killed mid-trial (``podman kill``: the machine lost at once): that trial is
   one FAIL line naming the lost node, and the search finishes on the other worker;
3. the database password is in no container's log or configuration, no driver output, no file
   of the output folder and no Ray log; the stack listens on the host only on the three
   loopback ports the README names.

The figures (times, trials per worker, counts, the API's answer, the listening sockets) are
printed (``-s``) for docker/README.md. Run with ``python -m pytest -m "slow and containers" -s``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: tests.fixtures_*
from tests.fixtures_containers import STORAGE, Stack, podman, stack, tar_texts

__all__ = ["stack"]  # fixture used by name

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(3600)]

TRAINED = ("complete", "pruned")
WAIT_S = 1200  # two busy cores: a container start, Ray joining, four trials
QUICK = ["run", "--preset", "quick", "--ray-address", "head:6379", "--storage", STORAGE]
QUICK += ["--device", "cpu", "--concurrency", "2"]  # one trial per worker at a time
FAILED = r"^trial (\d+) failed: (node died: .*?) \|"


def worker_names(stack: Stack) -> dict[str, str]:
    """Ray node address -> worker container name, for the workers running now."""
    names = [stack.container("worker", n) for n in (1, 2)]
    return {stack.ip(name): name for name in names if stack.ip(name)}


def wait_for(condition: object, what: str, timeout: float = WAIT_S) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_quick_search_runs_through_the_stack(stack: Stack) -> None:
    study, workers = "quick-stack", worker_names(stack)
    started = time.monotonic()
    driver = stack.driver([*QUICK, "--study", study], "quick")
    assert driver.wait(WAIT_S) == 0, driver.stderr()[-4000:]
    search_s = time.monotonic() - started
    err = driver.stderr()
    assert f"study '{study}': 4/4 trials done" in err, err[-4000:]
    assert "Traceback" not in err, err[-4000:]

    trials = stack.trials(study)
    trained = [t for t in trials if t["status"] in TRAINED]
    per_worker = Counter(workers.get(t["node"], f"not a worker: {t['node']}") for t in trained)
    counts = stack.sql(
        "SELECT t.state, count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id"
        f" WHERE s.study_name = '{study}' GROUP BY t.state ORDER BY 1"
    )
    summaries = stack.api("/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == study]
    detail = stack.api(f"/api/studies/{summary['study_id']}?after=0")
    api_trials = [(t["number"], t["state"]) for t in detail["trials"]]

    report = stack.script("search", "report", "--storage", STORAGE, "--study", study,
                          "--out", f"{study}.html")  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    html = stack.out / f"{study}.html"

    print(f"\nquick search through the stack: {search_s:.0f} s (driver container included)")
    print(f"trials per worker container: {dict(per_worker)}; by trial: "
          f"{[(t['number'], workers.get(t['node'])) for t in trials]}")  # fmt: skip
    print(f"PostgreSQL (psql in {stack.container('postgres')}): {counts}")
    print(
        f"optuna-dashboard /api/studies: study_id {summary['study_id']}, "
        f"directions {summary['directions']}; /api/studies/{summary['study_id']}: {api_trials}"
    )
    print(f"report: {html} ({html.stat().st_size:,} bytes)")

    assert len(trained) == 4 and len(trials) >= 4, trials
    assert set(per_worker) == set(workers.values()), per_worker  # both workers trained
    assert dict(counts)["COMPLETE"] == str(sum(t["state"] == "COMPLETE" for t in trials))
    assert sorted(n for n, _ in api_trials) == [t["number"] for t in trials]
    assert html.stat().st_size > 100_000 and study in html.read_text()


def test_a_killed_worker_is_one_fail_line_and_the_search_finishes(stack: Stack) -> None:
    study, victim = "lost-worker", stack.container("worker", 2)
    workers = worker_names(stack)
    driver = stack.driver([*QUICK, "--subset", "1000", "--study", study], "lost")
    wait_for(lambda: stack.training_here(victim), f"a trial training in {victim}")
    killed_at = time.monotonic()
    podman("kill", victim)  # SIGKILL: the machine gone at once, no draining
    failed = wait_for(lambda: re.search(FAILED, driver.stderr(), re.MULTILINE), "the FAIL line")
    noticed_s = time.monotonic() - killed_at
    assert driver.wait(WAIT_S) == 0, driver.stderr()[-4000:]
    finished_s = time.monotonic() - killed_at

    trials = stack.trials(study)
    states = Counter(t["status"] for t in trials)
    nodes = Counter(workers.get(t["node"]) for t in trials if t["status"] in TRAINED)
    err = driver.stderr()
    assert isinstance(failed, re.Match)
    victim_ip = next(ip for ip, name in workers.items() if name == victim)
    print(f"\nkilled {victim} (Ray node {victim_ip}) mid-trial:")
    print(f"FAIL line after {noticed_s:.1f} s, search done {finished_s:.0f} s after the kill")
    print(f"line: {failed.group(0)}")
    print(f"final counts (PostgreSQL): {dict(states)}; trained per worker: {dict(nodes)}")

    number, reason = int(failed.group(1)), failed.group(2)
    assert f"Ray node {victim_ip} " in reason, reason
    lost = next(t for t in trials if t["number"] == number)
    assert (lost["state"], lost["reason"]) == ("FAIL", reason)
    assert states["failed"] == 1 and sum(states[s] for s in TRAINED) == 3, trials
    assert len(re.findall(r"^trial \d+ failed: ", err, re.MULTILINE)) == 1
    assert f"study '{study}': 4/4 trials done" in err and "Traceback" not in err, err[-4000:]


def test_no_password_anywhere_and_only_loopback_ports(stack: Stack) -> None:
    # every text the stack produced: container logs and configurations (podman inspect), the
    # drivers' and scripts' output, the output folder (report, logs), Ray's logs on the nodes
    secret = stack.password.encode()
    texts: dict[str, bytes] = {}
    for name, log in stack.logs().items():
        texts[f"podman logs {name}"] = log.encode()
        texts[f"podman inspect {name}"] = podman("inspect", name).encode()
    for path in [*stack.root.glob("*.out"), *stack.root.glob("*.err"), *stack.out.rglob("*")]:
        if path.is_file():
            texts[str(path)] = path.read_bytes()
    for name in (stack.container("head"), stack.container("worker", 1)):
        for member, data in tar_texts(stack.ray_logs(name)):
            texts[f"{name}:/tmp/ray/{member}"] = data
    hits = [where for where, data in texts.items() if secret in data]
    size = sum(map(len, texts.values()))
    print(f"\npassword grep: {len(texts)} texts, {size / 1e6:.1f} MB, {len(hits)} hits {hits}")
    assert len(texts) > 20 and hits == []

    # the host's listening sockets that belong to the stack: only its conmon processes listen
    # on the host (every container has its own network namespace), on the three loopback ports
    running = podman("ps", "--filter", f"label=io.podman.compose.project={stack.project}",
                     "--format", "{{.Names}}").split()  # fmt: skip
    conmon = {podman("inspect", "--format", "{{.State.ConmonPid}}", n).strip() for n in running}
    listening = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ours = [line for line in listening if any(f"pid={pid}," in line for pid in conmon)]
    on_our_ports = [
        line for line in listening if any(f":{port} " in line for port in stack.ports.values())
    ]
    print("listening sockets of the stack (ss -ltnp):\n" + "\n".join(ours))
    addresses = {line.split()[3] for line in ours}
    assert addresses == {f"127.0.0.1:{port}" for port in stack.ports.values()}, ours
    assert sorted(on_our_ports) == sorted(ours), on_our_ports
