"""How far MACs rank networks like their measured CPU latency, and what timing one costs.

Over networks spanning the search space (every block type, both groupings of the middle conv,
both kernels, expansions 1 and 6, phi 0 and 1 with EfficientNet-B0's coefficients, 10 classes)
each network is timed as the search times a candidate (``space.latency.measure_latency``: eval
mode, one thread, warm-up, the median of repeated batch-1 passes). Reported:

- the rank correlation of counted MACs with the measured latency (Kendall's tau-b, Spearman's
  rho, ``reports.ranks``) over all networks, and per block type the median latency per 100 M MACs
  (how much slower per MAC squeeze-excite and CondConv are);
- the run-to-run spread of one measurement: one network timed ``--runs`` times, the coefficient
  of variation of its medians (and the median within-run CV of all networks);
- the cost of timing one candidate: the median of the wall time of ``measure_latency`` (build,
  warm-up and repeats).

Figures measured on a machine busy with other work spread more; the CV says by how much.

    python benchmarks/latency.py                     # 48 networks, the figures of RESULTS.md
    python benchmarks/latency.py --count 6 --repeats 3 --warmup 1 --runs 2 --resolution 16 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from typing import Any

from reports.ranks import rank_correlation
from space import BLOCK_TYPES, KERNELS, MID_CONVS, ArchSpec, count_spec
from space.latency import LatencySettings, measure_latency

B0 = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}


def networks(count: int, resolution: int | None = None) -> list[ArchSpec]:
    """``count`` specs spanning the space; the block type varies fastest, so any prefix of
    three or more has every block type."""
    grid = itertools.product((0.0, 1.0), (1, 6), KERNELS, MID_CONVS, BLOCK_TYPES)
    specs = [
        ArchSpec(
            block=block,
            mid_conv=mid_conv,
            kernel=kernel,
            expansion=expansion,
            phi=phi,
            resolution=resolution,
            classes=10,
            **B0,
        )
        for phi, expansion, kernel, mid_conv, block in grid
    ]
    if count > len(specs):
        raise SystemExit(f"--count {count}: the grid has {len(specs)} networks")
    return specs[:count]


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = LatencySettings(
        batch=args.batch, threads=args.threads, warmup=args.warmup, repeats=args.repeats
    )
    rows = []
    for spec in networks(args.count, args.resolution):
        started = time.perf_counter()
        record = measure_latency(spec, settings)
        rows.append(
            {
                "spec": spec.canonical(),
                "block": spec.block,
                "mid_conv": spec.mid_conv,
                "kernel": spec.kernel,
                "macs": count_spec(spec).macs,
                "median_ms": record.median_ms,
                "cv": record.cv,
                "seconds": time.perf_counter() - started,
            }
        )
    ranks = rank_correlation([r["macs"] for r in rows], [r["median_ms"] for r in rows])
    per_block = {
        block: statistics.median(r["median_ms"] / r["macs"] * 1e8 for r in group)
        for block, group in itertools.groupby(
            sorted(rows, key=lambda r: BLOCK_TYPES.index(r["block"])), key=lambda r: r["block"]
        )
    }
    middle = networks(args.count, args.resolution)[len(rows) // 2]
    medians = [measure_latency(middle, settings).median_ms for _ in range(args.runs)]
    return {
        "networks": len(rows),
        "settings": {**settings.to_dict(), "resolution": args.resolution},
        "kendall_tau": ranks.kendall_tau,
        "spearman_rho": ranks.spearman_rho,
        "ms_per_100m_macs": per_block,
        "repeat_network": middle.canonical(),
        "repeat_medians_ms": medians,
        "run_to_run_cv": statistics.stdev(medians) / statistics.fmean(medians),
        "median_within_run_cv": statistics.median(r["cv"] for r in rows),
        "timing_cost_s": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    lines = [f"{'MACs':>14} {'ms':>9} {'cv':>6}  spec"]
    for row in sorted(report["rows"], key=lambda r: r["macs"]):
        lines.append(
            f"{row['macs']:>14,} {row['median_ms']:>9.3f} {row['cv']:>6.3f}  {row['spec']}"
        )
    per_block = ", ".join(f"{b} {v:.2f}" for b, v in report["ms_per_100m_macs"].items())
    lines += [
        f"{report['networks']} networks: MACs vs latency Kendall tau {report['kendall_tau']:.3f}, "
        f"Spearman rho {report['spearman_rho']:.3f}",
        f"median ms per 100 M MACs by block: {per_block}",
        f"run-to-run CV of one measurement ({len(report['repeat_medians_ms'])} runs of "
        f"{report['repeat_network']}): {report['run_to_run_cv']:.3f}; median within-run CV "
        f"{report['median_within_run_cv']:.3f}",
        f"cost of timing one candidate: median {report['timing_cost_s'] * 1000:.0f} ms",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48, help="networks (at most 48)")
    parser.add_argument("--resolution", type=int, default=None, help="pin the resolution")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="timings of one network for the CV")
    parser.add_argument("--json", action="store_true", help="a JSON object on the last line")
    args = parser.parse_args(argv)
    if args.count < 3 or args.runs < 2:
        parser.error("need --count >= 3 and --runs >= 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(args)
    print(table(report))
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
