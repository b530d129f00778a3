"""The project's exceptions: one base, typed trial faults, and a TrialFailed that survives Ray."""

from __future__ import annotations

import pickle

import pytest

from common.errors import (
    KIND_NOTE,
    Diverged,
    EffnasError,
    Fault,
    FaultKind,
    InsufficientMemory,
    TrialError,
    TrialFailed,
    TrialTimeout,
    UserError,
)
from common.units import format_bytes


def test_one_base_for_every_project_exception() -> None:
    for cls in (UserError, TrialError, InsufficientMemory, Diverged, TrialTimeout, TrialFailed):
        assert issubclass(cls, EffnasError)
    assert not issubclass(TrialFailed, TrialError)  # the carrier, not a trainer fault


def test_each_trainer_fault_has_its_kind() -> None:
    assert InsufficientMemory.kind == FaultKind.INFEASIBLE_MEMORY
    assert Diverged.kind == FaultKind.DIVERGED
    assert TrialTimeout.kind == FaultKind.TIMEOUT
    assert TrialError.kind == FaultKind.ERROR
    assert [k.value for k in FaultKind] == [
        "memory",
        "infeasible-memory",
        "timeout",
        "diverged",
        "worker-died",
        "node-died",
        "error",
    ]


def test_trainer_fault_messages_name_settings_not_flags() -> None:
    assert str(Diverged(1, 2, float("nan"))) == (
        "diverged: loss is nan at epoch 1 step 2; "
        "a lower learning rate (lr) or a smaller network may train"
    )
    assert str(TrialTimeout(60, 61.25, 2, 7)) == (
        "timeout: 61.2 s exceeds the trial limit of 60 s (at epoch 2 step 7)"
    )
    assert str(InsufficientMemory(3 * 2**30, 2**30, " (detail)")) == (
        "memory: needs 3.0 GiB at micro-batch 1, 1.0 GiB available (detail)"
    )
    for exc in (Diverged(1, 2, 1.0), TrialTimeout(1, 2, 3, 4), InsufficientMemory(1, 2)):
        assert " --" not in str(exc)


@pytest.mark.parametrize(
    "exc",
    [Diverged(1, 2, float("inf")), TrialTimeout(60, 61.5, 1, 3), InsufficientMemory(9, 4, " x")],
)
def test_trainer_faults_pickle_with_their_fields(exc: TrialError) -> None:
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and str(again) == str(exc)
    assert vars(again) == vars(exc)


@pytest.mark.parametrize("kind", list(FaultKind))
def test_trial_failed_survives_a_pickle_round_trip(kind: FaultKind) -> None:
    failed = TrialFailed("out of memory: CUDA out of memory", kind)
    again = pickle.loads(pickle.dumps(failed))
    assert type(again) is TrialFailed and again.kind is kind
    assert str(again) == again.reason == "out of memory: CUDA out of memory"
    assert again.fault == Fault(kind, "out of memory: CUDA out of memory")
    assert again.__notes__ == [f"{KIND_NOTE}{kind.value}"]  # once, not again on unpickling


def test_trial_failed_takes_the_kind_by_name_and_defaults_to_error() -> None:
    assert TrialFailed("x", "worker-died").kind is FaultKind.WORKER_DIED
    assert TrialFailed("x").kind is FaultKind.ERROR
    with pytest.raises(ValueError):
        TrialFailed("x", "no such kind")


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 * 2**20, 3 * 2**40)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 TiB",
    ]
