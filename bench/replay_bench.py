"""Benchmark: issue 12's local replay (a catalog published, one warehouse change for every SKU, `run: pipeline` until
quiet) as `stocksync replay` runs it, beside the same replay with its AWS calls sent over HTTP, as before issue 12.

    .venv/bin/python bench/replay_bench.py            # 12,000 SKUs (events/scenarios/scale/catalog_12000.json)
    .venv/bin/python bench/replay_bench.py --quick    # 100 SKUs (what `make test` runs)
    .venv/bin/python bench/replay_bench.py --skus 3000 --no-baseline --json

Each side runs in a child process of its own (moto server, the simulator and the handlers, as `stocksync replay`
runs them), so the peak memory is that process's. Reported: wall seconds and SKUs per second of each side, the
speed-up (wall, and CPU seconds of the process, steadier when other work shares the 2 cores), the items_batch
calls and pushes, and each side's peak memory. The scenario is built with
``generate_skus`` and ``warehouse_all`` (README, "The scenario format"); the replay must end with every SKU's catalog
at its new level, confirmed, nothing dead-lettered and no difference from A.

The baseline keeps the moto speed-ups (stocksync_dev.local.moto_speedups) and only puts the socket back: before
issue 12 moto's SQS receive was quadratic too, and at full size that replay did not finish in 25 minutes. With the
baseline the full size takes about three times as long as the replay alone; ``--no-baseline`` skips it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish, in_child, peak_memory_mb  # noqa: E402

FULL_SKUS = 12_000
QUICK_SKUS = 100
START_LEVEL, NEW_LEVEL = 20, 19
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_TRACE_DISABLED": "1"}


def scenario_for(skus: int) -> dict[str, Any]:
    """The shipped scale scenario's steps for ``skus`` SKUs."""
    return {
        "description": f"issue 12's replay at {skus} SKUs",
        "generate_skus": [{"prefix": "SKU-", "count": skus, "warehouse": START_LEVEL}],
        "steps": [{"warehouse_all": NEW_LEVEL}, {"run": "pipeline"}],
    }


def run_replay(skus: int, in_process: bool) -> dict[str, Any]:
    """Child process: the replay, timed from the stack's start to the report."""
    os.environ.update(QUIET)
    from stocksync_dev.cli.replay import deployment_buckets, replay_scenario
    from stocksync_dev.cli.scenario import parse_scenario

    scenario = parse_scenario(scenario_for(skus), deployment_buckets=deployment_buckets())
    started, cpu_started = time.perf_counter(), time.process_time()
    report = replay_scenario(scenario, in_process=in_process)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    wrong = [
        rid
        for rid, shown in report["catalog"].items()
        if shown["units"] != NEW_LEVEL or not report["skus"][rid]["confirmed"]
    ]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak_memory_mb(),
        "skus_in_catalog": len(report["catalog"]),
        "wrong": wrong[:5],
        "wrong_count": len(wrong),
        "dead_letters": len(report["dead_letters"]),
        "differs_from_a": len(report["catalog_differs_from_a"]),
        "items_batch_calls": report["catalog_loop"]["items_batch_calls"],
        "pushes": report["catalog_loop"]["pushes"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=FULL_SKUS, help="SKUs in the catalog")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SKUS} SKUs")
    parser.add_argument("--no-baseline", action="store_true", help="skip the over-HTTP baseline")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.skus = QUICK_SKUS

    replay = in_child(run_replay, args.skus, True)
    result: dict[str, Any] = {
        "skus": args.skus,
        "replay_s": round(replay["seconds"], 1),
        "replay_cpu_s": round(replay["cpu_seconds"], 1),
        "replay_skus_per_s": round(args.skus / replay["seconds"], 1),
        "replay_peak_rss_mb": round(replay["peak_rss_mb"], 1),
        "items_batch_calls": replay["items_batch_calls"],
        "pushes": replay["pushes"],
    }
    sides = [replay]
    if not args.no_baseline:
        baseline = in_child(run_replay, args.skus, False)
        sides.append(baseline)
        result.update(
            {
                "baseline_over_http_s": round(baseline["seconds"], 1),
                "baseline_cpu_s": round(baseline["cpu_seconds"], 1),
                "baseline_skus_per_s": round(args.skus / baseline["seconds"], 1),
                "speedup_vs_baseline": round(baseline["seconds"] / replay["seconds"], 2),
                "cpu_speedup_vs_baseline": round(baseline["cpu_seconds"] / replay["cpu_seconds"], 2),
                "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
            }
        )
    problems = []
    for name, side in zip(("replay", "baseline"), sides, strict=False):
        if side["skus_in_catalog"] != args.skus or side["wrong_count"]:
            wrong = f"{side['wrong_count']} SKUs not at {NEW_LEVEL} and confirmed, e.g. {side['wrong']}"
            problems.append(f"{name}: {wrong}")
        if side["dead_letters"] or side["differs_from_a"]:
            problems.append(f"{name}: {side['dead_letters']} dead letters, {side['differs_from_a']} differences from A")
    if args.skus == FULL_SKUS and replay["seconds"] > 600:
        problems.append(f"the full replay took {replay['seconds']:.0f} s, over issue 12's 10 minutes")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
