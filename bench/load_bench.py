"""Benchmark: issue 16's load (item 6): a simulated day of orders over a large catalog through the whole pipeline,
webshop events and Facebook/Instagram orders mixed, with a flash sale on 10 hot SKUs, as `stocksync replay` runs it.

    .venv/bin/python bench/load_bench.py                  # 100,000 orders over 20,000 SKUs in one day (the issue's)
    .venv/bin/python bench/load_bench.py --quick          # 150 orders over 50 SKUs (what `make test` runs)
    .venv/bin/python bench/load_bench.py --orders 10000 --skus 2000 --json

The day is played with ``demand`` steps (README, "The scenario format"): buyers drawn from a seed, one unit an
order, half on Facebook/Instagram (placed on the simulator, read by poll_orders) and half in the web shop (an
"Order Changed" event on the bus, through order_events); the warehouse ships each sale 30 minutes later in waves
every 15 minutes (stock levels through warehouse_events, "orders synced" notices), recompute, push_batch and
verify_batch keep the catalog; a final ``run: pipeline`` settles it. Every regular SKU sells at one rate, the 10 hot
SKUs at ten times it, and from noon for an hour the hot SKUs' rate is multiplied so that the flash sale is a tenth
of the day's orders. A demand step plays at most MAX_DEMAND_UNITS expected units, so the day is cut into equal
windows, each one step (3 of 8 hours at full size; a window ends when its last sale has shipped, so the simulated
clock runs the day plus up to 45 minutes a window).

Checked at the end (each a problem, exit 1): every order the buyers placed is in the order ledger (OrdersTable:
its id, its source, its SKU and unit; none missing, none extra), no message in any dead-letter queue, every SKU's
catalog shows its A and is confirmed, and every SKU's warehouse level I is its start less the units shipped.
Reported: orders placed by channel and the ledger's count, those checks, DynamoDB requests and Graph API calls per
order (from the first step on: the initial publish of the catalog is not counted), wall and CPU seconds, orders a
second and the peak memory of the process that ran moto, the simulator and every handler.

The baseline, in the same run and in a process of its own: the same day at a tenth of the size (orders and SKUs),
so the per-order figures show whether the cost of an order grows with the load (a quadratic step shows as a
per-order wall time that grows with the size; a batching that stops working as requests per order that change).
``--no-baseline`` skips it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish, in_child, peak_memory_mb  # noqa: E402

FULL_ORDERS, FULL_SKUS = 100_000, 20_000
QUICK_ORDERS, QUICK_SKUS = 150, 50
BASELINE_DIVISOR = 10
HOT_SKUS = 10
HOT_FACTOR = 10  # a hot SKU's rate outside the sale, in regular SKUs' rates
FLASH_SHARE = 0.1  # of the day's orders, sold in the flash sale
FLASH_AT_MINUTE, FLASH_MINUTES = 12 * 60, 60
DAY_MINUTES = 24 * 60
PLATFORM_SHARE = 0.5
SHIP_AFTER_MINUTES, SHIP_EVERY_MINUTES = 30, 15
SEED = 16
WINDOWS = (1, 2, 3, 4, 6, 8, 12, 24)  # demand steps a day may be cut into (windows of whole hours)
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_TRACE_DISABLED": "1"}
# A buyer's order id as the replay's demand step makes it (cli/replay.py ``_buyer``), wherever a source prefixes it.
DEMAND_ORDER = re.compile(r"(demand\d+-\d+-(?:fb|web))$")


def plan(orders: int, skus: int) -> dict[str, Any]:
    """Rates and stock for ``orders`` expected orders over ``skus`` SKUs in a day."""
    from stocksync_dev.cli.scenario import MAX_DEMAND_UNITS

    regular = skus - HOT_SKUS
    # Outside the sale: (1 - FLASH_SHARE) of the orders, a hot SKU weighing HOT_FACTOR regular ones.
    rate = (1 - FLASH_SHARE) * orders / (DAY_MINUTES / 60 * (regular + HOT_FACTOR * HOT_SKUS))
    hot_rate = HOT_FACTOR * rate
    sale_rate = FLASH_SHARE * orders / HOT_SKUS / (FLASH_MINUTES / 60)  # per hot SKU, an hour, in the sale
    windows = next(
        count
        for count in WINDOWS
        if (1 - FLASH_SHARE) * orders / count + FLASH_SHARE * orders <= 0.8 * MAX_DEMAND_UNITS or count == WINDOWS[-1]
    )
    regular_day = rate * DAY_MINUTES / 60
    hot_day = hot_rate * DAY_MINUTES / 60 + FLASH_SHARE * orders / HOT_SKUS
    return {
        "rate": rate,
        "hot_rate": hot_rate,
        "factor": sale_rate / hot_rate,
        "windows": windows,
        # Enough that few buyers are turned away for want of stock: the load is the orders, not a sell-out.
        "regular_stock": math.ceil(4 * regular_day) + 10,
        "hot_stock": math.ceil(1.5 * hot_day) + 10,
    }


def scenario_for(orders: int, skus: int) -> dict[str, Any]:
    """The day as a replay scenario: generated SKUs, one demand step per window, a final run of the pipeline."""
    figures = plan(orders, skus)
    hot = [f"HOT-{number:02d}" for number in range(HOT_SKUS)]
    regular = [f"SKU-{number:05d}" for number in range(skus - HOT_SKUS)]
    window = DAY_MINUTES // figures["windows"]
    steps: list[dict[str, Any]] = []
    for index in range(figures["windows"]):
        begins = index * window
        spikes = []
        if begins <= FLASH_AT_MINUTE < begins + window:
            spikes = [{"at_minute": FLASH_AT_MINUTE - begins, "minutes": FLASH_MINUTES, "factor": figures["factor"]}]
        steps.append(
            {
                "demand": {
                    "minutes": window,
                    "seed": SEED + index,
                    "platform_share": PLATFORM_SHARE,
                    "ship_after_minutes": SHIP_AFTER_MINUTES,
                    "ship_every_minutes": SHIP_EVERY_MINUTES,
                    "profiles": [
                        {"skus": hot, "units_per_hour": figures["hot_rate"], "spikes": spikes},
                        {"skus": regular, "units_per_hour": figures["rate"]},
                    ],
                }
            }
        )
    steps.append({"run": "pipeline"})
    return {
        "description": f"issue 16's load: {orders} orders over {skus} SKUs in a day, a flash sale on {HOT_SKUS}",
        "generate_skus": [
            {"prefix": "HOT-", "count": HOT_SKUS, "digits": 2, "warehouse": figures["hot_stock"], "bucket": "fast"},
            {"prefix": "SKU-", "count": skus - HOT_SKUS, "warehouse": figures["regular_stock"], "bucket": "medium"},
        ],
        "steps": steps,
    }


def _ledger(local: Any) -> list[dict[str, Any]]:
    """Every row of the order ledger (OrdersTable), read after the replay (not counted in its requests)."""
    from stocksync.dal.codec import decode

    table = local.function_environment()["ORDERS_TABLE"]
    rows = []
    for page in local.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        rows.extend(decode(raw) for raw in page["Items"])
    return rows


def run_day(orders: int, skus: int) -> dict[str, Any]:
    """Child process: the day, timed from the stack's start to the report, then checked against the ledger."""
    os.environ.update(QUIET)
    from stocksync_dev.cli import replay
    from stocksync_dev.cli.replay import deployment_buckets, replay_scenario
    from stocksync_dev.cli.scenario import parse_scenario

    scenario = parse_scenario(scenario_for(orders, skus), deployment_buckets=deployment_buckets())
    # The Graph calls of the initial publish are left out, as the report leaves out its DynamoDB requests.
    calls_after_publish: Counter[tuple[str, str]] = Counter()
    publish = replay.ScenarioPlayer.publish_initial_state

    def published(player: Any) -> None:
        publish(player)
        calls_after_publish.update(player._sim.calls)

    replay.ScenarioPlayer.publish_initial_state = published  # type: ignore[method-assign]
    ledger: list[dict[str, Any]] = []
    graph: Counter[str] = Counter()

    def keep(local: Any, sim: Any, _report: dict[str, Any]) -> None:
        ledger.extend(_ledger(local))
        for (_method, endpoint), count in (sim.calls - calls_after_publish).items():
            graph[endpoint] += count

    started, cpu_started = time.perf_counter(), time.process_time()
    report = replay_scenario(scenario, in_process=True, keep=keep)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak_memory_mb(),
        **check(scenario, report, ledger),
        "dynamodb_requests": report["dynamodb_requests"],
        "graph_calls": dict(sorted(graph.items())),
        "items_batch_calls": report["catalog_loop"]["items_batch_calls"],
        "pushes": report["catalog_loop"]["pushes"],
        "over_sold_units": report["demand"]["over_sold"],
        "under_sold_units": report["demand"]["under_sold"],
        "turned_away": report["demand"]["turned_away"],
    }


