"""The environment Ray's trial workers start with, set around ``ray.init`` for one search.

- ``OMP_WAIT_POLICY=PASSIVE``: torch's CPU threads are OpenMP threads, and by default libgomp
  lets a thread that waits at the end of a parallel region spin for a long while. A CPU trial
  with as many threads as Ray gave it CPUs shares those cores with Ray's own processes (raylet,
  GCS, the driver's Tune loop) and with anything else on the machine; whenever one of its threads
  is descheduled the others spin against it, and each of the thousand-odd parallel regions of a
  step waits for a whole scheduler slice. Measured on 2 busy cores (benchmarks/RESULTS.md): a
  2-thread step of the quick preset's network took 1.1-3.9 s spinning and 0.34 s with passive
  waiting. libgomp reads the variable once, at start-up, so it must be in the workers'
  environment; a value the user set is kept.
- CUDA MPS when trials share a GPU (``search.mps``).

Only a local Ray instance inherits this process's environment. On a joined cluster
(``--ray-address``) the nodes' environment is whatever ``ray start`` was given: export
``OMP_WAIT_POLICY=PASSIVE`` (and start MPS, see ``search.mps``) before ``ray start`` there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from search.mps import mps_for_trials

CPU_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@contextmanager
def trial_worker_env(
    device: str, gpus_per_trial: float, ray_address: str | None, stream: TextIO
) -> Iterator[dict[str, str]]:
    """Export the workers' variables (the user's own values win), start MPS if the trials share
    GPUs; yields what was exported; everything is restored on the way out."""
    exported = {key: value for key, value in CPU_ENV.items() if key not in os.environ}
    os.environ.update(exported)
    try:
        with mps_for_trials(device, gpus_per_trial, ray_address, stream) as mps:
            yield {**exported, **mps}
    finally:
        for key in exported:
            os.environ.pop(key, None)
