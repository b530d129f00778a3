"""`search run`'s closing table: the Pareto trials marked, an ms column only where something was
timed."""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState, create_trial

from search.driver.progress import summary_table
from search.study import schema


def _trial(number: int, accuracy: float, macs: int, latency: float | None = None) -> FrozenTrial:
    attrs = {
        "status": "complete",
        schema.MACS: macs,
        schema.PARAMS: 1000,
        schema.EPOCHS_RUN: 1,
        schema.STAGE: "joint",
        schema.SPEC: f"net{number}",
    }
    if latency is not None:
        attrs[schema.LATENCY_MS] = latency
    trial = create_trial(state=TrialState.COMPLETE, values=[accuracy, macs], user_attrs=attrs)
    trial.number = number
    return trial


def test_no_ms_column_without_latency_and_the_front_marked() -> None:
    lines = summary_table([_trial(0, 0.59, 21_000_000), _trial(1, 0.55, 31_000_000)]).splitlines()
    assert "ms" not in lines[0].split()
    assert lines[1].startswith("*    0") and "21,000,000" in lines[1] and lines[1].endswith("net0")
    assert lines[2].startswith("     1")  # dominated: more MACs, lower accuracy


def test_the_ms_column_shows_what_was_timed() -> None:
    lines = summary_table([_trial(0, 0.59, 21_000_000, 2.62), _trial(1, 0.63, 62_000_000)])
    header, first, second = lines.splitlines()  # both on the front: each row starts with '*'
    assert header.split()[6] == "ms"
    assert {first.split()[7], second.split()[7]} == {"2.62", "-"}
