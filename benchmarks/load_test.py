"""Nothing lost under load: drivers killed with SIGKILL and restarted while they share one study.

``--drivers`` driver processes (8) search one PostgreSQL study together until it has
``--trials`` trained trials (1,000), each running ``run_search`` with the inline executor and
simulated trials that sleep (``search.worker.curves.CurveTrial``, ``--pace`` seconds per epoch),
so a kill can land in a decision, in a trial or in a write. Every ``--kill-every`` seconds (on
average, exponentially spaced) one live driver is killed with SIGKILL and a new one started in
its place after a random pause. When the study has its trials, the drivers finish, and one last
clean driver resumes the study (recovering what the killed ones left RUNNING), the database is
checked:

- **no completed trial lost**: every "trial N complete" line any driver printed (after Optuna's
  tell returned, i.e. committed) is COMPLETE in the study with its values;
- **no network trained twice** where the no-repeat rule forbids it: the trained trials (COMPLETE
  or PRUNED, not infeasible) of the joint search build distinct networks (by resolved layout);
- **no live trial taken by another driver**: every trial failed as "interrupted" belonged to a
  driver that was killed, and no driver printed "lost: recovered by another driver";
- **trial numbers contiguous**, 0..n-1, each once; nothing left RUNNING or WAITING but the
  replays of interrupted trials the study had no room left for (queued for its next run).

    PYTHONPATH=. python benchmarks/load_test.py --json load.json
    PYTHONPATH=. python benchmarks/load_test.py --trials 60 --drivers 3 --kill-every 4   # smoke

In parts, on one server: ``--postgres URL --logs DIR --trials 500``, then the same with
``--trials 1000``: the second run resumes the study, and its check covers both (the drivers'
lines and the kills are kept in ``DIR``).

The lease is set short (``EFFNAS_LEASE_S``, 6 s): a killed driver's trials on this machine are
recovered at once by process id, but a trial killed before its driver attr was written can only
be recovered when its lease expires.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve()
COMPLETE_LINE = re.compile(r"^trial (\d+) complete: accuracy ([0-9.]+)")
LOST_LINE = re.compile(r"^trial (\d+) lost: ")
LEASE_S = "6"


@dataclass
class Driver:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class Chaos:
    """The drivers of this run, and the kills of every run that used the same log folder."""

    folder: Path
    drivers: list[Driver] = field(default_factory=list)
    kills: int = 0
    killed_pids: set[int] = field(default_factory=set)
    started: int = 0  # drivers started, earlier runs included

    @classmethod
    def load(cls, folder: Path) -> Chaos:
        saved = folder / "chaos.json"
        chaos = cls(folder)
        if saved.exists():
            data = json.loads(saved.read_text())
            chaos.kills, chaos.started = data["kills"], data["started"]
            chaos.killed_pids = set(data["killed_pids"])
        return chaos

    def save(self) -> None:
        pids = sorted(self.killed_pids)
        data = {"kills": self.kills, "started": self.started, "killed_pids": pids}
        (self.folder / "chaos.json").write_text(json.dumps(data))

    def start(self, url: str, study: str, trials: int, pace: float) -> Driver:
        driver = start(url, study, trials, pace, self.folder, self.started)
        self.drivers.append(driver)
        self.started += 1
        self.save()
        return driver


def start(url: str, study: str, trials: int, pace: float, folder: Path, index: int) -> Driver:
    log = folder / f"driver-{index}.log"
    env = {**os.environ, "EFFNAS_LEASE_S": LEASE_S, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(HERE), "--driver", url, study, str(trials), str(pace)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )
    return Driver(process, log)


def trained_count(url: str, study: str) -> int:
    from search.study.database import open_storage
    from search.study.reader import read_trials
    from search.study.schema import Counts

    storage = open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study)
    except KeyError:
        return 0
    return Counts.of(read_trials(storage, study_id)).done


def run(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    chaos = Chaos.load(folder)
    rng = random.Random(args.seed + chaos.started)
    started = time.monotonic()
    for _ in range(args.drivers):
        chaos.start(url, "load", args.trials, args.pace)
        time.sleep(0.5)
    next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
    while trained_count(url, "load") < args.trials:
        time.sleep(0.5)
        live = [d for d in chaos.drivers if d.process.poll() is None]
        if not live:
            break
        if time.monotonic() >= next_kill:
            victim = rng.choice(live)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            victim.killed = True
            chaos.kills += 1
            chaos.killed_pids.add(victim.process.pid)
            chaos.save()
            time.sleep(rng.uniform(0.0, 2.0))
            chaos.start(url, "load", args.trials, args.pace)
            next_kill = time.monotonic() + rng.expovariate(1 / args.kill_every)
    for driver in chaos.drivers:
        driver.process.wait()
    # one clean driver resumes: it recovers the trials killed drivers left RUNNING
    time.sleep(float(LEASE_S) + 1)
    chaos.start(url, "load", args.trials, args.pace).process.wait()
    return check(url, chaos, time.monotonic() - started)


def check(url: str, chaos: Chaos, wall: float) -> dict[str, Any]:
    """The four counts, read from the database and the drivers' own lines."""
    from optuna.trial import TrialState

    from search.study.database import open_storage
    from search.study.reader import read_trials
    from search.study.schema import REQUEUED_FROM, Counts, is_interrupted
    from space import ArchSpec, resolve

    storage = open_storage(url)
    trials = read_trials(storage, storage.get_study_id_from_name("load"))
    by_number = {t.number: t for t in trials}
    printed: dict[int, float] = {}
    lost: list[int] = []
    for log in sorted(chaos.folder.glob("driver-*.log")):  # earlier runs' drivers included
        for line in log.read_text(errors="replace").splitlines():
            if match := COMPLETE_LINE.match(line):
                printed[int(match.group(1))] = float(match.group(2))
            if match := LOST_LINE.match(line):
                lost.append(int(match.group(1)))
    missing = [
        n
        for n, accuracy in printed.items()
        if n not in by_number
        or by_number[n].state != TrialState.COMPLETE
        or abs(by_number[n].values[0] - accuracy) > 1e-4
    ]
    layouts = collections.Counter(
        resolve(ArchSpec.parse(t.user_attrs["spec"])).layout
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and t.user_attrs.get("status") != "infeasible"
        and t.user_attrs.get("stage") == "joint"
    )
    twice = sum(count - 1 for count in layouts.values() if count > 1)
    taken_alive = [
        t.number
        for t in trials
        if is_interrupted(t)
        and (t.user_attrs.get("driver") or {}).get("pid") not in chaos.killed_pids
        and "driver" in t.user_attrs
    ]
    numbers = sorted(by_number)
    counts = Counts.of(trials)
    # an interrupted trial's replay stays WAITING when the study reached its trials first: queued
    # for the next run, not lost; anything else still RUNNING or WAITING is
    interrupted = {t.number for t in trials if is_interrupted(t)}
    replays = [
        t.number
        for t in trials
        if t.state == TrialState.WAITING and t.user_attrs.get(REQUEUED_FROM) in interrupted
    ]
    return {
        "kills": chaos.kills,
        "drivers_started": chaos.started,
        "trials_in_study": len(trials),
        "counts": counts.__dict__,
        "completed_lines": len(printed),
        "completed_lost": len(missing),
        "networks_trained_twice": twice,
        "distinct_networks_trained": len(layouts),
        "live_trials_taken": len(taken_alive) + len(lost),
        "numbers_contiguous": numbers == list(range(len(numbers))),
        "left_running_or_waiting": counts.running + counts.waiting - len(replays),
        "replays_queued": len(replays),
        "interrupted_and_requeued": counts.interrupted,
        "wall_s": round(wall, 1),
    }


