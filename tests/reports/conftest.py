"""A real Optuna study in a temporary SQLite file, written exactly as the study schema says.

Trials (number: state/status, spec, accuracy, MACs):
  0 COMPLETE standard e=2            0.80  107,610,528   front
  1 COMPLETE paper preset standard   0.85  193,783,104   front (measures the standard reference)
  2 COMPLETE condconv                0.84  200,926,816   dominated by 1
  3 COMPLETE se e=6                  0.88  282,836,832   front
  4 COMPLETE se e=6 (duplicate of 3) 0.88  282,836,832   front (duplicate)
  5 COMPLETE standard k=5            0.85  216,512,832   dominated (same accuracy as 1, more MACs)
  6 PRUNED  "pruned"  se phi=1 (early-stopped after 1 epoch, last accuracy 0.5)
  7 PRUNED  "infeasible" condconv phi=2 (over budget, never trained)
  8 FAIL    "failed" standard e=6 (out of memory)
  9 COMPLETE standard e=2            0.79  107,610,528   dominated (same MACs as 0, lower accuracy)
  10, 11 RUNNING (only with running=True)

``write_finals`` adds the companion study "pareto-test:final" of `search final`: one trial per
(searched trial, repeat), values [test_accuracy, macs] on COMPLETE trials, with the searched
trial's candidate attrs and the final keys (source_trial, repeat, proxy_accuracy, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from space import ArchSpec, count_spec

STUDY = "pareto-test"
BUDGET = 400_000_000
FRONT = {0, 1, 3, 4}
B0 = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}


def _attrs(spec: ArchSpec, status: str, **extra: Any) -> dict[str, Any]:
    report = count_spec(spec)
    attrs: dict[str, Any] = {
        "spec": spec.canonical(),
        "spec_json": spec.to_dict(),
        "spec_id": spec.spec_id,
        "block": spec.block,
        "macs": report.macs,
        "params": report.params,
        "status": status,
        "seed": 0,
        "versions": {"effnas": "0.1.0", "torch": "2.13.0"},
        "stage": "joint",
    }
    attrs.update(extra)
    return attrs


def _complete(spec: ArchSpec, curve: list[float], **extra: Any) -> optuna.trial.FrozenTrial:
    attrs = _attrs(
        spec,
        "complete",
        accuracy_per_epoch=curve,
        loss_per_epoch=[1.0 / (i + 1) for i in range(len(curve))],
        epochs_run=len(curve),
        last_accuracy=curve[-1],
        seconds=12.5,
        images_per_second=480.0,
        peak_memory_bytes=123_456_789,
        **extra,
    )
    return create_trial(
        state=TrialState.COMPLETE,
        values=[curve[-1], attrs["macs"]],
        user_attrs=attrs,
        intermediate_values=dict(enumerate(curve)),
    )


def write_study(path: Path, running: bool = False, weights_dir: Path | None = None) -> str:
    """Create the study described in the module docstring; returns its storage URL."""
    return write_study_at(f"sqlite:///{path}", running, weights_dir)


def write_study_at(url: str, running: bool = False, weights_dir: Path | None = None) -> str:
    """The same study in any storage URL (e.g. PostgreSQL); returns ``url``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name=STUDY, directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    study.set_user_attr(
        "config",
        {
            "budget_macs": BUDGET,
            "dataset": "fashion-mnist",
            "epochs": 3,
            "subset": 600,
            "strategy": "joint",
            "space": {"block": ["standard", "se", "condconv"]},
            "seed": 0,
        },
    )
    study.set_user_attr("effnas_version", "0.1.0")
    saved = {"weights_dir": str(weights_dir)} if weights_dir is not None else {}
    trials = [
        _complete(ArchSpec(expansion=2, classes=10), [0.6, 0.75, 0.80]),
        _complete(ArchSpec(classes=10), [0.7, 0.82, 0.85], **saved),
        _complete(ArchSpec(block="condconv", classes=10), [0.7, 0.8, 0.84]),
        _complete(ArchSpec(block="se", expansion=6, classes=10), [0.75, 0.85, 0.88]),
        _complete(ArchSpec(block="se", expansion=6, classes=10), [0.74, 0.86, 0.88]),
        _complete(ArchSpec(kernel=5, classes=10), [0.7, 0.8, 0.85]),
        create_trial(
            state=TrialState.PRUNED,
            user_attrs=_attrs(
                ArchSpec(block="se", phi=1, classes=10, **B0),
                "pruned",
                accuracy_per_epoch=[0.5],
                loss_per_epoch=[1.9],
                epochs_run=1,
                last_accuracy=0.5,
            ),
            intermediate_values={0: 0.5},
        ),
        create_trial(
            state=TrialState.PRUNED,
            user_attrs=_attrs(
                ArchSpec(block="condconv", phi=2, classes=10, **B0), "infeasible", epochs_run=0
            ),
        ),
        create_trial(
            state=TrialState.FAIL,
            user_attrs=_attrs(
                ArchSpec(expansion=6, classes=10),
                "failed",
                fail_reason="torch.OutOfMemoryError: CUDA out of memory",
            ),
        ),
        _complete(ArchSpec(expansion=2, classes=10), [0.6, 0.7, 0.79]),
    ]
    if running:
        trials += [
            create_trial(
                state=TrialState.RUNNING,
                user_attrs=_attrs(ArchSpec(block="se", classes=10), "running"),
            ),
            create_trial(
                state=TrialState.RUNNING,
                user_attrs=_attrs(ArchSpec(block="se", kernel=5, classes=10), "running"),
            ),
        ]
    for trial in trials:
        study.add_trial(trial)
    return url


