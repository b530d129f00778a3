"""The driver's decision clock (common/clock.py): exclusive time per part, charged per trial, on
a test's own clock (advanced by hand, so the figures are exact on a busy machine)."""

from __future__ import annotations

import threading

from common.clock import PARTS, DecisionClock


class Ticks:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_nested_parts_are_exclusive_and_the_rest_is_other() -> None:
    ticks = Ticks()
    clock = DecisionClock(ticks)
    with clock.deciding("t1"):
        ticks.wait(2)  # other
        with clock.part("sample"):
            ticks.wait(3)
            with clock.part("read"):
                ticks.wait(4)
        with clock.part("write"):
            ticks.wait(1)
    parts = clock.so_far("t1")
    assert set(parts) == set(PARTS)
    assert parts == {"sample": 3, "schedule": 0, "read": 4, "write": 1, "lease": 0, "other": 2}
    with clock.deciding("t2", "schedule"):  # the scheduler's own decision about another trial
        ticks.wait(5)
    assert clock.so_far("t2")["schedule"] == 5 and clock.so_far("t1") == parts
    assert clock.totals == {**parts, "schedule": 5}
    clock.forget("t1")
    assert sum(clock.so_far("t1").values()) == 0 and clock.totals["read"] == 4


def test_so_far_counts_the_open_decision_and_untimed_threads_add_nothing() -> None:
    ticks = Ticks()
    clock = DecisionClock(ticks)
    with clock.part("lease"):  # no decision open: not timed
        ticks.wait(1)

    def renew() -> None:  # another thread (the lease's renewals) outside any decision
        with clock.part("lease"):
            ticks.wait(1)

    with clock.deciding("t"):
        with clock.part("read"):
            ticks.wait(2)
        thread = threading.Thread(target=renew)
        thread.start()
        thread.join()
        with clock.part("write"):
            ticks.wait(3)
            inside = clock.so_far("t")  # the open "write" and its decision, up to now
    # the other thread's second fell inside this decision's wall time: it is "other" here
    assert inside == {"sample": 0, "schedule": 0, "read": 2, "write": 3, "lease": 0, "other": 1}
    assert clock.totals["lease"] == 0
