"""Per-trial overhead: a trial's wall time on the driver minus the trainer's own work.

Worker side, :func:`run_measured_trial` is what Ray runs for each trial: it fetches the data split
(once per worker process, ``search.worker.shared_data``), gives torch as many threads as Ray gave
the trial CPUs, runs ``search.worker.trial.run_trial`` and adds its own clock readings to the final
report. Driver side, :func:`with_overhead` turns them into the study's "overhead_seconds" attr and
an "overhead" breakdown (seconds unless named otherwise):

- ``start``: from the searcher's suggestion to the trial function running in a worker: Ray's
  scheduling, the actor's start (a new process importing torch; a reused actor skips it) and the
  small ``tune.with_parameters`` fetch;
- ``data``: fetching the split from the object store (0 when the worker has it cached);
- ``setup``: inside the trainer, before the first step: model build, data to the device,
  normalisation statistics (``TrialResult.setup_seconds``);
- ``finish``: from the trainer's return to the driver seeing the final result (saving weights,
  Ray's result delivery);
  start + data + setup + finish = overhead_seconds exactly;
- ``start_to_train``: ``start + data + setup``, how long after Ray starts a trial it trains;
- ``worker_pid``, ``trial_in_worker`` (1 for an actor's first trial) and ``data_cached`` show
  whether actors and cached data are reused.

overhead_seconds = driver wall time - (TrialResult.seconds - setup_seconds), i.e. everything but
the training steps and the evaluations. The first training step's extra cost (oneDNN/cuDNN
kernel selection, allocator growth) is part of the training time here;
``benchmarks/trial_overhead.py`` measures it separately. Worker and driver clocks are compared
with ``time.time()``, exact on one machine and as good as NTP on a cluster. Only trials that
send a final result (complete ones) get the attrs: a trial the scheduler stops never reports its
total training time.
"""

from __future__ import annotations

import time
from typing import Any

from search.study import schema
from search.worker.trainable import CLOCK

OVERHEAD_ATTRS = ("overhead_seconds", "overhead")  # the study's user attrs
DECISION_ATTRS = (schema.DECISION_SECONDS, schema.DECISION)


def decision_attrs(parts: dict[str, float]) -> dict[str, Any]:
    """The driver's time deciding about one trial (``common.clock``), beside its overhead:
    "decision_seconds" and "decision", its split into sampling, scheduling, the study's reads and
    writes, the lease and the rest. Ray Tune's worker clock in ``overhead`` cannot see it: it is
    the time a trial, or the next one, waits for the driver. It covers the trial's decisions up to
    its closing write (which stores these attrs, so it cannot include itself)."""
    return {
        schema.DECISION_SECONDS: sum(parts.values()),
        schema.DECISION: {name: round(seconds, 6) for name, seconds in parts.items()},
    }


def with_overhead(result: dict[str, Any] | None, suggested_at: float | None) -> dict[str, Any]:
    """``result`` plus "overhead_seconds" and "overhead" when it is a final result with the
    worker's clock readings; otherwise ``result`` unchanged (``{}`` for None)."""
    result = dict(result or {})
    clock = {k.removeprefix(CLOCK): v for k, v in result.items() if k.startswith(CLOCK)}
    if not (result.get("final") and "entered_at" in clock and suggested_at is not None):
        return result
    now = time.time()
    setup = float(result.get("setup_seconds", 0.0))
    trained = float(result["seconds"]) - setup  # training steps + evaluations
    start = clock["entered_at"] - suggested_at
    trainer_started = clock["entered_at"] + clock["data_seconds"]
    finish = now - trainer_started - float(result["seconds"])
    result["overhead_seconds"] = (now - suggested_at) - trained
    result["overhead"] = {
        "start": start,
        "data": clock["data_seconds"],
        "setup": setup,
        "finish": finish,
        "start_to_train": start + clock["data_seconds"] + setup,
        "worker_pid": clock["worker_pid"],
        "trial_in_worker": clock["trial_in_worker"],
        "data_cached": clock["data_cached"],
        "threads": clock["threads"],
    }
    return result
