"""The study schema: what `search run` stores in an Optuna study and everyone else reads back.

Objectives are the trial values ``[accuracy, *costs]`` (accuracy maximised, each cost minimised),
set on COMPLETE trials only: by default ``[accuracy, macs]``; ``--objectives`` may choose
``accuracy,latency`` or ``accuracy,macs,latency`` (:data:`OBJECTIVE_SETS`), which the study
keeps as its metric names. A cost is known before training and kept in a trial attr
(:data:`COST_ATTRS`), so the value told to Optuna is always the attr. Everything else lives in
user attrs under the keys below. Optuna's states do not say enough, so a "status" attr tells
the two kinds of PRUNED apart (:data:`PRUNED` = stopped early by the scheduler,
:data:`INFEASIBLE` = over budget and never trained), and a FAIL trial whose "fail_reason" is
:data:`INTERRUPTED` was stopped by the search itself (Ctrl-C, SIGTERM, a dead driver) and is
re-queued with the same params (``search.study.ledger``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import optuna
from optuna.trial import FrozenTrial, TrialState

# ----- objectives ------------------------------------------------------------------------------
DIRECTIONS = (optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE)
METRIC_NAMES = ["accuracy", "macs"]  # the default objectives (and those of older studies)
OBJECTIVE_SETS: tuple[tuple[str, ...], ...] = (
    ("accuracy", "macs"),
    ("accuracy", "latency"),
    ("accuracy", "macs", "latency"),
)
DEFAULT_OBJECTIVES = OBJECTIVE_SETS[0]

# ----- study user attrs ------------------------------------------------------------------------
CONFIG = "config"  # the search's identity (SearchConfig.identity): a resume must match it
EFFNAS_VERSION = "effnas_version"  # the effnas version that created the study
LATENCY_PREFIX = "latency:"  # + "<spec_id>:<machine>:<device>:b<batch>:<backend>": one record
# the machine that times this study's candidates ({"host", "processor", "resource"}), written by
# the driver that creates a latency study, before CONFIG: every later driver must time there
LATENCY_MACHINE = "latency_machine"
THROUGHPUT = "throughput"  # measured training speed per host and device (search.driver.estimate)

# ----- trial user attrs: the candidate, written when the trial starts --------------------------
SPEC = "spec"  # the candidate's canonical ArchSpec string
SPEC_JSON = "spec_json"  # the same spec as a dict (ArchSpec.to_dict), preferred by readers
SPEC_ID = "spec_id"  # a stable id of the network the spec builds (ArchSpec.spec_id)
BLOCK = "block"  # the block kind of the spec
MACS = "macs"  # the network's MACs (the second objective, known before training)
PARAMS = "params"  # the network's parameter count
LATENCY_MS = "latency_ms"  # its measured median latency (an objective or limit, when used)
LATENCY = "latency"  # that measurement's record (space.latency.LatencyRecord.to_dict)
STAGE = "stage"  # which part of the search asked for it: "phi1", "scaled" or "joint"
SEED = "seed"  # the per-trial training seed (search.study.ledger.trial_seed)
VERSIONS = "versions"  # package versions of the driver, so a result can be replayed
DRIVER = "driver"  # who runs it: host, pid and machine of the driver (search.study.lease)
STATUS = "status"  # one of the status values below

# ----- trial user attrs: planner's bookkeeping -------------------------------------------------
START_GAMMA = "start_gamma"  # the gamma a stage-2 member or a replay starts from
PARENT = "parent"  # a stage-2 member's stage-1 trial number
LEVEL = "level"  # a stage-2 member's MAC level
MEMBER = "member"  # a stage-2 member's rank in its family (1 = smallest level)
TARGET_MACS = "target_macs"  # a joint trial's MAC target from its share
FILLS = "fills"  # a gap-filling joint trial: the front member it scales (search.strategy.gaps)

# ----- trial user attrs: training, written per epoch and at the end ----------------------------
ACCURACY_PER_EPOCH = "accuracy_per_epoch"  # validation accuracy after each epoch
LOSS_PER_EPOCH = "loss_per_epoch"  # training loss of each epoch
EPOCHS_RUN = "epochs_run"  # epochs trained so far (fewer than asked when pruned)
LAST_ACCURACY = "last_accuracy"  # the latest epoch's accuracy (a pruned trial's result)
SECONDS = "seconds"  # the trainer's training and evaluation time
IMAGES_PER_SECOND = "images_per_second"  # training throughput
PEAK_MEMORY_BYTES = "peak_memory_bytes"  # peak accelerator memory of the trial
MEMORY_ESTIMATE_BYTES = "memory_estimate_bytes"  # the memory the trainer planned for
MICRO_BATCH = "micro_batch"  # the micro-batch the trainer chose to fit memory
ACCUMULATION_STEPS = "accumulation_steps"  # gradient accumulation steps per batch
OVERHEAD_SECONDS = "overhead_seconds"  # driver wall time not spent training (driver.overhead)
OVERHEAD = "overhead"  # that overhead split into its parts (driver.overhead)
DECISION_SECONDS = "decision_seconds"  # the driver's time deciding about it (common.clock)
DECISION = "decision"  # that time per part: sample, schedule, read, write, lease, other
WEIGHTS_DIR = "weights_dir"  # where the trained weights were saved, when they were
NODE = "node"  # the IP of the Ray node that trained it (Ray Tune's "node_ip" of its results)

# ----- trial user attrs: why it ended without a result -----------------------------------------
CONSTRAINT = "constraint"  # why an infeasible candidate was not trained
FAIL_REASON = "fail_reason"  # why a failed trial failed (INTERRUPTED: re-queued)
REQUEUED_FROM = "requeued_from"  # the number of the interrupted trial this one replays

# ----- the companion study of final trainings (`search final`) ------------------------------
# `search final` retrains chosen trials of study S from scratch with the full recipe on all the
# training images and evaluates each once on the data set's test split. Its results live in the
# same database, in the study "S:final": one trial per (searched trial, repeat), values
# [test_accuracy, macs] on COMPLETE trials, and the same candidate and training attrs as above.
FINAL_SUFFIX = ":final"
FINAL_METRIC_NAMES = ["test_accuracy", "macs"]
SOURCE_STUDY = "source_study"  # study attr of S:final: the name S of the searched study
SOURCE_TRIAL = "source_trial"  # the number of the searched trial this final retrains
REPEAT = "repeat"  # which of the --repeats seeds this final is (0, 1, ...)
PROXY_ACCURACY = "proxy_accuracy"  # the searched trial's short-trial validation accuracy
TEST_CORRECT = "test_correct"  # test images the final network classified correctly
TEST_IMAGES = "test_images"  # test images it was evaluated on (the whole test split)
TRAIN_IMAGES = "train_images"  # training images it was trained on
# the final's held-out validation split (training images it never trained on, or a data set's
# labelled val/): what chooses the final front and the final best, so the test split only measures
VAL_CORRECT = "val_correct"
VAL_IMAGES = "val_images"
VAL_ACCURACY = "val_accuracy"


COST_ATTRS = {"macs": MACS, "latency": LATENCY_MS}  # objective -> the trial attr holding it


def directions_for(objectives: tuple[str, ...]) -> list[optuna.study.StudyDirection]:
    """Maximise accuracy, minimise every cost."""
    return [DIRECTIONS[0], *(DIRECTIONS[1] for _ in objectives[1:])]


def objectives_of(study: optuna.Study) -> tuple[str, ...]:
    """The objectives a study was created with (its metric names; older studies: the default)."""
    names = tuple(study.metric_names or ())
    return names if names in OBJECTIVE_SETS else DEFAULT_OBJECTIVES


def cost_values(attrs: dict[str, object], objectives: tuple[str, ...]) -> list[float] | None:
    """The costs of a trial in ``objectives`` order, from its attrs; None when one is missing."""
    costs = [attrs.get(COST_ATTRS[name]) for name in objectives[1:]]
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in costs):
        return None
    return [float(c) for c in costs]  # type: ignore[arg-type]


def final_study_name(study: str) -> str:
    """The companion study that holds the final trainings of ``study``."""
    return f"{study}{FINAL_SUFFIX}"


def is_final_study(name: str) -> bool:
    return name.endswith(FINAL_SUFFIX)


RESULT_ATTRS = (  # copied from the trainer's final result when present
    SECONDS,
    IMAGES_PER_SECOND,
    PEAK_MEMORY_BYTES,
    MEMORY_ESTIMATE_BYTES,
    MICRO_BATCH,
    ACCUMULATION_STEPS,
    TEST_CORRECT,
    TEST_IMAGES,
    TRAIN_IMAGES,
    VAL_CORRECT,
    VAL_IMAGES,
    VAL_ACCURACY,
)

# ----- status values ---------------------------------------------------------------------------
COMPLETE = "complete"  # trained every epoch: values [accuracy, macs] set
PRUNED = "pruned"  # stopped early by the scheduler: last_accuracy kept
INFEASIBLE = "infeasible"  # over budget (or a duplicate network): never trained
FAILED = "failed"  # an error, or interrupted (see is_interrupted)
INTERRUPTED = "interrupted"  # a failed trial the search stopped itself; also its fail_reason
RUNNING = "running"  # being trained
WAITING = "waiting"  # queued, not started
STATUSES = (COMPLETE, PRUNED, INFEASIBLE, FAILED, INTERRUPTED, RUNNING, WAITING)


def status_of(trial: FrozenTrial) -> str:
    """The trial's status attr, falling back on its Optuna state for foreign trials."""
    status = trial.user_attrs.get(STATUS)
    if trial.state == TrialState.RUNNING:
        return RUNNING
    if trial.state == TrialState.WAITING:
        return WAITING
    if isinstance(status, str) and status != RUNNING:
        return status
    return {
        TrialState.COMPLETE: COMPLETE,
        TrialState.PRUNED: PRUNED,
        TrialState.FAIL: FAILED,
    }[trial.state]


def is_interrupted(trial: FrozenTrial) -> bool:
    """Whether the search itself stopped this FAIL trial (so it is, or was, re-queued)."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON) == INTERRUPTED


@dataclass(frozen=True)
class Counts:
    """Trials per status; ``done`` is what counts towards ``--trials``."""

    complete: int = 0
    pruned: int = 0
    infeasible: int = 0
    failed: int = 0
    interrupted: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> Counts:
        tally = dict.fromkeys(STATUSES, 0)
        for trial in trials:
            status = INTERRUPTED if is_interrupted(trial) else status_of(trial)
            tally[status if status in tally else FAILED] += 1
        return cls(**tally)
