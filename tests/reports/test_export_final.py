"""`search export` prefers the weights of a final training (study "S:final") over the search's."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from search.cli import main
from search.study import schema
from space import ArchSpec, build_model, count_spec
from trainers.augment import InputContract
from trainers.evaluation import load_saved

STUDY = "pareto-test"  # tests/reports/conftest.py
SPEC = ArchSpec(classes=10)  # the study's trial 1
CONTRACT = InputContract(56, 1, 10, (72.9,), (90.1,), "fashion-mnist")


def _saved(directory: Path, mark: float) -> Path:
    """A saved directory as save_trial writes it: spec.json with the input contract, weights.pt
    of the spec (every tensor filled with ``mark``, to tell copies apart), result.json."""
    directory.mkdir(parents=True)
    (directory / "spec.json").write_text(
        json.dumps({**SPEC.to_dict(), "input": CONTRACT.to_dict()}, sort_keys=True)
    )
    state = {k: torch.full_like(v, mark) for k, v in build_model(SPEC).state_dict().items()}
    torch.save(state, directory / "weights.pt")
    (directory / "result.json").write_text(json.dumps({"epochs_run": 350, "accuracy": 0.9}))
    return directory


def _final(source: int, repeat: int, weights_dir: Path, state: TrialState) -> Any:
    attrs = {
        schema.SOURCE_TRIAL: source,
        schema.REPEAT: repeat,
        schema.WEIGHTS_DIR: str(weights_dir),
        schema.TEST_CORRECT: 9000 + repeat,
        schema.TEST_IMAGES: 10000,
        schema.TRAIN_IMAGES: 60000,
        schema.SPEC_JSON: SPEC.to_dict(),
        schema.STATUS: "complete" if state == TrialState.COMPLETE else "failed",
    }
    values = [(9000 + repeat) / 10000, count_spec(SPEC).macs]
    return create_trial(
        state=state, values=values if state == TrialState.COMPLETE else None, user_attrs=attrs
    )


@pytest.fixture
def finals(make_study: Callable[..., str], tmp_path: Path) -> tuple[str, dict[str, Path]]:
    """The report fixture's study (trial 1 saved weights in the search) and its "S:final" with
    finals of trial 1: repeat 1, repeat 0 (files gone), repeat 0, a failed repeat 0."""
    dirs = {
        "search": _saved(tmp_path / "search" / "trial-1", 1.0),
        "repeat1": _saved(tmp_path / "final" / "r1", 2.0),
        "repeat0": _saved(tmp_path / "final" / "r0", 3.0),
        "failed": _saved(tmp_path / "final" / "failed", 4.0),
    }
    url = make_study(weights_dir=dirs["search"])
    final = optuna.create_study(
        storage=url,
        study_name=schema.final_study_name(STUDY),
        directions=["maximize", "minimize"],
    )
    final.set_user_attr(schema.SOURCE_STUDY, STUDY)
    for trial in (
        _final(1, 1, dirs["repeat1"], TrialState.COMPLETE),
        _final(1, 0, tmp_path / "final" / "gone", TrialState.COMPLETE),
        _final(1, 0, dirs["repeat0"], TrialState.COMPLETE),
        _final(1, 0, dirs["failed"], TrialState.FAIL),
    ):
        final.add_trial(trial)
    return url, dirs


def _export(url: str, number: int, out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    argv = ["export", "--study", STUDY, "--trial", str(number), "--storage", url]
    assert main([*argv, "--out", str(out)]) == 0
    return capsys.readouterr().out.strip().splitlines()


def _mark(directory: Path) -> float:
    return float(next(iter(torch.load(directory / "weights.pt").values())).flatten()[0])


def test_export_prefers_the_final_repeat_0(
    finals: tuple[str, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = finals
    out = tmp_path / "out"
    lines = _export(url, 1, out, capsys)
    assert _mark(out) == 3.0  # repeat 0 with its files, not the search's weights (1.0)
    assert lines[2] == f"wrote {out / 'result.json'}"
    assert lines[3] == (
        f"wrote {out / 'weights.pt'}: the final training of trial 1: pareto-test:final trial 2, "
        "repeat 0, test accuracy 0.9000 (9000/10000 test images)"
    )
    assert lines[-1] == f"evaluate with: search evaluate --weights {out}"
    result = json.loads((out / "result.json").read_text())
    assert result["test_accuracy"] == 0.9 and result["test_correct"] == 9000
    assert (result["repeat"], result["final_trial"], result["source_trial"]) == (0, 2, 1)
    assert result["epochs_run"] == 350  # the final's own result.json, kept
    trial = json.loads((out / "trial.json").read_text())
    assert trial["number"] == 1 and trial["final"]["number"] == 2
    assert trial["final"]["study"] == "pareto-test:final"
    # spec.json carries the input contract and stays a spec file
    assert json.loads((out / "spec.json").read_text())["input"] == CONTRACT.to_dict()
    assert ArchSpec.from_json((out / "spec.json").read_text()) == SPEC
    assert load_saved(out).contract == CONTRACT
    assert main(["macs", "--spec", str(out / "spec.json"), "--json"]) == 0


def test_export_says_which_repeat(
    finals: tuple[str, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dirs = finals
    shutil.rmtree(dirs["repeat0"])
    out = tmp_path / "out"
    lines = _export(url, 1, out, capsys)
    assert _mark(out) == 2.0
    assert "pareto-test:final trial 0, repeat 1, test accuracy 0.9001" in lines[3]


def test_export_without_a_final_keeps_the_search_weights(
    finals: tuple[str, dict[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dirs = finals
    for name in ("repeat0", "repeat1"):
        shutil.rmtree(dirs[name])
    out = tmp_path / "out"
    lines = _export(url, 1, out, capsys)
    assert _mark(out) == 1.0 and not (out / "result.json").exists()
    assert lines[2].endswith("the searched trial's own weights (trial 1, no final training)")
    assert "final" not in json.loads((out / "trial.json").read_text())
    # the input contract saved with the search's weights comes along
    assert load_saved(out).contract == CONTRACT
    # a trial with no final and no weights: as before
    lines = _export(url, 0, tmp_path / "zero", capsys)
    assert "no weights.pt: the trial saved no weights" in lines
    assert not any(line.startswith("evaluate with") for line in lines)
