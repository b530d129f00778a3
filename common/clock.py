"""Where a search driver's time goes: wall time per part of its decisions, charged to a trial.

The driver decides when a trial starts (the planner, the sampler, the lease, the study's reads and
writes), at each of its epochs (the scheduler, a write) and when it ends (a write). A trial's
``overhead_seconds`` is measured around the trial, on the worker's clock, so it cannot see time
the driver spends deciding while trials wait for it. :class:`DecisionClock` measures that time
where it is spent: the driver's entry points open a decision for a trial
(:meth:`DecisionClock.deciding`), and the code that reads the database, samples or schedules
marks its part (:meth:`DecisionClock.part`, nestable: each part's time excludes the parts inside
it, as a profiler's exclusive time does, and what no part claims is "other"). Parts marked
outside any decision (the lease's renewal thread, a report) are not timed.

One module-level clock, :data:`DECISIONS`, serves a driver process; the parts it knows are
:data:`PARTS`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PARTS = ("sample", "schedule", "read", "write", "lease", "other")


@dataclass
class _Frame:
    name: str
    key: str
    start: float
    children: float = 0.0  # seconds of the parts nested in it


class DecisionClock:
    """Exclusive seconds per (trial key, part), and totals per part over every trial."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now  # seconds; a test's own clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._charged: dict[str, dict[str, float]] = {}
        self.totals: dict[str, float] = dict.fromkeys(PARTS, 0.0)

    def __getstate__(self) -> dict[str, object]:
        """Picklable (Ray Tune checkpoints its searcher, storage and all): the figures only."""
        return {"_now": self._now, "_charged": self._charged, "totals": self.totals}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._lock = threading.Lock()

    def _stack(self) -> list[_Frame]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextmanager
    def deciding(self, key: str, part: str = "other") -> Iterator[None]:
        """A decision about trial ``key``: what is timed inside it is charged to ``key``; its own
        time outside any other part is ``part``."""
        with self._frame(part, key):
            yield

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """A part of the decision in progress (in this thread); untimed outside a decision."""
        stack = self._stack()
        if not stack:
            yield
            return
        with self._frame(name, stack[-1].key):
            yield

    @contextmanager
    def _frame(self, name: str, key: str) -> Iterator[None]:
        stack = self._stack()
        frame = _Frame(name, key, self._now())
        stack.append(frame)
        try:
            yield
        finally:
            stack.pop()
            elapsed = self._now() - frame.start
            self._add(key, name, elapsed - frame.children)
            if stack:
                stack[-1].children += elapsed

    def _add(self, key: str, name: str, seconds: float) -> None:
        with self._lock:
            parts = self._charged.setdefault(key, dict.fromkeys(PARTS, 0.0))
            parts[name] = parts.get(name, 0.0) + seconds
            self.totals[name] = self.totals.get(name, 0.0) + seconds

    def so_far(self, key: str) -> dict[str, float]:
        """The seconds charged to ``key`` so far, per part, the decisions still open in this
        thread included up to now."""
        with self._lock:
            parts = dict(self._charged.get(key, dict.fromkeys(PARTS, 0.0)))
        now = self._now()
        stack = self._stack()
        for index, frame in enumerate(stack):
            if frame.key != key:
                continue
            inner = now - stack[index + 1].start if index + 1 < len(stack) else 0.0
            open_seconds = now - frame.start - frame.children - inner
            parts[frame.name] = parts.get(frame.name, 0.0) + open_seconds
        return parts

    def forget(self, key: str) -> None:
        """Drop what was charged to ``key`` (its trial ended; the totals keep it)."""
        with self._lock:
            self._charged.pop(key, None)

    def reset(self) -> None:
        """Zero everything (a benchmark between runs)."""
        with self._lock:
            self._charged.clear()
            self.totals = dict.fromkeys(PARTS, 0.0)


DECISIONS = DecisionClock()
