"""`search final` on the command line through real Ray: a study searched in this process, its
best trial retrained on real Fashion-MNIST and scored on the whole test split (10,000 images).

The default test checks the finished command and its resume (the same command trains nothing);
the slow one kills the driver with SIGKILL while a final trains and checks that the same command
recovers it and loses nothing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.cli import main
from search.cli.run import build_config, run_command
from search.driver.run import run_search
from search.study import schema
from tests.fixtures_driver import kill_tree

pytestmark = pytest.mark.ray
TEST_IMAGES = 10_000


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> str:
    folder = tmp_path_factory.mktemp("final-ray")
    url = f"sqlite:///{folder / 'search.db'}"
    flags = [*tiny_args, "--device", "cpu", "--study", "s", "--trials", "2", "--storage", url]
    with run_command.make_context("run", flags) as context:
        run_search(build_config(context.params), io.StringIO(), executor="inline")
    return url


def _final_args(url: str, folder: Path, *more: str) -> list[str]:
    return [
        "final", "--study", "s", "--storage", url, "--top", "1", "--warmup-epochs", "0",
        "--batch-size", "64", "--device", "cpu", "--weights-dir", str(folder), *more,
    ]  # fmt: skip


def _finals(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="s:final", storage=url).trials


def test_search_final_through_ray_scores_the_test_split_and_resumes(
    searched: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _final_args(searched, tmp_path, "--epochs", "1", "--subset", "300")
    assert main(args) == 0
    first = capsys.readouterr().err
    finals = _finals(searched)
    assert [t.state for t in finals] == [TrialState.COMPLETE]
    attrs = finals[0].user_attrs
    # 300 images of which a tenth held out to choose by (--val-fraction 0.1)
    assert attrs[schema.TEST_IMAGES] == TEST_IMAGES and attrs[schema.TRAIN_IMAGES] == 270
    assert attrs[schema.VAL_IMAGES] == 30
    assert finals[0].values[0] == attrs[schema.TEST_CORRECT] / TEST_IMAGES
    assert "1 of 1 finals complete" in first and "1 queued by this run" in first
    assert first.startswith(
        "estimate: 1 final(s) x 1 epoch(s) x 270 images (+10,030 evaluated) at "
    )

    assert main(args) == 0  # the same command again
    assert "0 queued by this run" in capsys.readouterr().err
    assert len(_finals(searched)) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_search_final_resumes_with_the_same_command(searched: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    optuna.copy_study(from_study_name="s", from_storage=searched, to_storage=f"sqlite:///{copy}")
    url = f"sqlite:///{copy}"
    args = _final_args(url, tmp_path, "--epochs", "2", "--subset", "1500")
    driver = subprocess.Popen(
        [sys.executable, "-m", "search.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        names = optuna.get_all_study_names(url)
        if "s:final" in names and any(t.state == TrialState.RUNNING for t in _finals(url)):
            break
        time.sleep(0.5)
    time.sleep(3)  # inside the training
    kill_tree(driver.pid)
    driver.wait(timeout=60)
    assert [t.state for t in _finals(url)] == [TrialState.RUNNING]

    assert main(args) == 0
    finals = _finals(url)
    assert [t.state for t in finals] == [TrialState.FAIL, TrialState.COMPLETE]
    assert finals[0].user_attrs[schema.FAIL_REASON] == schema.INTERRUPTED
    assert finals[1].user_attrs[schema.REQUEUED_FROM] == finals[0].number
    assert finals[1].user_attrs[schema.TEST_IMAGES] == TEST_IMAGES
