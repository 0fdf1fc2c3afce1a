"""Benchmark: issue 15's targets on the shipped "flash sale + steady week" (events/scenarios/tune/flash_sale_week.json).

    .venv/bin/python bench/tune_bench.py            # 1,000 SKUs, 7 simulated days: `stocksync tune` in full
    .venv/bin/python bench/tune_bench.py --quick    # 20 SKUs, 1 day, 2 candidates (what `make test` runs)
    .venv/bin/python bench/tune_bench.py --skip-tune --json   # only the timed week replay

Two parts, each in a process of its own:

- **One simulated week, timed.** The scenario replayed once with the real handlers (moto in process, the simulator,
  the template's default thresholds and sweep rates: the ``realtime_thresholds`` strategy), its wall and CPU seconds
  and the peak memory of that process (it holds moto, the simulator and every handler, so it is far above any one
  function's). Target: a week of 1,000 SKUs in under 5 minutes on 2 cores.
- **`stocksync tune --json --target 0.0005`** on the same file (``--workers`` replays side by side, at most 8
  candidates). The baseline, measured in the
  same run, is the 12-hour update feed on the same buyers. Targets: the tuned product over-sells at most 5 % of the
  units the 12-hour feed over-sells, and under-sells at most 2 % of the units wanted.

The targets are checked at full size only (the quick size is too small to carry them); a missed one is printed on
stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish, in_child, peak_memory_mb  # noqa: E402

SHIPPED = ROOT / "events" / "scenarios" / "tune" / "flash_sale_week.json"
FULL = {"skus": 1000, "days": 7, "candidates": 8}
QUICK = {"skus": 20, "days": 1, "candidates": 2}
# The over-selling the bench asks tune for: 1 unit in 2,000 sold. The 12-hour feed over-sells about 1 % of the
# week's units, and the target is 5 % of that (issue 15), so the search must hold the product near 0.
TARGET = 0.0005
WEEK_SECONDS_TARGET = 300
OVER_SOLD_VS_FEED = 0.05
UNDER_SOLD_OF_DEMAND = 0.02
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_TRACE_DISABLED": "1"}


def timed_week(path: str) -> dict[str, Any]:
    """Child process: the scenario replayed once as the template deploys it, timed from the stack's start."""
    os.environ.update(QUIET)
    from stocksync_dev.cli.replay import _logs_to_stderr, deployment_buckets, replay_scenario
    from stocksync_dev.cli.scenario import load_scenario
    from stocksync_dev.cli.tune import strategies, template_buckets

    scenario = load_scenario(Path(path), deployment_buckets=deployment_buckets())
    (strategy,) = [entry for entry in strategies(scenario, template_buckets()) if entry.name == "realtime_thresholds"]
    started, cpu_started = time.perf_counter(), time.process_time()
    with _logs_to_stderr(verbose=False):
        report = replay_scenario(strategy.scenario, in_process=True)
    demand = report["demand"]
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "peak_rss_mb": peak_memory_mb(),
        "units_wanted": demand["demand"],
        "sold": demand["sold"],
        "over_sold": demand["over_sold"],
        "under_sold": demand["under_sold"],
        "dead_letters": len(report["dead_letters"]),
        "graph_calls": sum(report["graph_calls"].values()),
        "dynamodb_requests": report.get("dynamodb_requests"),
    }


def run_tune(path: str, candidates: int, workers: int) -> tuple[dict[str, Any], float]:
    command = [sys.executable, "-m", "stocksync_dev.cli.main", "tune", path, "--json"]
    command += ["--candidates", str(candidates), "--workers", str(workers), "--target", str(TARGET)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **QUIET}, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"stocksync tune exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 SKUs, 1 day, 2 candidates")
    parser.add_argument("--skip-tune", action="store_true", help="only the timed week replay")
    parser.add_argument("--workers", type=int, default=2, help="tune's --workers (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL

    with tempfile.TemporaryDirectory() as folder:
        if args.quick:
            from stocksync_dev.cli.week_scenario import build

            path = Path(folder) / "week.json"
            path.write_text(json.dumps(build(size["skus"], size["days"])))
        else:
            path = SHIPPED
        week = in_child(timed_week, str(path))
        result: dict[str, Any] = {
            "skus": size["skus"],
            "days": size["days"],
            "week_replay_s": round(week["seconds"], 1),
            "week_replay_cpu_s": round(week["cpu_seconds"], 1),
            "week_replay_peak_rss_mb": round(week["peak_rss_mb"], 1),
            "units_wanted": week["units_wanted"],
            "graph_calls": week["graph_calls"],
            "dynamodb_requests": week["dynamodb_requests"],
        }
        problems = [f"the timed replay left {week['dead_letters']} dead letters"] if week["dead_letters"] else []
        if not args.skip_tune:
            tuned, seconds = run_tune(str(path), size["candidates"], args.workers)
            strategies = tuned["strategies"]
            feed_over = strategies["update_feed_12h"]["oversold_units"]
            best = strategies["tuned"]
            result.update(
                {
                    "tune_s": round(seconds, 1),
                    "tune_workers": args.workers,
                    "candidates_tried": tuned["candidates_tried"],
                    "strategies": {
                        name: {key: row[key] for key in ("sold_units", "oversold_units", "undersold_units")}
                        for name, row in strategies.items()
                    },
                    "tuned_over_vs_feed_12h": round(best["oversold_units"] / feed_over, 4) if feed_over else None,
                    "tuned_under_of_demand": round(best["undersold_units"] / tuned["demand_units"], 4),
                    "recommended": tuned["recommended"],
                }
            )
    if not args.quick:
        if week["seconds"] > WEEK_SECONDS_TARGET:
            problems.append(f"a simulated week took {week['seconds']:.0f} s, over {WEEK_SECONDS_TARGET} s")
        if not args.skip_tune:
            ratio = result["tuned_over_vs_feed_12h"]
            if ratio is None or ratio > OVER_SOLD_VS_FEED:
                problems.append(
                    f"tuned over-sold {ratio} of the 12-hour feed's over-selling, target {OVER_SOLD_VS_FEED}"
                )
            if result["tuned_under_of_demand"] > UNDER_SOLD_OF_DEMAND:
                problems.append(
                    f"tuned under-sold {result['tuned_under_of_demand']} of demand, target {UNDER_SOLD_OF_DEMAND}"
                )
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
