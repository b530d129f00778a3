"""`search final` through ``run_finals`` with the inline executor: real finals in this process,
on a temporary SQLite study and an image-folder data set the tests write (train/ and test/).

A tiny search (two trials) is retrained with a short recipe on 200 of the 240 training images
and scored on the whole test split. Checks what a user relies on: one final per (front trial,
repeat) with its test accuracy as ``correct / 90``; the same command again trains nothing; more
repeats add only the new ones; a final left running by a dead driver is re-queued and trained;
another recipe is one line; and a search never reads the test split.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

import search.driver.run as driver_run
from common.errors import UserError
from search.cli.run import build_config, run_command
from search.config import SearchConfig
from search.driver.final import run_finals
from search.driver.run import run_search
from search.final_config import FinalConfig
from search.study import schema
from search.study.front import pareto_front
from search.study.lease import Driver
from trainers.data import ImageData

CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 3, 80, 30
TEST_IMAGES = CLASSES * TEST_PER_CLASS


def _image_folder(root: Path) -> Path:
    """train/<class>/*.png and test/<class>/*.png: grey 12x12 noise around a class's level."""
    generator = np.random.default_rng(0)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label in range(CLASSES):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = generator.normal(60 + 70 * label, 40, (12, 12)).clip(0, 255)
                Image.fromarray(pixels.astype(np.uint8), mode="L").save(folder / f"{index}.png")
    return root


def _search(folder: Path, tiny_args: list[str]) -> SearchConfig:
    data = _image_folder(folder / "images")
    flags = [*tiny_args, "--device", "cpu", "--study", "s", "--trials", "2", "--subset", "200"]
    flags += ["--dataset", "folder", "--data-dir", str(data)]
    flags += ["--storage", f"sqlite:///{folder / 'search.db'}"]
    with run_command.make_context("run", flags) as context:
        config = build_config(context.params)
    run_search(config, io.StringIO(), executor="inline")
    return config


def _final(searched: SearchConfig, folder: Path, **changes: object) -> FinalConfig:
    options: dict[str, object] = {
        "study": searched.study,
        "storage": searched.storage,
        "epochs": 1,
        "warmup_epochs": 0,
        "batch_size": 64,
        "subset": 200,
        "device": "cpu",
        "data_dir": searched.data_dir,
        "weights_dir": str(folder / "weights"),
    }
    return FinalConfig(**{**options, **changes})  # type: ignore[arg-type]


def _finals(config: FinalConfig) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=config.final_study, storage=config.storage).trials


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> SearchConfig:
    return _search(tmp_path_factory.mktemp("final"), tiny_args)


def test_finals_train_the_front_once_score_the_test_split_and_resume(
    searched: SearchConfig, tmp_path: Path
) -> None:
    config = _final(searched, tmp_path)
    source = optuna.load_study(study_name="s", storage=searched.storage)
    front = [t.number for t in pareto_front(source.trials)]

    summary = run_finals(config, io.StringIO(), executor="inline")
    assert summary.queued == len(front) and summary.kept == 0
    assert summary.counts.complete == len(front) and not summary.interrupted
    finals = _finals(config)
    assert sorted(t.user_attrs[schema.SOURCE_TRIAL] for t in finals) == sorted(front)
    for final in finals:
        attrs = final.user_attrs
        assert final.state == TrialState.COMPLETE
        # 200 images, a tenth held out (--val-fraction 0.1) to choose by: never the test split
        assert attrs[schema.TEST_IMAGES] == TEST_IMAGES and attrs[schema.TRAIN_IMAGES] == 180
        assert attrs[schema.VAL_IMAGES] == 20
        assert attrs[schema.VAL_ACCURACY] == attrs[schema.VAL_CORRECT] / 20
        assert final.values[0] == attrs[schema.TEST_CORRECT] / TEST_IMAGES
        origin = source.trials[attrs[schema.SOURCE_TRIAL]]
        assert attrs[schema.SPEC] == origin.user_attrs[schema.SPEC]
        assert final.values[1] == origin.values[1]  # the same network: the same MACs
        assert attrs[schema.PROXY_ACCURACY] == origin.values[0]
        assert (Path(attrs[schema.WEIGHTS_DIR]) / "weights.pt").is_file()
    study = optuna.load_study(study_name=config.final_study, storage=config.storage)
    assert study.user_attrs[schema.SOURCE_STUDY] == "s"
    assert study.metric_names == schema.FINAL_METRIC_NAMES

    again = run_finals(config, io.StringIO(), executor="inline")  # the same command
    assert again.queued == 0 and again.kept == len(front)
    assert len(_finals(config)) == len(front)  # nothing trained twice

    more = run_finals(config.replace(repeats=2), io.StringIO(), executor="inline")
    assert more.queued == len(front) and more.counts.complete == 2 * len(front)
    finals = _finals(config)
    seeds = {(t.user_attrs[schema.SOURCE_TRIAL], t.user_attrs[schema.REPEAT]) for t in finals}
    assert len(seeds) == 2 * len(front)  # each (trial, repeat) once


def test_a_final_left_running_by_a_dead_driver_is_requeued(
    searched: SearchConfig, tmp_path: Path
) -> None:
    config = _final(searched, tmp_path, top=1, storage=_copy(searched.storage, tmp_path))
    storage = config.storage
    study = optuna.create_study(
        study_name=config.final_study, storage=storage, directions=list(schema.DIRECTIONS)
    )
    study.set_user_attr(schema.CONFIG, config.identity())
    best = max(
        (t for t in optuna.load_study(study_name="s", storage=storage).trials if t.values),
        key=lambda t: (t.values[0], -t.values[1]),
    )
    study.enqueue_trial({}, user_attrs={schema.SOURCE_TRIAL: best.number, schema.REPEAT: 0})
    taken = study.ask()  # a driver took it ...
    taken.set_user_attr(schema.DRIVER, Driver.here().attr())  # ... and is gone (this process)

    summary = run_finals(config, io.StringIO(), executor="inline")
    finals = _finals(config)
    assert [t.state for t in finals] == [TrialState.FAIL, TrialState.COMPLETE]
    assert finals[0].user_attrs[schema.FAIL_REASON] == schema.INTERRUPTED
    assert finals[1].user_attrs[schema.REQUEUED_FROM] == 0
    assert finals[1].user_attrs[schema.SOURCE_TRIAL] == best.number
    assert summary.queued == 0 and summary.counts.complete == 1


def test_another_recipe_or_a_bad_choice_is_one_line(searched: SearchConfig, tmp_path: Path) -> None:
    config = _final(searched, tmp_path, top=1, storage=_copy(searched.storage, tmp_path))
    run_finals(config, io.StringIO(), executor="inline")
    with pytest.raises(UserError, match=r"another recipe \(epochs: 1 -> 2\)"):
        run_finals(config.replace(epochs=2), io.StringIO(), executor="inline")
    with pytest.raises(UserError, match=r"--trials 99: not complete trials of study 's'"):
        run_finals(config.replace(top=None, trials=(99,)), io.StringIO(), executor="inline")
    with pytest.raises(UserError, match="is a study of finals"):
        run_finals(config.replace(study="s:final"), io.StringIO(), executor="inline")
    with pytest.raises(UserError, match="no study 'nope'"):
        run_finals(config.replace(study="nope"), io.StringIO(), executor="inline")


def test_another_device_or_an_older_recipe_is_one_line(
    searched: SearchConfig, tmp_path: Path
) -> None:
    """A final on the CPU is not a repeat of one on CUDA (float32 vs bf16); finals of an older
    effnas held out nothing, and the refusal says how to resume them."""
    config = _final(searched, tmp_path, top=1, storage=_copy(searched.storage, tmp_path))
    run_finals(config, io.StringIO(), executor="inline")
    final = optuna.load_study(study_name=config.final_study, storage=config.storage)
    stored = final.user_attrs[schema.CONFIG]
    assert (stored["device"], stored["val_fraction"]) == ("cpu", 0.1)
    final.set_user_attr(schema.CONFIG, {**stored, "device": "cuda"})
    db = Path(config.storage.removeprefix("sqlite:///"))
    before = db.read_bytes()
    with pytest.raises(UserError, match=r"another recipe \(device: 'cuda' -> 'cpu'\)"):
        run_finals(config, io.StringIO(), executor="inline")
    older = {k: v for k, v in stored.items() if k not in ("device", "data_dir", "val_fraction")}
    final.set_user_attr(schema.CONFIG, older)
    before = db.read_bytes()
    with pytest.raises(UserError, match=r"pass --val-fraction 0 to resume them"):
        run_finals(config, io.StringIO(), executor="inline")
    assert db.read_bytes() == before
    summary = run_finals(config.replace(val_fraction=0.0), io.StringIO(), executor="inline")
    assert summary.queued == 0 and summary.kept == 1  # resumed: nothing trained again
    remembered = optuna.load_study(study_name=config.final_study, storage=config.storage)
    assert remembered.user_attrs[schema.CONFIG]["device"] == "cpu"


def test_a_finals_epochs_show_as_progress_with_an_estimate_and_an_eta(
    searched: SearchConfig, tmp_path: Path
) -> None:
    """A final validates nothing while it trains: its epochs report progress only (the count and
    the training loss, no accuracy), which the ETA runs on; the estimate comes first."""
    config = _final(searched, tmp_path, top=1, epochs=2, storage=_copy(searched.storage, tmp_path))
    stream = io.StringIO()
    run_finals(config, stream, executor="inline")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("estimate: 1 final(s) x 2 epoch(s) x 180 images (+110 evaluated)")
    (epoch,) = [line for line in lines if " epoch: " in line]
    assert re.match(r"trial 0 epoch: epoch 1 training loss \d+\.\d{4} \| ", epoch), epoch
    assert re.search(r", ETA \d+ s \(from 1 epochs\)$", epoch), epoch
    (final,) = _finals(config)
    assert final.state == TrialState.COMPLETE and final.user_attrs[schema.EPOCHS_RUN] == 2
    assert final.user_attrs[schema.ACCURACY_PER_EPOCH] == []  # nothing validated on the way


def _final_command(config: FinalConfig, barrier: Any, log: str) -> None:
    """One `search final` in a process of its own (spawned), reaching the queue together with
    the other one: the companion study is opened only once both have loaded everything, and
    every enqueue waits 1 s, so without a lock both would read the queue empty and fill it
    twice."""
    import search.driver.final as driver_final

    real_open = driver_final._open_final
    real_enqueue = optuna.Study.enqueue_trial

    def open_together(*args: Any) -> optuna.Study:
        barrier.wait(timeout=240)
        return real_open(*args)

    def slow_enqueue(self: optuna.Study, *args: Any, **kwargs: Any) -> None:
        time.sleep(1.0)
        real_enqueue(self, *args, **kwargs)

    driver_final._open_final = open_together
    optuna.Study.enqueue_trial = slow_enqueue  # type: ignore[method-assign]
    with open(log, "w") as stream:
        run_finals(config, stream, executor="inline")


def test_two_concurrent_commands_queue_each_final_once(
    searched: SearchConfig, tmp_path: Path
) -> None:
    storage = _copy(searched.storage, tmp_path)
    config = _final(searched, tmp_path, top=1, repeats=2, storage=storage)
    pairs = 2
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    logs = [str(tmp_path / f"command{i}.log") for i in range(2)]
    commands = [context.Process(target=_final_command, args=(config, barrier, log)) for log in logs]
    for command in commands:
        command.start()
    for command in commands:
        command.join(300)
    assert [c.exitcode for c in commands] == [0, 0], [Path(log).read_text() for log in logs]
    finals = _finals(config)
    queued = [(t.user_attrs[schema.SOURCE_TRIAL], t.user_attrs[schema.REPEAT]) for t in finals]
    assert len(queued) == len(set(queued)) == pairs  # each (trial, repeat) queued once
    assert all(t.state == TrialState.COMPLETE for t in finals)


class _Sealed(ImageData):
    """A test split that fails whoever reads its images or labels once it is sealed."""

    def __getattribute__(self, name: str) -> object:
        sealed = object.__getattribute__(self, "__dict__").get("sealed", False)
        if sealed and name in ("images", "labels"):
            raise AssertionError("a search read the test split")
        return super().__getattribute__(name)

    def seal(self) -> _Sealed:
        object.__setattr__(self, "sealed", True)
        return self


def test_a_search_never_reads_the_test_split(
    tmp_path: Path, tiny_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = driver_run.load_splits

    def sealed(name: str, data_dir: object = None) -> tuple[ImageData, ImageData, None]:
        train, test, own_val = real(name, data_dir)
        return train, _Sealed(test.images, test.labels, test.classes, test.name).seal(), own_val

    monkeypatch.setattr(driver_run, "load_splits", sealed)
    config = _search(tmp_path, tiny_args)
    trials = optuna.load_study(study_name=config.study, storage=config.storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2


def _copy(url: str, folder: Path) -> str:
    """The searched database copied into ``folder``, without finals (each test owns its
    companion study)."""
    target = folder / "copy.db"
    with (
        sqlite3.connect(url.removeprefix("sqlite:///")) as source,
        sqlite3.connect(target) as copy,
    ):
        source.backup(copy)
    copied = f"sqlite:///{target}"
    if "s:final" in optuna.get_all_study_names(copied):
        optuna.delete_study(study_name="s:final", storage=copied)
    return copied
