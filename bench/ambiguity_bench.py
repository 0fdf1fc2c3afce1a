"""Benchmark: what the catalog's ambiguity costs, in catalog reads and pushes, under a steady stream of orders.

    .venv/bin/python bench/ambiguity_bench.py            # 1,000 Facebook/Instagram orders an hour for 1 hour
    .venv/bin/python bench/ambiguity_bench.py --quick    # 200 orders an hour for 15 minutes (what `make test` runs)

The real handlers run against moto server (template.yaml deployed) and the Commerce Platform simulator, on the
simulator's clock, one second at a time: orders arrive at seeded random instants (a Poisson stream over 50 SKUs
with plenty of stock) and as many sales on other channels, which reach the product as warehouse levels; every
queued message that is due is delivered to its function, the poller runs at the
template's PollRate, and a batch takes VerifyDelaySeconds to process and is applied halfway through. So orders do
land inside push windows, as in production.

The same seeded stream runs twice: with catalog reads on (the default: an ambiguous SKU is read back) and off
(CatalogReadsPerHour=0: an ambiguous SKU is pushed again with its absolute value). Each run reports its pushes by
reason (recompute's PushReason), its reads, and the share of pushes the ambiguity added; both runs must end with
the catalog showing A for every SKU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish, in_child, peak_memory_mb  # noqa: E402

TOKEN, APP_SECRET = "bench-token", "bench-app-secret"
T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
SKUS = [f"SKU-{index:02d}" for index in range(50)]
STOCK = 10_000
POLL_SECONDS = 300  # template.yaml's PollRate default
PROCESSING_SECONDS = 60  # the simulator's batch processing (applied halfway), like the default VerifyDelaySeconds


def order_times(per_hour: int, seconds: int, seed: int) -> list[tuple[int, str, int]]:
    """A seeded Poisson stream: (second, SKU, units)."""
    rng = random.Random(seed)
    moments, now = [], 0.0
    while True:
        now += rng.expovariate(per_hour / 3600)
        if now >= seconds:
            return moments
        moments.append((int(now), rng.choice(SKUS), rng.randint(1, 3)))


def _count_decisions(recompute: Any) -> tuple[Counter[str], Counter[str]]:
    """Pushes by reason and reads asked for, summed over every recompute run of this process."""
    reasons: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    finish_run = recompute.StockRecompute.finish

    def counted(self: Any) -> Any:
        report = finish_run(self)
        reasons.update(report.reasons)
        reads["requested"] += sum(tally.reads_requested for tally in report.buckets.values())
        return report

    recompute.StockRecompute.finish = counted
    return reasons, reads


def _seed(local: Any, sim: Any) -> None:
    """Every SKU with plenty of stock, in the catalog, and published once (its first anchor)."""
    from stocksync.dal.codec import encode

    dynamodb, sqs = local.client("dynamodb"), local.client("sqs")
    for rid in SKUS:
        sim.add_product(rid, quantity=STOCK)
        item = {"retailer_id": rid, "record": "state", "bucket": "slow", "warehouse_level": STOCK}
        dynamodb.put_item(TableName=os.environ["SKU_TABLE"], Item=encode({**item, "warehouse_as_of_ms": 0}))
        sqs.send_message(QueueUrl=os.environ["RECOMPUTE_QUEUE_URL"], MessageBody=json.dumps({"retailer_id": rid}))


def _stream(
    pipeline: Any, sim: Any, orders: list[tuple[int, str, int]], webshop: list[tuple[int, str, int]], seconds: int
) -> int:
    """One simulated second at a time: the orders due, the poll when due, every message that is due delivered.

    Facebook/Instagram orders go to the simulator (it decrements its own copy); sales on the other channels reach
    the product as new warehouse levels, which change A without the catalog moving: those are pushed, and a buyer
    ordering on the platform while such a push is processed makes its SKU ambiguous.
    """
    from stocksync_dev.local.aws import BUS_SOURCES  # dev-only, imported where used

    due, other, placed = list(orders), list(webshop), 0
    levels = dict.fromkeys(SKUS, STOCK)
    events, bus = pipeline._local.client("events"), os.environ["EVENT_BUS_NAME"]
    for second in range(seconds):
        while due and due[0][0] <= second:
            _at, rid, units = due.pop(0)
            sim.place_order(f"o-{placed}", [(rid, units)])
            placed += 1
        while other and other[0][0] <= second:
            _at, rid, units = other.pop(0)
            levels[rid] -= units
            level = {"retailer_id": rid, "level": levels[rid], "as_of": sim.now().isoformat()}
            events.put_events(
                Entries=[
                    {
                        "EventBusName": bus,
                        "Source": BUS_SOURCES["Warehouse Stock Levels"],
                        "DetailType": "Warehouse Stock Levels",
                        "Detail": json.dumps({"levels": [level]}),
                    }
                ]
            )
        if second % POLL_SECONDS == 0:
            pipeline.run_schedule("poll_orders")
        for consumer in pipeline.consumers:
            pipeline._deliver(consumer)
        pipeline.fast_forward(1)
    return placed


def _differs_from_a(local: Any, catalog: dict[str, dict[str, Any]]) -> list[str]:
    """SKUs whose catalog value is not A (I - P: every order is still open, every SKU in the slow bucket)."""
    from stocksync.dal.codec import decode, encode

    dynamodb, differs = local.client("dynamodb"), []
    for rid in SKUS:
        key = encode({"retailer_id": rid, "record": "state"})
        item = decode(dynamodb.get_item(TableName=os.environ["SKU_TABLE"], Key=key)["Item"])
        if catalog[rid]["quantity_to_sell_on_facebook"] != item["warehouse_level"] - item.get("pending_processing", 0):
            differs.append(rid)
    return differs


def run(
    env: dict[str, str],
    reads_per_hour: int,
    orders: list[tuple[int, str, int]],
    webshop: list[tuple[int, str, int]],
    seconds: int,
) -> dict[str, Any]:
    """Child process: the stream through the real handlers; the pushes by reason, the reads, the final catalog."""
    os.environ.update(env)
    from stocksync import clock
    from stocksync.logic import recompute
    from stocksync_dev.cli.pipeline import LocalPipeline
    from stocksync_dev.local.aws import LocalAws
    from stocksync_dev.simulator import CommercePlatformSimulator

    reasons, reads = _count_decisions(recompute)
    started = time.perf_counter()
    with (
        LocalAws() as local,
        CommercePlatformSimulator(
            access_token=TOKEN,
            app_secret=APP_SECRET,
            start=T0,
            batch_processing_delay=timedelta(seconds=PROCESSING_SECONDS),
            batch_apply_fraction=0.5,
            catalog_reads_per_hour=100_000,
        ) as sim,
    ):
        os.environ.update(local.function_environment())
        os.environ.update(
            {
                "STOCKSYNC_CATALOG_READS_PER_HOUR": str(reads_per_hour),
                "STOCKSYNC_DEFAULT_BUCKET": "slow",
                "STOCKSYNC_GRAPH_BASE_URL": sim.url,
            }
        )
        local.put_graph_credentials(TOKEN, APP_SECRET)
        clock.use(sim.now)
        pipeline = LocalPipeline(local, advance_clock=sim.advance)
        _seed(local, sim)
        pipeline.drain()
        reasons.clear()
        first_calls = sim.calls[("POST", "items_batch")]
        pipeline.run_schedule("poll_orders")
        placed = _stream(pipeline, sim, orders, webshop, seconds)
        pipeline.run_schedule("poll_orders")
        pipeline.drain()
        differs = _differs_from_a(local, sim.catalog())
        clock.use(None)
        return {
            "seconds": time.perf_counter() - started,
            "orders_placed": placed,
            "pushes_by_reason": dict(reasons),
            "items_batch_calls": sim.calls[("POST", "items_batch")] - first_calls,
            "reads_requested": reads["requested"],
            "read_calls": sim.calls[("GET", "products")],
            "catalog_differs_from_a": differs,
            "peak_rss_mb": peak_memory_mb(),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders-per-hour", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="200 orders an hour for 15 minutes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.orders_per_hour, args.minutes = 200, 15
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    seconds = args.minutes * 60
    orders = order_times(args.orders_per_hour, seconds, args.seed)
    webshop = order_times(args.orders_per_hour, seconds, args.seed + 1)
    with_reads = in_child(run, env, 360, orders, webshop, seconds)
    without_reads = in_child(run, env, 0, orders, webshop, seconds)

    def share(reasons: dict[str, int], *names: str) -> float:
        total = sum(reasons.values())
        return round(sum(reasons.get(name, 0) for name in names) / total, 3) if total else 0.0

    result = {
        "orders": len(orders),
        "other_channel_sales": len(webshop),
        "simulated_minutes": args.minutes,
        "reads_on_pushes_by_reason": with_reads["pushes_by_reason"],
        "reads_on_items_batch_calls": with_reads["items_batch_calls"],
        "reads_on_reads_requested": with_reads["reads_requested"],
        "reads_on_read_calls": with_reads["read_calls"],
        "reads_off_pushes_by_reason": without_reads["pushes_by_reason"],
        "reads_off_items_batch_calls": without_reads["items_batch_calls"],
        "reads_off_ambiguity_share_of_pushes": share(without_reads["pushes_by_reason"], "catalog ambiguous"),
        "reads_on_seconds": round(with_reads["seconds"], 1),
        "reads_off_seconds": round(without_reads["seconds"], 1),
        # One process holds moto, the simulator and every function here: not a Lambda's size (the audit, sweep,
        # ingest and push benchmarks measure the functions one by one).
        "whole_local_stack_peak_rss_mb": round(max(with_reads["peak_rss_mb"], without_reads["peak_rss_mb"]), 1),
    }
    problems = []
    for name, side in (("reads on", with_reads), ("reads off", without_reads)):
        if side["catalog_differs_from_a"]:
            problems.append(f"{name}: the catalog differs from A for {side['catalog_differs_from_a']}")
        if side["orders_placed"] != len(orders):
            problems.append(f"{name}: {side['orders_placed']} of {len(orders)} orders were placed")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
