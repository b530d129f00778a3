"""The tools at scale: `search report`, `best` and `studies` on a 10,000-trial study, and
optuna-dashboard opening it.

Pads a study with ``--trials`` trained trials of this search (``search.driver.padding``: with
the infeasible candidates met on the way, about twice as many rows) unless ``--storage`` already
holds study ``--study``, then runs each command in its own process, ``--repeats`` times: wall
time, peak memory (the child's maximum resident set) and, for the report, its size.
``--before DIR`` runs the same commands with the code of another checkout (e.g. the commit
before this work) on the same database, for the ratio. Then optuna-dashboard serves the database
and headless Chromium takes a screenshot of the study's page (``--screenshot``).

    PYTHONPATH=. python benchmarks/scale_tools.py --trials 10000 --before /tmp/old \\
        --screenshot benchmarks/results/dashboard_10k.png --json tools.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def make_study(url: str, study: str, trials: int) -> None:
    """A study of this search padded to ``trials`` trained trials."""
    from search.driver.padding import pad, padding_trials
    from search.driver.run import run_search
    from search.driver.simulated import SimulatedExecutor
    from search.study.database import open_storage

    config = scale.search_config(study, url)
    run_search(config, io.StringIO(), SimulatedExecutor(scale.SOURCE, concurrency=8))
    made = padding_trials(config, scale.CLASSES, trials, scale.SOURCE, seed=1)
    storage = open_storage(url)
    pad(storage, storage.get_study_id_from_name(study), made)


def measure(url: str, study: str, code: Path, repeats: int, folder: Path) -> dict[str, Any]:
    commands = {
        "report": ["report", "--study", study, "--storage", url, "--out", "report.html"],
        "best": ["best", "--study", study, "--storage", url],
        "studies": ["studies", "--storage", url],
    }
    figures: dict[str, Any] = {}
    for name, argv in commands.items():
        runs = [_isolated(argv, code, folder) for _ in range(repeats)]
        seconds = [s for s, _ in runs]
        figures[name] = {
            "seconds_median": statistics.median(seconds),
            "seconds": seconds,
            "peak_rss_mib": max(m for _, m in runs) / 2**20,
        }
    figures["report"]["bytes"] = (folder / "report.html").stat().st_size
    return figures


def _isolated(argv: list[str], code: Path, folder: Path) -> tuple[float, int]:
    """One command in a fresh helper process, so its peak memory is its own."""
    probe = subprocess.run(
        [sys.executable, __file__, "--one", str(code), str(folder), json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, peak = json.loads(probe.stdout.strip().splitlines()[-1])
    return float(seconds), int(peak)


def one(code: Path, folder: Path, argv: list[str]) -> None:
    """Helper process: run one command, print [seconds, its peak resident bytes]."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "search.cli", *argv],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"search {argv[0]} failed: {done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps([seconds, peak]))


def dashboard_screenshot(url: str, target: Path) -> dict[str, Any]:
    """optuna-dashboard on ``url``; headless Chromium's screenshot of the first study."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return {"skipped": "no Chromium (apt-get install chromium)"}
    port = scale._free_port()
    server = subprocess.Popen(
        ["optuna-dashboard", url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    try:
        api = f"http://127.0.0.1:{port}/api/studies"
        for _ in range(300):
            try:
                with urllib.request.urlopen(api, timeout=60) as answer:
                    studies = json.loads(answer.read())["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        else:
            return {"failed": "optuna-dashboard did not answer"}
        served = time.perf_counter() - started
        study_id = studies[0]["study_id"]
        page = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study_id}?after=0", timeout=600
        ) as answer:
            detail = json.loads(answer.read())
        fetched = time.perf_counter() - started
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                "--window-size=1400,1800",
                # 5 s of the page's own time; time spent waiting for the dashboard's answers
                # does not count, so the study's figures are drawn (its polling is not awaited)
                "--virtual-time-budget=5000",
                f"--screenshot={target.resolve()}",
                page,
            ],
            capture_output=True,
            timeout=1800,
            check=False,
        )
        shot = time.perf_counter() - started
        return {
            "served_after_s": served,
            "study_api_after_s": fetched,
            "trials_in_api": len(detail.get("trials", [])),
            "screenshot_after_s": shot,
            "screenshot": str(target),
            "screenshot_bytes": target.stat().st_size if target.exists() else 0,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--one"]:
        one(Path(argv[1]), Path(argv[2]), json.loads(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--storage", help="a database holding --study already")
    parser.add_argument("--study", default="big")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.storage or f"sqlite:///{Path(folder) / 'tools.db'}"
        if not args.storage:
            make_study(url, args.study, args.trials)
        result: dict[str, Any] = {"environment": scale.environment()}
        result["this work"] = measure(url, args.study, ROOT, args.repeats, Path(folder))
        if args.before:
            result["before"] = measure(url, args.study, args.before, args.repeats, Path(folder))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str))
        if args.screenshot:
            try:
                result["dashboard"] = dashboard_screenshot(url, args.screenshot)
            except (OSError, subprocess.SubprocessError) as exc:
                result["dashboard"] = {"failed": str(exc)}
    result["environment"]["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
