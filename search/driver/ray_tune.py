"""The Ray executor: the search's trials in Ray Tune, what `search run` uses.

The searcher sits behind a ``ConcurrencyLimiter`` (``--concurrency`` trials at once), MO-ASHA
(``search.strategy.scheduler``) stops weak trials, and each trial runs the worker's
``run_measured_trial`` in a reused actor with the data split fetched from the object store once
(``search.worker.shared_data``). :class:`~search.driver.watch.TrialWatch` reads Ray's record of a
trial's error and enforces ``--trial-timeout``; the first Ctrl-C / SIGTERM stops Tune gracefully.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TextIO

from search.driver.executor import Resources, RunSettings, Work, stop_on_signals
from search.driver.mps import mps_for_trials
from search.driver.ray_session import ray_session

if TYPE_CHECKING:
    from search.worker.trainable import TrialFunction


class RayExecutor:
    """Ray Tune with ``--concurrency`` trials at once, locally or on a joined cluster;
    ``early_stopping=False`` trains every trial to its last epoch (`search final`); ``trial``
    replaces the training with a simulated one (benchmarks and tests, ``search.worker.curves``)."""

    def __init__(self, early_stopping: bool = True, trial: TrialFunction | None = None) -> None:
        self.early_stopping = early_stopping
        self.trial = trial

    def session(
        self, config: RunSettings, resources: Resources, data_bytes: int, stream: TextIO
    ) -> ExitStack:
        """MPS when trials share a GPU (``search.driver.mps``), then a Ray session sized for
        the concurrent trials and the data split in the object store."""
        with ExitStack() as stack:
            stack.enter_context(
                mps_for_trials(
                    resources.device, resources.gpus_per_trial, config.ray_address, stream
                )
            )
            stack.enter_context(
                ray_session(
                    config.ray_address,
                    num_cpus=resources.threads * config.concurrency,
                    num_gpus=resources.num_gpus if resources.device == "cuda" else 0,
                    object_store_bytes=3 * data_bytes + 64 * 2**20,
                )
            )
            return stack.pop_all()

    def run(self, work: Work) -> bool:
        """Run Ray Tune until the study has its trials; True when stopped by Ctrl-C / SIGTERM."""
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter

        from search.strategy.scheduler import make_scheduler
        from search.worker.shared_data import SharedData
        from search.worker.trainable import run_measured_trial

        config, searcher, resources = work.config, work.searcher, work.resources

        class _StopOnSignal(tune.Stopper):
            def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
                return False

            def stop_all(self) -> bool:
                return searcher.stopping  # Ctrl-C / SIGTERM, or the study cannot be written

        trainable = tune.with_resources(
            # the split goes to the object store once; workers cache it (search.worker.shared_data)
            tune.with_parameters(
                run_measured_trial,
                data=SharedData.put(work.train, work.val, work.holdout),
                settings=work.settings,
                **({"trial": self.trial} if self.trial is not None else {}),
            ),
            {"cpu": resources.threads, "gpu": resources.gpus_per_trial},
        )
        # MO-ASHA on (accuracy, MACs), or Tune's first-in-first-out: no trial stopped
        scheduler = make_scheduler(config.epochs) if self.early_stopping else None
        storage_dir = tempfile.mkdtemp(prefix="effnas-ray-")
        try:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=ConcurrencyLimiter(searcher, max_concurrent=config.concurrency),
                    scheduler=scheduler,
                    num_samples=work.remaining,
                    reuse_actors=True,  # one worker process per slot: torch imports once
                ),
                run_config=tune.RunConfig(
                    name=f"effnas-{config.study}",
                    storage_path=storage_dir,
                    verbose=0,
                    stop=_StopOnSignal(),
                    failure_config=tune.FailureConfig(max_failures=0),
                    callbacks=[searcher.watch] if searcher.watch else None,
                ),
            )
            with stop_on_signals(searcher):
                try:
                    tuner.fit()
                except OSError as exc:  # Tune's own files in a full temp directory
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                        raise
                    searcher.storage_failed(exc)
        finally:
            interrupted = searcher.interrupted
            searcher.interrupt_live()
            shutil.rmtree(storage_dir, ignore_errors=True)
        return interrupted