def check(scenario: Any, report: dict[str, Any], ledger: list[dict[str, Any]]) -> dict[str, Any]:
    """The ledger against the orders placed (by id, source, SKU and unit), and every SKU's end state."""
    demand = report["demand"]
    sold = {"platform": demand["sold_platform"], "web": demand["sold_web"]}
    counted: Counter[str] = Counter()
    units: Counter[str] = Counter()
    ids: set[str] = set()
    others = 0
    for row in ledger:
        match = DEMAND_ORDER.search(str(row["order_id"]))
        if match is None:
            others += 1
            continue
        ids.add(match.group(1))
        channel = "platform" if match.group(1).endswith("-fb") else "web"
        counted[f"{channel}_{row['source']}"] += 1
        for retailer_id, line in row.get("lines", {}).items():
            units[retailer_id] += int(line["ordered"])
    placed_units = {rid: figures["sold_platform"] + figures["sold_web"] for rid, figures in demand["by_sku"].items()}
    units_differ = sorted(rid for rid in set(units) | set(placed_units) if units[rid] != placed_units.get(rid, 0))
    start = {sku.retailer_id: sku.warehouse for sku in scenario.skus}
    wrong = []
    for retailer_id, sku in report["skus"].items():
        shown = report["catalog"].get(retailer_id, {})
        shipped = demand["by_sku"].get(retailer_id, {}).get("shipped", 0)
        if (
            shown.get("units") != sku["A"]
            or not sku["confirmed"]
            or sku["I"] != start[retailer_id] - shipped
            or sku["P"] + sku["C"] + sku["K"]
        ):
            wrong.append(retailer_id)
    return {
        "orders_placed": sold["platform"] + sold["web"],
        "orders_platform": sold["platform"],
        "orders_web": sold["web"],
        "ledger_orders": len(ids),
        "ledger_by_channel_and_source": dict(sorted(counted.items())),
        "ledger_other_rows": others,
        "skus_whose_ledger_units_differ": units_differ[:5],
        "skus_whose_ledger_units_differ_count": len(units_differ),
        "skus_in_report": len(report["skus"]),
        "skus_wrong": wrong[:5],
        "skus_wrong_count": len(wrong),
        "dead_letters": len(report["dead_letters"]),
        "dead_letter_reasons": sorted({letter["reason"] for letter in report["dead_letters"]})[:5],
        "differs_from_a": len(report["catalog_differs_from_a"]),
    }


