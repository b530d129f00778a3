"""The driver's per-trial overhead from the worker's clock readings (pure arithmetic)."""

from __future__ import annotations

import time

import pytest

from search.driver.overhead import with_overhead
from search.worker.trainable import CLOCK


def final_result(entered_at: float, seconds: float, setup: float) -> dict[str, object]:
    clock = {
        "entered_at": entered_at,
        "data_seconds": 0.25,
        "worker_pid": 4242,
        "trial_in_worker": 2,
        "data_cached": True,
        "threads": 2,
    }
    return {
        "final": True,
        "accuracy": 0.5,
        "seconds": seconds,
        "setup_seconds": setup,
        **{CLOCK + key: value for key, value in clock.items()},
    }


def test_overhead_is_the_wall_time_less_training_and_evaluation() -> None:
    now = time.time()
    # suggested 10 s ago, running in the worker 1.5 s later, 0.25 s data, 6 s in the trainer
    # of which 0.5 s setup: the trainer returned at now - 2.25, so 2.25 s "finish"
    result = with_overhead(final_result(now - 8.5, seconds=6.0, setup=0.5), now - 10.0)
    overhead = result["overhead"]
    assert result["overhead_seconds"] == pytest.approx(10.0 - 5.5, abs=0.05)
    assert overhead["start"] == pytest.approx(1.5)
    assert (overhead["data"], overhead["setup"]) == (0.25, 0.5)
    assert overhead["finish"] == pytest.approx(2.25, abs=0.05)
    parts = overhead["start"] + overhead["data"] + overhead["setup"] + overhead["finish"]
    assert parts == pytest.approx(result["overhead_seconds"])
    assert overhead["start_to_train"] == pytest.approx(1.5 + 0.25 + 0.5)
    assert (overhead["worker_pid"], overhead["trial_in_worker"], overhead["data_cached"]) == (
        4242,
        2,
        True,
    )


def test_only_final_results_with_clock_readings_get_it() -> None:
    now = time.time()
    assert with_overhead(None, now) == {}
    epoch = {"final": False, "accuracy": 0.3}
    assert with_overhead(epoch, now) == epoch
    assert "overhead_seconds" not in with_overhead({"final": True, "seconds": 1.0}, now)
    assert "overhead_seconds" not in with_overhead(final_result(now, 1.0, 0.1), None)
