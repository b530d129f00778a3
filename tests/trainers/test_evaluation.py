"""The input contract and the test-split evaluation: what save_trial writes is what evaluation
applies, bit for bit (CPU, float32, one thread; tiny networks on random images)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from space import ArchSpec, build_model, resolve
from tests.trainers.random_data import random_data
from trainers import TrainConfig, TrialResult, train_trial
from trainers.augment import EVAL_STEPS, InputContract, channel_stats, resize_size
from trainers.evaluation import (
    EVAL_BATCH,
    evaluate_on,
    evaluate_saved,
    load_saved,
    record_evaluation,
)

SPEC = ArchSpec(expansion=1, resolution=16, classes=3)
Saved = tuple[Path, TrialResult]  # a saved directory and the result that wrote it
CONFIG = TrainConfig(epochs=1, batch_size=8, lr=0.05, threads=1, amp=False, eval_batch_size=64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """One epoch on 64 random 20 px grey images, saved; returns (directory, TrialResult)."""
    directory = tmp_path_factory.mktemp("saved") / "run"
    train, val = random_data(64, 0, channels=1, size=20), random_data(40, 1, channels=1, size=20)
    result = train_trial(SPEC, train, val, CONFIG, save_dir=directory)
    return directory, result


def test_contract_is_what_the_trainer_used(trained: Saved) -> None:
    directory, result = trained
    train = random_data(64, 0, channels=1, size=20)
    stats = channel_stats(train.images)
    document = json.loads((directory / "spec.json").read_text())
    written = document["input"]
    assert written["mean"] == list(stats.mean) and written["std"] == list(stats.std)
    assert (written["resolution"], written["resize"]) == (16, resize_size(16)) == (16, 18)
    assert (written["channels"], written["model_channels"], written["classes"]) == (1, 3, 3)
    assert written["dataset"] == "random"
    assert {k: written[k] for k in EVAL_STEPS} == EVAL_STEPS
    assert written["value_range"] == [0, 255] and written["crop"] == "centre"
    assert written["interpolation"] == "bilinear" and written["grey"] == "repeat"
    # the same contract in result.json and in the TrialResult; it reads back exactly
    contract = InputContract.from_dict(written, "spec.json")
    assert contract == result.input
    assert json.loads((directory / "result.json").read_text())["input"] == written
    assert contract.resolution == resolve(SPEC).resolution
    # the spec file stays a spec file: from_json skips the contract
    assert ArchSpec.from_json((directory / "spec.json").read_text()) == SPEC
    with pytest.raises(UserError, match=r"unknown spec field\(s\) \['input'\]"):
        ArchSpec.from_dict(document)


def test_evaluation_repeats_the_trainers_validation(trained: Saved) -> None:
    """The saved weights through the saved contract count what the trainer counted on the same
    images (one batch: the validation split is smaller than both evaluation batches)."""
    directory, result = trained
    val = random_data(40, 1, channels=1, size=20)
    saved = load_saved(directory)
    assert saved.spec == SPEC and len(val) < EVAL_BATCH
    evaluation = evaluate_on(saved.model, val, saved.contract, torch.device("cpu"))
    assert evaluation.images == 40
    assert evaluation.accuracy == result.accuracy
    assert evaluation.loss == result.loss
    again = evaluate_saved(directory, val, torch.device("cpu"))[1]
    assert again == evaluation
    assert evaluation.to_dict() == {
        "test_accuracy": evaluation.correct / 40,
        "test_correct": evaluation.correct,
        "test_images": 40,
    }


def test_record_evaluation_adds_test_figures(tmp_path: Path, trained: Saved) -> None:
    directory, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "result.json").write_text((directory / "result.json").read_text())
    evaluation = evaluate_saved(directory, random_data(30, 2, 1, 20), torch.device("cpu"))[1]
    record_evaluation(copy, evaluation)
    record = json.loads((copy / "result.json").read_text())
    assert record["test_correct"] == evaluation.correct and record["test_images"] == 30
    assert record["epochs_run"] == 1 and "input" in record


def test_data_that_does_not_fit_the_contract(trained: Saved) -> None:
    directory, _ = trained
    saved = load_saved(directory)
    colour = random_data(8, 3, channels=3, size=20)
    with pytest.raises(UserError, match="3-channel images but the network's input statistics"):
        evaluate_on(saved.model, colour, saved.contract, torch.device("cpu"))
    ten = random_data(8, 3, channels=1, size=20)
    ten = type(ten)(ten.images, ten.labels, 10, "ten")
    with pytest.raises(UserError, match="ten has 10 classes but the network was built for"):
        evaluate_on(saved.model, ten, saved.contract, torch.device("cpu"))


def _contract() -> dict[str, object]:
    return InputContract(16, 3, 10, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0), "cifar10").to_dict()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"interpolation": "bicubic"}, "interpolation differ from this version"),
        ({"crop": "random"}, "crop differ"),
        ({"mean": [1.0, 2.0]}, "one mean and one std per channel"),
        ({"std": "wide"}, "std 'wide' is not a list of finite numbers"),
        ({"resolution": 0}, "resolution 0 is not an integer >= 1"),
        ({"resize": 17}, "std or resize is not the trainer's"),
    ],
)
def test_bad_contracts(change: dict[str, object], fragment: str) -> None:
    assert InputContract.from_dict(_contract(), "x").dataset == "cifar10"
    with pytest.raises(UserError, match=fragment):
        InputContract.from_dict({**_contract(), **change}, "x")
    without = {k: v for k, v in _contract().items() if k != "classes"}
    with pytest.raises(UserError, match="the input contract has no 'classes'"):
        InputContract.from_dict(without, "x")


def test_weights_that_do_not_fit_the_spec(tmp_path: Path, trained: Saved) -> None:
    directory, _ = trained
    document = json.loads((directory / "spec.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "weights.pt").write_bytes((directory / "weights.pt").read_bytes())
    (other / "spec.json").write_text(json.dumps({**document, "expansion": 2}))
    with pytest.raises(UserError, match=r"weights.pt does not match .*spec.json: 0 missing"):
        load_saved(other)
    torch.save(build_model(SPEC.replace(block="se")).state_dict(), other / "weights.pt")
    (other / "spec.json").write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"\d+ unexpected"):
        load_saved(other)