def driver(url: str, study: str, trials: int, pace: float) -> None:
    """One driver: `search run`'s own driver with sleeping simulated trials, printing its
    progress lines (one per event) to stderr."""
    from dataclasses import replace

    import scale

    from search.driver.inline import InlineExecutor
    from search.driver.run import run_search
    from search.worker.curves import CurveTrial, SyntheticCurves

    config = replace(scale.search_config(study, url), trials=trials, concurrency=1, epochs=2)
    source = SyntheticCurves(seconds_per_mmac=0.0, min_seconds=1.0)
    run_search(config, sys.stderr, InlineExecutor(trial=CurveTrial(source, pace)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--driver"]:
        driver(argv[1], argv[2], int(argv[3]), float(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drivers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--pace", type=float, default=0.2, help="seconds per trial epoch")
    parser.add_argument("--kill-every", type=float, default=5.0, help="mean seconds between kills")
    parser.add_argument("--postgres", help="a server's URL (default: a private one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logs", type=Path, help="keep the drivers' logs here (runs in parts)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import scale

    with tempfile.TemporaryDirectory() as temporary, scale.postgres(args.postgres) as url:
        folder = args.logs or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        result = run(args, url, folder)
    result["environment"] = scale.environment()
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)
    ok = (
        result["completed_lost"] == 0
        and result["networks_trained_twice"] == 0
        and result["live_trials_taken"] == 0
        and result["numbers_contiguous"]
        and result["left_running_or_waiting"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
