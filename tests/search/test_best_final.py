"""`search best --final` and `search studies` on a study with its companion study of finals.

The searched study is ``tests.reports.conftest``'s (proxy accuracies: trial 0 0.80, 1 0.85,
2 0.84, 3 0.88); the finals swap the order of trials 1 and 2 (one discordant pair of six).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.cli import main
from space import ArchSpec
from tests.reports.conftest import STUDY, write_finals, write_study

FINALS: dict[int, list[float | str]] = {
    0: [0.90],
    1: [0.905, 0.915],
    2: [0.92, "failed"],
    3: [0.92, 0.94, 0.93],
}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return write_study(tmp_path / "study.db")


def test_best_final_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_finals(url, FINALS)
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--final", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["study"], record["final_study"]) == (STUDY, f"{STUDY}:final")
    front = record["front"]
    assert [r["trial"] for r in front] == [0, 1, 2, 3]
    assert [r["repeats"] for r in front] == [1, 2, 1, 3]
    assert [r["proxy_accuracy"] for r in front] == [0.80, 0.85, 0.84, 0.88]
    assert front[0]["test_std"] is None
    assert front[1]["test_mean"] == pytest.approx(0.91)
    assert front[1]["test_std"] == pytest.approx(0.0070710678)
    assert front[3]["test_mean"] == pytest.approx(0.93)
    assert front[3]["test_std"] == pytest.approx(0.01)
    assert (front[3]["test_min"], front[3]["test_max"]) == (0.92, 0.94)
    assert front[3]["macs"] == 282_836_832
    assert front[3]["spec"] == ArchSpec(block="se", expansion=6, classes=10).canonical()
    agreement = record["agreement"]
    assert agreement["kendall_tau"] == pytest.approx(4 / 6)
    assert agreement["spearman_rho"] == pytest.approx(0.8)
    assert agreement["networks"] == [0, 1, 2, 3]
    assert (agreement["proxy_best"], agreement["final_best"], agreement["agrees"]) == (3, 3, True)


def test_best_final_table(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_finals(url, FINALS)
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--final"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"final front of study {STUDY} ({STUDY}:final, test split): 4 of 4 retrained networks"
    )
    assert lines[1].split()[:3] == ["trial", "MACs", "proxy"]
    assert lines[5].split()[:6] == ["3", "282,836,832", "0.8800", "0.9300", "±", "0.0100"]
    assert lines[5].split()[6] == "3"  # repeats
    assert lines[-1] == (
        "the short trials' ranking agrees with the final training: tau 0.67 >= 0.5, rho 0.80; "
        "the proxy's best (trial 3) is also the final best"
    )


def test_best_final_without_finals_is_one_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for extra in ([], ["--json"]):
        assert main(["best", "--study", STUDY, "--storage", url, "--final", *extra]) == 0
        assert capsys.readouterr().out == (
            f"no final training for study {STUDY} yet; run `search final --study {STUDY}`\n"
        )


def test_best_without_final_is_unchanged(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_finals(url, FINALS)
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--json"]) == 0
    assert [t["number"] for t in json.loads(capsys.readouterr().out)] == [0, 1, 3, 4]


def test_studies_lists_the_companion_as_its_own_row(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_finals(url, FINALS)
    capsys.readouterr()
    assert main(["studies", "--storage", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by = {r["study"]: r for r in rows}
    assert set(by) == {STUDY, f"{STUDY}:final"}
    assert by[f"{STUDY}:final"]["complete"] == 7 and by[f"{STUDY}:final"]["failed"] == 1
    assert by[f"{STUDY}:final"]["best_accuracy"] == 0.94
