"""The final trainings next to the proxy: records, rank agreement, figures, HTML and the CLI.

The searched study is the one of ``conftest`` (proxy accuracies: trial 0 0.80, 1 0.85, 2 0.84,
3 0.88, 5 0.85); its companion "pareto-test:final" is written by ``write_finals`` with hand-chosen
test accuracies, so every mean, std, front and correlation below is known exactly.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from scipy import stats

from reports.build import report_figures, report_rows
from reports.final_figures import FINAL_FIGURE_IDS, SPREAD_NOTE
from reports.finals import FinalData, agreement, final_data, final_rows
from reports.html import render_report
from reports.records import study_data
from search.cli import main
from search.study.database import load_study, open_existing
from space import ArchSpec
from tests.reports.conftest import STUDY, write_finals

# Proxy order 0 < 2 < 1 < 3; final means in the same order: a perfect agreement.
AGREE: dict[int, list[float | str]] = {
    0: [0.90],
    2: [0.91, "failed"],
    1: [0.91, 0.92, 0.93],
    3: [0.92, 0.94, "running"],
    5: ["interrupted"],  # retrained, but no complete final: not ranked, off both fronts
}
# The same, with the final means of trials 2 and 1 swapped: one discordant pair of six.
SWAP: dict[int, list[float | str]] = {0: [0.90], 2: [0.92], 1: [0.91], 3: [0.93]}
# The proxy's order nearly reversed: trial 0 (worst proxy) is the final best.
REVERSED: dict[int, list[float | str]] = {0: [0.93], 2: [0.92], 1: [0.90], 3: [0.91]}


def read(url: str) -> FinalData | None:
    storage = open_existing(url)
    return final_data(load_study(storage, STUDY, url), storage)


def test_no_companion_study_means_none(make_study: Callable[..., str]) -> None:
    assert read(make_study()) is None


def test_a_companion_without_complete_trials_is_none(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, {0: ["running"], 1: ["failed"]})
    assert read(url) is None


def test_records_per_network(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, AGREE)
    data = read(url)
    assert data is not None
    assert (data.source_study, data.name) == (STUDY, f"{STUDY}:final")
    assert data.config == {"epochs": 30, "dataset": "fashion-mnist", "repeats": 3}
    assert [n.number for n in data.networks] == [0, 1, 2, 3, 5]
    by = {n.number: n for n in data.networks}
    assert by[1].test_accuracies == (0.91, 0.92, 0.93)
    assert by[1].mean == pytest.approx(0.92)
    assert by[1].std == pytest.approx(0.01)
    assert (by[1].low, by[1].high, by[1].count) == (0.91, 0.93, 3)
    assert by[3].mean == pytest.approx(0.93)
    assert by[3].std == pytest.approx(math.sqrt(2) * 0.01)
    assert by[3].count == 2 and len(by[3].repeats) == 3  # the running repeat is kept, not counted
    assert by[0].std is None and by[0].count == 1  # one repeat: no sample std
    assert by[2].count == 1 and [r.status for r in by[2].repeats] == ["complete", "failed"]
    assert by[5].mean is None and by[5].count == 0 and by[5].final_point("validation") is None
    assert by[3].proxy_accuracy == 0.88 and by[3].macs == 282_836_832
    assert by[3].spec is not None and by[3].spec.block == "se"
    assert by[1].params is not None
    assert data.counts == {
        "complete": 7,
        "pruned": 0,
        "infeasible": 0,
        "failed": 2,
        "running": 1,
        "waiting": 0,
    }
    # (mean, MACs): 0 (0.90, 107.6M), 1 (0.92, 193.8M), 2 (0.91, 200.9M), 3 (0.93, 282.8M)
    assert [n.number for n in data.final_front] == [0, 1, 3]
    assert [n.number for n in data.proxy_front] == [0, 1, 3]
    assert [n.number for n in data.measured] == [0, 1, 2, 3]


def test_perfect_agreement(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, AGREE)
    a = read(url).agreement
    assert a.ranked == (0, 1, 2, 3)
    assert a.tau == pytest.approx(1.0) and a.rho == pytest.approx(1.0)
    assert (a.proxy_best, a.final_best, a.agrees, a.note) == (3, 3, True, None)
    assert a.message == (
        "the short trials' ranking agrees with the final training: tau 1.00 >= 0.5, rho 1.00 "
        "(proxy vs test); the proxy's best (trial 3) is also the final best by validation"
    )


def test_one_swapped_pair_of_four(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, SWAP)
    a = read(url).agreement
    # by hand: 5 concordant, 1 discordant pair -> tau = 4 / 6; rank differences 0, 1, 1, 0 ->
    # rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert a.tau == pytest.approx(4 / 6) and a.rho == pytest.approx(0.8)
    proxy, final = [0.80, 0.85, 0.84, 0.88], [0.90, 0.91, 0.92, 0.93]  # trials 0, 1, 2, 3
    assert a.tau == pytest.approx(stats.kendalltau(proxy, final).statistic)
    assert a.rho == pytest.approx(stats.spearmanr(proxy, final).statistic)
    assert a.agrees and a.proxy_best == a.final_best == 3
    assert "tau 0.67 >= 0.5, rho 0.80" in a.message


def test_disagreement_line(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, REVERSED)
    data = read(url)
    a = data.agreement
    # proxy ranks 0 < 2 < 1 < 3, final ranks 3 > 2 > 0 > 1: 1 concordant, 5 discordant pairs
    assert a.tau == pytest.approx(-4 / 6)
    assert a.rho == pytest.approx(1 - 6 * (9 + 1 + 4 + 4) / 60)
    assert not a.agrees
    assert a.message == (
        "the short trials' ranking disagrees with the final training: tau -0.67 < 0.5 (proxy vs "
        "test); the proxy's best (trial 3) is not the final best by validation (trial 0)"
    )
    assert [n.number for n in data.final_front] == [0]  # the cheapest is also the best
    assert [n.number for n in data.proxy_front] == [0, 1, 3]


def test_fewer_than_three_networks_give_no_correlation(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, {0: [0.93], 3: [0.91]})
    a = read(url).agreement
    assert a.tau is None and a.rho is None
    assert a.note == (
        "rank agreement needs at least 3 retrained networks with a complete final (have 2)"
    )
    assert a.message == (
        "the short trials' ranking disagrees with the final training: "
        "the proxy's best (trial 3) is not the final best by validation (trial 0)"
    )


def test_two_agreeing_networks_say_why_there_is_no_tau(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, {0: [0.90], 3: [0.93]})
    a = read(url).agreement
    assert a.agrees and a.tau is None
    assert a.message == (
        "the short trials' ranking agrees with the final training: rank agreement needs at "
        "least 3 retrained networks with a complete final (have 2); the proxy's best (trial 3) "
        "is also the final best by validation"
    )


def test_constant_means_have_no_correlation(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, {0: [0.9], 1: [0.9], 3: [0.9]})
    a = read(url).agreement
    assert a.tau is None and a.rho is None and "all equal" in (a.note or "")
    assert a.final_best == 0  # equal means: the fewest MACs wins the tie


def test_agreement_of_an_empty_set() -> None:
    a = agreement([])
    assert a.ranked == () and not a.agrees and a.proxy_best is None
    assert a.message == "no retrained network has a complete final yet"


def test_rows(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, AGREE)
    rows = final_rows(read(url))
    assert [r["trial"] for r in rows] == [0, 1, 3, 2, 5]  # final front first, by MACs
    row = rows[2]
    assert row["final_front"] and row["proxy_front"] and row["repeats"] == 2
    assert row["test_accuracies"] == [0.92, 0.94]
    assert row["test_mean"] == pytest.approx(statistics.fmean([0.92, 0.94]))
    assert row["spec"] == ArchSpec(block="se", expansion=6, classes=10).canonical()


def test_figures(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, SWAP)
    data = read(url)
    study = study_data(load_study(open_existing(url), STUDY, url), url)
    figures = report_figures(study, data)
    assert list(figures) == ["pareto", "curves", "coefficients", *FINAL_FIGURE_IDS]
    fronts = {t.name: t for t in figures["final_fronts"].data}
    assert set(fronts) == {
        "retrained networks (test)",
        "final front (chosen by validation)",
        "retrained networks (proxy)",
        "proxy front",
    }
    assert [c[0] for c in fronts["final front (chosen by validation)"].customdata] == [
        0,
        1,
        2,
        3,
    ]  # 2 beats 1 here
    assert [c[0] for c in fronts["proxy front"].customdata] == [0, 1, 3]
    assert fronts["final front (chosen by validation)"].line.shape == "hv"
    assert figures["final_fronts"].layout.xaxis.type == "log"
    assert figures["final_fronts"].layout.xaxis2.type == "log"
    assert SPREAD_NOTE in figures["final_fronts"].layout.annotations[0].text
    scatter = figures["proxy_vs_final"]
    assert scatter.layout.title.text == (
        "Proxy vs final accuracy: Kendall tau 0.67, Spearman rho 0.80"
    )
    (points,) = scatter.data
    assert list(points.text) == ["trial 0", "trial 1", "trial 2", "trial 3"]
    assert list(points.x) == [0.80, 0.85, 0.84, 0.88]


def test_html_has_the_final_section(make_study: Callable[..., str]) -> None:
    url = make_study()
    write_finals(url, REVERSED)
    storage = open_existing(url)
    loaded = load_study(storage, STUDY, url)
    study, final = study_data(loaded, url), final_data(loaded, storage)
    html = render_report(study, report_figures(study, final), report_rows(study), final)
    assert '<h2 id="final">Final training (test split)</h2>' in html
    assert "tau -0.67 &lt; 0.5" in html and 'class="disagree" id="final-agreement"' in html
    for div_id in FINAL_FIGURE_IDS:
        assert f'<div id="{div_id}"' in html
    assert html.index('<div id="coefficients"') < html.index('id="final"')
    assert html.index('<div id="final_fronts"') < html.index('id="final-table"')
    assert html.index('id="final-table"') < html.index('id="trials"')
    final_rows_html = re.findall(r'<tr class="final-[a-z]+"><td>(\d+)</td>', html)
    assert final_rows_html == ["0", "1", "2", "3"]
    assert "0.9300" in html and "282,836,832" in html
    # the main trial table is unchanged
    assert re.findall(r"<tr>\s*<td>(\d+)</td>", html) == [
        "0", "1", "3", "4", "2", "5", "6", "7", "8", "9",
    ]  # fmt: skip


def test_html_without_finals_says_how_to_make_one(make_study: Callable[..., str]) -> None:
    url = make_study()
    study = study_data(load_study(open_existing(url), STUDY, url), url)
    html = render_report(study, report_figures(study), report_rows(study))
    assert (
        '<p id="final-none">no final training for study pareto-test yet; '
        "run `search final --study pareto-test`</p>"
    ) in html
    assert 'id="final_fronts"' not in html


def test_report_command_picks_the_search_beside_its_finals(
    make_study: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_study()
    write_finals(url, SWAP)
    out = tmp_path / "report.html"
    assert main(["report", "--storage", url, "--out", str(out)]) == 0  # no --study
    html = out.read_text()
    assert "<h1>Study pareto-test</h1>" in html and 'id="final-agreement"' in html
    assert "tau 0.67 &gt;= 0.5, rho 0.80" in html
    err = capsys.readouterr().err
    assert "final training: the short trials' ranking agrees" in err


def test_report_still_asks_for_a_name_with_two_searches(
    make_study: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_study()
    write_finals(url, SWAP)
    optuna.create_study(storage=url, study_name="other", directions=["maximize", "minimize"])
    assert main(["report", "--storage", url, "--format", "csv"]) == 2
    err = capsys.readouterr().err
    assert "holds 3 studies (other, pareto-test, pareto-test:final)" in err
