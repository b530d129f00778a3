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


# the held-out validation split ranks the networks otherwise than the test split does: by it the
# front is {0, 1} (2 and 3 validate below 1 at more MACs) and the final best is 1, where the test
# scores alone would have made all four the front and 3 the best
VALIDATION = {0: [0.90], 1: [0.91, 0.92], 2: [0.91], 3: [0.912, 0.912, 0.912]}


def test_best_final_table(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_finals(url, FINALS, validation=VALIDATION)
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--final"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"final front of study {STUDY} ({STUDY}:final; objectives accuracy, macs): 2 of 4 "
        "retrained networks"
    )
    assert (
        lines[1] == "chosen by: validation accuracy on 6,000 held-out images (mean of the repeats)"
    )
    assert lines[2] == (
        "measured by: test accuracy on 10,000 test images (mean of the repeats, ± its standard "
        "error); it chose nothing"
    )
    assert lines[3].split()[:4] == ["trial", "MACs", "proxy", "acc"]
    # trial 0: one repeat, se = sqrt(0.9 * 0.1 / 10000) = 0.0030;
    # trial 1: mean 0.91 of (0.905, 0.915), std 0.00707: se = sqrt(0.91 * 0.09 / 1e4 + 0.00005 / 2)
    assert lines[4].split()[:7] == ["0", "107,610,528", "0.8000", "0.9000", "0.9000", "±", "0.0030"]
    assert lines[5].split()[:8] == [
        "1", "193,783,104", "0.8500", "0.9150", "0.9100", "±", "0.0058", "0.0071",
    ]  # fmt: skip
    assert lines[6] == "final best (chosen by validation): trial 1, test 0.9100 ± 0.0058"
    # 0.91 - 0.90 = 0.01 < 1.96 * hypot(0.00576, 0.0030) = 0.0127
    assert lines[7] == (
        "the data cannot order trials 1 and 0: test 0.9100 vs 0.9000, difference 0.0100 < "
        "0.0127 (1.96 standard errors of the difference)"
    )
    assert lines[-1] == (
        "the short trials' ranking disagrees with the final training: the proxy's best "
        "(trial 3) is not the final best by validation (trial 1)"
    )


def test_the_test_split_orders_what_lies_beyond_its_error(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_finals(url, {0: [0.80], 1: [0.90]})  # 0.10 apart, standard errors 0.004 and 0.003
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--final"]) == 0
    out = capsys.readouterr().out
    assert "cannot order" not in out
    assert "final best (chosen by validation): trial 1, test 0.9000 ± 0.0030" in out


def test_finals_without_a_validation_split_are_chosen_by_the_proxy(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finals of an older effnas (or ``--val-fraction 0``) hold out nothing: the proxy chooses,
    and the output says so rather than ranking by the test split."""
    write_finals(url, FINALS, held_out=False)
    capsys.readouterr()
    assert main(["best", "--study", STUDY, "--storage", url, "--final", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["agreement"]["chosen_by"] == "proxy"
    assert record["agreement"]["chooser"].startswith("the search's proxy accuracy")
    # by proxy (0.80, 0.85, 0.84, 0.88 at rising MACs) the front is 0, 1, 3
    assert [r["trial"] for r in record["front"]] == [0, 1, 3]
    assert record["final_best"] == 3 and record["agreement"]["final_best"] is None
    assert [r["val_mean"] for r in record["front"]] == [None, None, None]


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
