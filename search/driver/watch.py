"""Per-trial faults: one line saying why a trial failed, and the driver's ``--trial-timeout``.

A trial that raises, runs out of (GPU or host) memory, loses its worker process, or hangs
must end as FAIL with a specific reason while the search goes on. Two halves:

- in the worker, ``search.worker.faults`` turns any exception of the training into a kind and
  one line, by the exception's type, and the trainable raises :class:`TrialFailed` with both
  (the full traceback stays in the worker's log);
- in the driver, Ray Tune passes a trial's error to the searcher only as ``error=True``
  (``TuneController._process_trial_failure`` calls ``Searcher.on_trial_complete(trial_id,
  error=True)`` after ``Trial.handle_error`` has written the exception to the trial's
  ``error.pkl`` / ``error.txt``). :class:`TrialWatch`, a Tune ``Callback``, keeps the ``Trial``
  objects so the searcher can read that error and :func:`ray_error_fault` can name it as a
  :class:`~common.errors.Fault`: the trial's own :class:`TrialFailed` (its kind and line),
  "out of memory: ..." (kind memory) when Ray's memory monitor killed the worker
  (``ray.exceptions.OutOfMemoryError`` or an actor death that says so), "worker died: ..." (kind
  worker-died) for a worker process that vanished (SIGKILL, a segfault: the signal is named when
  the worker's faulthandler wrote it to its log), "node died: ..." (kind node-died) when the
  whole Ray node the trial ran on is gone (:func:`lost_node`), and "timeout: ..." (kind
  timeout) for a trial the watch stopped itself. Ray's other errors are kind error.

A lost node is told apart from a lost worker by asking, not by Ray's wording: when a node dies
(its raylet killed, its host powered off or cut off) the driver learns it first as a broken
connection to the trial's actor (``ActorUnavailableError``: "Connection reset by peer"), with
nothing that names the node, and the GCS declares the node dead only after its health checks
fail (15 s and more). So for an actor that died, :func:`lost_node` looks up the node the actor
ran on and checks it: dead by the GCS, or its raylet does not answer a TCP connection.

Ray's error texts are read only to word the reason and to recognise Ray's own faults; the
searcher decides by the kind alone.

The timeout is enforced by the driver, not the trial, so a step that hangs (a deadlock, a stuck
kernel, a stopped process) is still stopped: past ``--trial-timeout`` plus a short grace (for a
trainer that stops itself at the limit), :class:`TrialWatch` kills the trial's actor with
``ray.kill``.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from common.errors import KIND_NOTE, Fault, FaultKind, TrialFailed
from search.worker.faults import failure_fault, one_line

logger = logging.getLogger(__name__)

FATAL_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Floating-point exception": "SIGFPE",
    "Floating point exception": "SIGFPE",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Illegal instruction": "SIGILL",
}


def ray_error_fault(
    error: BaseException | None,
    text: str,
    logs_dir: Path | None,
    node_lost: Callable[[str], str | None] | None = None,
) -> Fault:
    """The kind and one-line reason of a trial that Ray reports as errored.

    ``error`` is the exception Ray pickled for the trial (None when it pickled none, e.g. for
    an ``OutOfMemoryError`` raised while the trial's actor was created); ``text`` is what Ray
    wrote to the trial's ``error.txt``; ``logs_dir`` is Ray's session log directory of this
    node (None when unknown), where a dead local worker's faulthandler output may name a signal.
    ``node_lost`` (:func:`lost_node` in a driver) names the node of a dead actor, by its actor
    id, when that node is gone; the fault is then "node died: ...", not "worker died: ...".

    When only the text of the trial's :class:`TrialFailed` survived (no pickled exception), its
    kind is read from the note it adds to its traceback (:data:`~common.errors.KIND_NOTE`); a
    text without that note is kind error, the safe side: FAIL, never a silent "infeasible".
    """
    from ray.exceptions import OutOfMemoryError, RayActorError, RayTaskError

    if isinstance(error, RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, TrialFailed):
            return Fault(cause.kind, one_line(str(cause)))
        if isinstance(cause, OutOfMemoryError | RayActorError):
            error = cause
        elif isinstance(cause, BaseException):
            return failure_fault(cause)
    full = str(error) if error is not None else text
    failed = re.search(r"TrialFailed: (.+)", full)
    if failed:
        return Fault(_noted_kind(full), one_line(failed.group(1)))
    if isinstance(error, OutOfMemoryError) or "low on memory" in full.lower():
        return Fault(FaultKind.MEMORY, memory_monitor_reason(full))
    if isinstance(error, RayActorError) or re.search(r"actor died|actor \w+ is unavailable", full):
        actor = getattr(error, "actor_id", None) or _actor_id(full)
        node = node_lost(actor) if node_lost and actor else None
        if node:
            reason = f"node died: Ray node {node} was lost while the trial ran on it"
            return Fault(FaultKind.NODE_DIED, f"{reason}; the other nodes go on")
        return worker_died_fault(full, logs_dir)
    name = type(error).__name__ if error is not None else "Ray error"
    kind = error.kind if isinstance(error, TrialFailed) else FaultKind.ERROR
    return Fault(kind, f"{name}: {one_line(_first_line(full))}")


def _actor_id(text: str) -> str | None:
    """The hex id of the actor Ray's error text is about ("actor_id: ...", "The actor ...")."""
    found = re.search(r"\bactor(?:_id:)? ([0-9a-f]{32})\b", text)
    return found.group(1) if found else None


def lost_node(actor_id: str, probe_s: float = 3.0) -> str | None:
    """ "ADDRESS (id NODE)" of the Ray node the actor ran on, when that node is gone: the GCS
    says it is dead, or its raylet refuses a TCP connection or does not answer within
    ``probe_s``. None when the node is alive or cannot be told (no Ray session, an unknown
    actor): then the fault stays "worker died"."""
    import ray
    from ray._private import state

    try:
        node_id = state.actors(actor_id)["Address"]["NodeID"]
        node = next(n for n in ray.nodes() if n["NodeID"] == node_id)
        address, port = str(node["NodeManagerAddress"]), int(node["NodeManagerPort"])
    except Exception:  # no session, an actor the GCS forgot, a node never placed
        return None
    if node["Alive"] and _answers(address, port, probe_s):
        return None
    return f"{address} (id {node_id[:8]})"


def _answers(address: str, port: int, timeout_s: float) -> bool:
    """Whether something accepts a TCP connection at ``address:port`` within ``timeout_s``."""
    try:
        socket.create_connection((address, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _noted_kind(text: str) -> FaultKind:
    """The kind a :class:`TrialFailed`'s traceback note names in ``text``, else error."""
    noted = re.search(rf"^\s*{re.escape(KIND_NOTE)}([\w-]+)\s*$", text, re.MULTILINE)
    try:
        return FaultKind(noted.group(1)) if noted else FaultKind.ERROR
    except ValueError:  # a kind this version does not know
        return FaultKind.ERROR


def memory_monitor_reason(text: str) -> str:
    """ "out of memory: ..." from Ray's memory-monitor report (ray/_raylet memory_monitor)."""
    used = re.search(r"was ([\d.]+\s*[KMGT]?B) used / ([\d.]+\s*[KMGT]?B) limit", text)
    threshold = re.search(r"threshold of \d+B \(([\d.]+%)", text)
    detail = "Ray's memory monitor killed the trial's worker"
    if used:
        detail += f" (node memory {used.group(1)} used of {used.group(2)}"
        detail += f", kill threshold {threshold.group(1)})" if threshold else ")"
    return f"out of memory: {detail}; lower --batch-size or --concurrency"


def worker_died_fault(text: str, logs_dir: Path | None) -> Fault:
    """ "worker died: ..." naming the process, and the signal when its log says which; an actor
    death that Ray's memory monitor caused is kind memory."""
    pid_match = re.search(r"\bpid[:=]\s*(\d+)", text, re.IGNORECASE)
    pid = int(pid_match.group(1)) if pid_match else None
    ip_match, node_ip = re.search(r"\bip: ([\w.:-]+)", text), _node_ip()
    if ip_match and node_ip is not None and ip_match.group(1) != node_ip:
        logs_dir = None  # it ran on another node: its log is not here
    if "killed by `ray.kill`" in text:
        return Fault(FaultKind.WORKER_DIED, f"worker died: process {pid} was killed with ray.kill")
    if "low on memory" in text.lower() or "out_of_memory" in text.lower():
        return Fault(FaultKind.MEMORY, memory_monitor_reason(text))
    exit_type = re.search(r"Worker exit type: (\w+)", text)
    ray_says = f"Ray: {exit_type.group(1)}" if exit_type else "Ray: actor died"
    signal_name = _fatal_signal(logs_dir, pid)
    if signal_name:
        reason = f"worker died: process {pid} crashed with {signal_name} ({ray_says})"
    else:
        reason = (
            f"worker died: process {pid} was killed without a trace (SIGKILL: kill -9 or the "
            f"kernel's OOM killer; {ray_says})"
        )
    return Fault(FaultKind.WORKER_DIED, reason)


def _fatal_signal(logs_dir: Path | None, pid: int | None) -> str | None:
    """The fatal signal a local worker's faulthandler printed to its log, if any."""
    if logs_dir is None or pid is None:
        return None
    for path in logs_dir.glob(f"worker-*-{pid}.err"):
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - 64_000))
                tail = handle.read().decode(errors="replace")
        except OSError:
            continue
        found = re.findall(r"Fatal Python error: ([A-Za-z -]+)", tail)
        if found:
            name = found[-1].strip()
            return FATAL_SIGNALS.get(name, name)
    return None


def _node_ip() -> str | None:
    """This node's Ray IP (None outside a Ray session: then any log dir given is trusted)."""
    import ray

    if not ray.is_initialized():
        return None
    try:
        return ray.util.get_node_ip_address()
    except Exception:
        return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no details"


class TrialWatch(Callback):
    """Knows Ray's ``Trial`` objects (to read their errors) and stops trials that run too long.

    ``time_limit_s`` is ``--trial-timeout``; the actor is killed ``grace_s`` after it, so a
    trainer that enforces the same limit itself (``TrainConfig.time_limit_s``) stops first.
    Callback hooks never raise: an exception here would abort ``tuner.fit()``.
    """

    def __init__(self, time_limit_s: float | None = None, logs_dir: Path | None = None) -> None:
        self.time_limit_s = time_limit_s
        self.grace_s = min(60.0, max(2.0, 0.05 * time_limit_s)) if time_limit_s else 0.0
        self.logs_dir = logs_dir
        self._trials: list[Any] = []
        self._known: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._timed_out: dict[str, Fault] = {}
        self._faults: dict[str, Fault] = {}

    # ----- Tune's Callback interface ----------------------------------------------------------
    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials  # TuneController's own list: trials added later show up in it
        if self.time_limit_s:
            try:
                self._stop_overdue()
            except Exception:  # never abort the search from a callback
                logger.warning("checking --trial-timeout failed", exc_info=True)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._known[trial.trial_id] = trial
        self._started[trial.trial_id] = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._started.pop(trial.trial_id, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._started.pop(trial.trial_id, None)

    # ----- for the searcher -------------------------------------------------------------------
    def note_error(self, trial_id: str, fault: Fault) -> None:
        """Record why a trial that ran outside Ray failed (the inline executor), for
        :meth:`error_fault`."""
        self._faults[trial_id] = fault

    def error_fault(self, trial_id: str) -> Fault:
        """Why the trial errored: its kind and one line (see :func:`ray_error_fault`)."""
        if trial_id in self._timed_out:
            return self._timed_out[trial_id]
        if trial_id in self._faults:
            return self._faults.pop(trial_id)
        trial = self._trial(trial_id)
        if trial is None:
            return Fault(FaultKind.ERROR, "Ray trial error (no details recorded)")
        try:
            error, text = _recorded_error(trial)
            return ray_error_fault(error, text, self.logs_dir, lost_node)
        except Exception:  # a reason must never crash the search
            logger.warning("reading the error of trial %s failed", trial_id, exc_info=True)
            return Fault(FaultKind.ERROR, "Ray trial error (its record could not be read)")

    # ----- internals --------------------------------------------------------------------------
    def _trial(self, trial_id: str) -> Any:
        if trial_id in self._known:
            return self._known[trial_id]
        return next((t for t in self._trials if t.trial_id == trial_id), None)

    def _stop_overdue(self) -> None:
        import ray

        assert self.time_limit_s is not None
        now = time.monotonic()
        for trial_id, started in list(self._started.items()):
            ran = now - started
            if ran < self.time_limit_s + self.grace_s:
                continue
            del self._started[trial_id]
            self._timed_out[trial_id] = Fault(
                FaultKind.TIMEOUT,
                f"timeout: ran {ran:.0f} s, over --trial-timeout {self.time_limit_s:g} s; "
                "stopped by the driver",
            )
            trial = self._trial(trial_id)
            actor = getattr(getattr(trial, "temporary_state", None), "ray_actor", None)
            if actor is not None:
                ray.kill(actor, no_restart=True)


def _recorded_error(trial: Any) -> tuple[BaseException | None, str]:
    """The exception Ray pickled for the trial (or None) and the text of its error file."""
    import ray.cloudpickle as cloudpickle

    error: BaseException | None = None
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and Path(pickled).is_file():
        try:
            with open(pickled, "rb") as handle:
                error = cloudpickle.load(handle)
        except Exception:  # an exception class that cannot be rebuilt here
            error = None
    text = ""
    plain = getattr(trial, "error_file", None)
    if plain and Path(plain).is_file():
        raw = Path(plain).read_text(errors="replace")
        # Ray appends "Failure # n (occurred at ...)" blocks: keep the last one
        text = re.split(r"Failure # \d+ \(occurred at [^)]*\)\n", raw)[-1]
    return error, text