@pytest.fixture
def make_study(tmp_path: Path) -> Callable[..., str]:
    """``make_study(path=None, running=False, weights_dir=None) -> storage URL``."""

    def make(
        path: Path | None = None, running: bool = False, weights_dir: Path | None = None
    ) -> str:
        return write_study(path or tmp_path / "study.db", running, weights_dir)

    return make


FINAL_CONFIG = {"epochs": 30, "dataset": "fashion-mnist", "repeats": 3}
TEST_IMAGES = 10_000


VAL_IMAGES = 6_000


def write_finals(
    url: str,
    results: dict[int, list[float | str]],
    study: str = STUDY,
    validation: dict[int, list[float]] | None = None,
    held_out: bool = True,
) -> str:
    """Add ``study``:final to ``url``: for each searched trial number its repeats, in order.

    A float is a COMPLETE repeat's test accuracy; "failed", "interrupted" or "running" write
    such a trial instead. Each complete repeat also has a held-out validation accuracy: from
    ``validation`` (per trial, per complete repeat), else equal to its test accuracy; with
    ``held_out`` False none (finals of an older effnas, or ``--val-fraction 0``). Returns the
    companion study's name.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searched = {t.number: t for t in optuna.load_study(study_name=study, storage=url).trials}
    name = f"{study}:final"
    final = optuna.create_study(storage=url, study_name=name, directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        final.set_metric_names(["test_accuracy", "macs"])
    final.set_user_attr("source_study", study)
    final.set_user_attr("config", FINAL_CONFIG)
    for number, repeats in results.items():
        source = searched[number]
        keep = ("spec", "spec_json", "spec_id", "block", "macs", "params")
        for repeat, outcome in enumerate(repeats):
            attrs: dict[str, Any] = {k: source.user_attrs[k] for k in keep}
            attrs.update(
                source_trial=number,
                repeat=repeat,
                proxy_accuracy=source.values[0],
                seed=1000 + repeat,
                train_images=60_000,
                test_images=TEST_IMAGES,
            )
            if isinstance(outcome, float):
                attrs.update(
                    status="complete",
                    epochs_run=FINAL_CONFIG["epochs"],
                    test_correct=round(outcome * TEST_IMAGES),
                )
                if held_out:
                    done = sum(isinstance(o, float) for o in repeats[:repeat])
                    val = (validation or {}).get(number, [])
                    accuracy = val[done] if done < len(val) else outcome
                    attrs.update(
                        val_accuracy=accuracy,
                        val_correct=round(accuracy * VAL_IMAGES),
                        val_images=VAL_IMAGES,
                    )
                trial = create_trial(
                    state=TrialState.COMPLETE, values=[outcome, attrs["macs"]], user_attrs=attrs
                )
            elif outcome == "running":
                trial = create_trial(
                    state=TrialState.RUNNING, user_attrs={**attrs, "status": "running"}
                )
            else:
                reason = "interrupted" if outcome == "interrupted" else "diverged: loss is nan"
                attrs.update(status="failed", fail_reason=reason)
                trial = create_trial(state=TrialState.FAIL, user_attrs=attrs)
            final.add_trial(trial)
    return name
