"""benchmarks/latency.py: a tiny run reports the correlation, the spread and the cost."""

from __future__ import annotations

from tests.benchmarks.scripts import load, run_json


def test_a_tiny_run_reports_rank_correlation_spread_and_cost() -> None:
    argv = ["--count", "6", "--repeats", "3", "--warmup", "1", "--runs", "2"]
    report = run_json("latency", [*argv, "--resolution", "16", "--json"])
    assert report["networks"] == len(report["rows"]) == 6
    assert {r["block"] for r in report["rows"]} == {"standard", "se", "condconv"}
    assert -1.0 <= report["kendall_tau"] <= 1.0 and -1.0 <= report["spearman_rho"] <= 1.0
    assert len(report["repeat_medians_ms"]) == 2 and report["run_to_run_cv"] >= 0
    assert report["timing_cost_s"] > 0 and set(report["ms_per_100m_macs"]) == {
        "standard",
        "se",
        "condconv",
    }
    assert report["settings"]["threads"] == 1 and report["settings"]["repeats"] == 3


def test_the_grid_spans_the_space_with_enough_networks() -> None:
    specs = load("latency").networks(48)
    assert len(specs) == 48 and len({s.spec_id for s in specs}) == 48
    assert {s.block for s in specs} == {"standard", "se", "condconv"}
    assert {s.mid_conv for s in specs} == {"depthwise", "dense"}
    assert {s.kernel for s in specs} == {3, 5} and {s.phi for s in specs} == {0.0, 1.0}
