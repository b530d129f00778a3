"""Reading a real SQLite Optuna study into records."""

from __future__ import annotations

from collections.abc import Callable

from reports.records import study_data
from search.study.database import load_study, open_existing
from space import ArchSpec, count_spec


def read(url: str):
    return study_data(load_study(open_existing(url), "pareto-test", url), url)


def test_statuses_and_counts(make_study: Callable[..., str]) -> None:
    data = read(make_study(running=True))
    assert data.name == "pareto-test"
    assert data.config["budget_macs"] == 400_000_000
    assert data.version == "0.1.0"
    assert data.counts() == {
        "complete": 7,
        "pruned": 1,
        "infeasible": 1,
        "failed": 1,
        "running": 2,
        "waiting": 0,
    }
    assert data.running == 2
    assert data.classes == 10
    by_number = {t.number: t for t in data.trials}
    assert by_number[7].status == "infeasible" and by_number[7].state == "PRUNED"
    assert by_number[6].status == "pruned" and by_number[6].last_accuracy == 0.5
    assert by_number[8].fail_reason == "torch.OutOfMemoryError: CUDA out of memory"
    assert by_number[1].spec == ArchSpec(classes=10)
    assert by_number[1].accuracy == 0.85
    assert by_number[1].macs == count_spec(ArchSpec(classes=10)).macs == 193_783_104
    assert by_number[1].accuracy_per_epoch == (0.7, 0.82, 0.85)
    # only COMPLETE trials carry an accuracy; the others keep their MACs from the attrs
    assert by_number[7].accuracy is None and by_number[7].macs == 705_685_056
    assert not by_number[7].measured and by_number[1].measured


def test_no_running_trials(make_study: Callable[..., str]) -> None:
    data = read(make_study())
    assert data.running == 0
    assert len(data.trials) == 10
