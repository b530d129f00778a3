"""benchmarks/scale.py, part 3: 1, 4 and 8 drivers on one PostgreSQL study, and plain Optuna.

Each driver is its own process, as on a cluster: this search's ``run_search`` with instant
simulated trials (the simulated clock, 8 at once per driver), all on one new study until it has
``trials`` trained trials; and, alike, plain Optuna processes running ``study.optimize`` of the
same draw and curve (``scale_rivals``) on another study. Figures from the study: trained trials
per second over the steady half of the run (trial ends), every driver together. On these 2
cores the drivers share the CPU, so the figure says what the database and the coordination cost
when drivers are added, not what more machines would gain.

    python benchmarks/scale_drivers.py --child ours URL STUDY TRIALS SEED   (one driver)
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import optuna

from search.study.database import open_storage
from search.study.reader import read_trials
from search.study.schema import INFEASIBLE, STATUS

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Drivers:
    method: str
    drivers: int
    trials: int  # trained trials in the study at the end
    trials_per_second: float  # steady half, all drivers together
    wall_s: float


def run(method: str, url: str, drivers: int, trials: int, seed: int) -> Drivers:
    """``drivers`` processes of ``method`` ("ours" or "optuna") on a new study."""
    study = f"{method}-{drivers}-drivers"
    if method == "optuna":  # plain Optuna needs the study to exist before its processes load it
        optuna.create_study(
            study_name=study, storage=open_storage(url), directions=["maximize", "minimize"]
        )
    share = -(-trials // drivers) if method == "optuna" else trials  # Optuna: n_trials each
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__)),
                "--child",
                method,
                url,
                study,
                str(share),
                str(seed + index),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for index in range(drivers)
    ]
    for child in children:
        _, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a {method} driver failed: {err.decode()[-2000:]}")
    wall = time.perf_counter() - started
    storage = open_storage(url)
    ends = sorted(
        t.datetime_complete
        for t in read_trials(storage, storage.get_study_id_from_name(study))
        if t.state.is_finished()
        and t.datetime_complete is not None
        and t.user_attrs.get(STATUS) != INFEASIBLE
    )
    half = ends[len(ends) // 2 :]
    rate = (len(half) - 1) / (half[-1] - half[0]).total_seconds()
    name = "this search" if method == "ours" else "plain Optuna"
    return Drivers(name, drivers, len(ends), rate, wall)


def child(method: str, url: str, study: str, trials: int, seed: int) -> None:
    """One driver process."""
    sys.path.insert(0, str(HERE))
    import scale

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = replace(scale.search_config(study, url, seed=0), trials=trials)
    if method == "ours":
        from search.driver.run import run_search
        from search.driver.simulated import SimulatedExecutor

        run_search(config, io.StringIO(), SimulatedExecutor(scale.SOURCE, concurrency=8))
        return
    import scale_rivals

    loaded = optuna.load_study(
        study_name=study,
        storage=optuna.storages.get_storage(open_storage(url)),
        sampler=scale_rivals.tpe(seed, trials),
    )
    loaded.optimize(scale_rivals.objective(config, scale.CLASSES, scale.SOURCE), n_trials=trials)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _, _, method_, url_, study_, trials_, seed_ = sys.argv
    child(method_, url_, study_, int(trials_), int(seed_))