def _per_order(side: dict[str, Any]) -> dict[str, float]:
    orders = max(1, side["orders_placed"])
    return {
        "wall_ms_per_order": round(1000 * side["seconds"] / orders, 2),
        "cpu_ms_per_order": round(1000 * side["cpu_seconds"] / orders, 2),
        "dynamodb_requests_per_order": round(side["dynamodb_requests"] / orders, 2),
        "graph_calls_per_order": round(sum(side["graph_calls"].values()) / orders, 4),
    }


def problems_of(name: str, side: dict[str, Any], skus: int) -> list[str]:
    found = []
    if side["ledger_orders"] != side["orders_placed"] or side["skus_whose_ledger_units_differ_count"]:
        found.append(
            f"{name}: {side['orders_placed']} orders placed, {side['ledger_orders']} in the ledger; units differ for "
            f"{side['skus_whose_ledger_units_differ_count']} SKUs, e.g. {side['skus_whose_ledger_units_differ']}"
        )
    if side["skus_in_report"] != skus or side["skus_wrong_count"]:
        found.append(
            f"{name}: {side['skus_wrong_count']} of {side['skus_in_report']} SKUs wrong at the end (catalog not A, "
            f"unconfirmed, I not the start less shipped, or units still pending), e.g. {side['skus_wrong']}"
        )
    if side["dead_letters"] or side["differs_from_a"]:
        found.append(
            f"{name}: {side['dead_letters']} dead letters ({side['dead_letter_reasons']}), "
            f"{side['differs_from_a']} differences from A after the final run"
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=FULL_ORDERS, help="orders expected in the day")
    parser.add_argument("--skus", type=int, default=FULL_SKUS, help=f"SKUs in the catalog ({HOT_SKUS} of them hot)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ORDERS} orders over {QUICK_SKUS} SKUs")
    parser.add_argument("--no-baseline", action="store_true", help=f"skip the baseline at 1/{BASELINE_DIVISOR} size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.skus = QUICK_ORDERS, QUICK_SKUS
    if args.skus <= HOT_SKUS or args.orders < 1:
        parser.error(f"--skus above {HOT_SKUS} and --orders at least 1")

    figures = plan(args.orders, args.skus)
    day = in_child(run_day, args.orders, args.skus)
    result: dict[str, Any] = {
        "orders_expected": args.orders,
        "skus": args.skus,
        "demand_steps": figures["windows"],
        "flash_sale_factor": round(figures["factor"], 1),
        **{key: day[key] for key in ("orders_placed", "orders_platform", "orders_web", "ledger_orders")},
        "ledger_by_channel_and_source": day["ledger_by_channel_and_source"],
        "turned_away": day["turned_away"],
        "skus_wrong": day["skus_wrong_count"],
        "dead_letters": day["dead_letters"],
        "dynamodb_requests": day["dynamodb_requests"],
        "graph_calls": day["graph_calls"],
        "items_batch_calls": day["items_batch_calls"],
        "pushes": day["pushes"],
        "over_sold_units": day["over_sold_units"],
        "wall_s": round(day["seconds"], 1),
        "cpu_s": round(day["cpu_seconds"], 1),
        "orders_per_s": round(day["orders_placed"] / day["seconds"], 1),
        **_per_order(day),
        "peak_rss_mb": round(day["peak_rss_mb"], 1),
    }
    problems = problems_of("day", day, args.skus)
    # At least as many regular SKUs as hot ones, so that a small run's baseline still has both kinds.
    baseline_orders = max(1, args.orders // BASELINE_DIVISOR)
    baseline_skus = max(2 * HOT_SKUS, args.skus // BASELINE_DIVISOR)
    if not args.no_baseline:
        baseline = in_child(run_day, baseline_orders, baseline_skus)
        result.update(
            {
                "baseline": f"{baseline_orders} orders over {baseline_skus} SKUs",
                "baseline_orders_placed": baseline["orders_placed"],
                "baseline_wall_s": round(baseline["seconds"], 1),
                "baseline_cpu_s": round(baseline["cpu_seconds"], 1),
                **{f"baseline_{key}": value for key, value in _per_order(baseline).items()},
                "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
                "cpu_per_order_vs_baseline": round(
                    (day["cpu_seconds"] / max(1, day["orders_placed"]))
                    / (baseline["cpu_seconds"] / max(1, baseline["orders_placed"])),
                    2,
                ),
            }
        )
        problems += problems_of("baseline", baseline, baseline_skus)
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
