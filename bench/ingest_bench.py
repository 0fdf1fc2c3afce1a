"""Benchmark: order ingest through the real poll_orders handler vs. raw TransactWriteItems of the same rows.

    .venv/bin/python bench/ingest_bench.py            # 10,000 order changes over 2,000 SKUs
    .venv/bin/python bench/ingest_bench.py --quick    # 400 changes over 100 SKUs (what `make test` runs)

The baseline is the handler's own transactions, recorded as it sent them and replayed with raw boto3 on emptied
tables: the same items, conditions and order, so the ratio is exactly what the handler adds (listing, parsing,
batched reads, cursor saves, recompute enqueue). Both sides run against the same moto server (in this process), each
in a child process of its own, so the peak memory reported (VmHWM of the child) is what one Lambda process would
hold: Python, boto3, Powertools, pydantic and the handler's data. The order changes are real: orders are placed on
the Commerce Platform simulator (FB_PROCESSING), polled, then moved to CREATED and polled again, so every order is
one new-order change and one state change.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import count_requests, finish, in_child, peak_memory_mb  # noqa: E402

TOKEN, APP_SECRET = "bench-token", "bench-app-secret"


def run_poll_handler(env: dict[str, str], transactions_file: str) -> dict[str, Any]:
    """Child process: poll until the listing is complete; time only the handler calls. Every TransactWriteItems
    the handler issues is appended to ``transactions_file`` (pickled, as sent) for the baseline to replay."""
    os.environ.update(env)
    from stocksync.dal import aws
    from tests.support import FakeLambdaContext, load_handler

    dynamodb_calls: Counter[str] = Counter()
    sqs_calls: Counter[str] = Counter()
    dynamodb = aws.client("dynamodb")
    count_requests(dynamodb, dynamodb_calls)
    count_requests(aws.client("sqs"), sqs_calls)
    handler = load_handler("poll_orders")
    recording = [0.0]  # seconds spent writing the record: taken out of the handler's time
    with open(transactions_file, "ab") as recorded:

        def record(params: dict[str, Any], **_: Any) -> None:
            started = time.perf_counter()
            pickle.dump(params["TransactItems"], recorded)
            recording[0] += time.perf_counter() - started

        dynamodb.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", record)
        started = time.perf_counter()
        applied = 0
        while True:
            summary = handler.lambda_handler({}, FakeLambdaContext(remaining_ms=900_000))
            applied += summary["applied"]
            if summary["completed"]:
                break
        seconds = time.perf_counter() - started - recording[0]
    return {
        "seconds": seconds,
        "applied": applied,
        "dynamodb": dict(dynamodb_calls),
        "sqs": dict(sqs_calls),
        "peak_rss_mb": peak_memory_mb(),
    }


def run_baseline(env: dict[str, str], transactions_file: str) -> dict[str, Any]:
    """Child process: the handler's own transactions, replayed as sent (same items, same conditions, same order)
    on emptied tables: no listing, no reads, no parsing, no enqueue. Every one must succeed again."""
    os.environ.update(env)
    import boto3

    client = boto3.client("dynamodb")
    transactions = 0
    seconds = 0.0
    with open(transactions_file, "rb") as recorded:
        while True:
            try:
                actions = pickle.load(recorded)  # read outside the timed call, one at a time: flat memory
            except EOFError:
                break
            started = time.perf_counter()
            client.transact_write_items(TransactItems=actions)
            seconds += time.perf_counter() - started
            transactions += 1
    return {"seconds": seconds, "transactions": transactions, "peak_rss_mb": peak_memory_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10_000, help="order changes (half new orders, half moves)")
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="400 changes over 100 SKUs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.changes, args.skus = 400, 100
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

    from stocksync_dev.local.aws import LocalAws
    from stocksync_dev.simulator import CommercePlatformSimulator

    order_count = args.changes // 2
    with LocalAws() as local, CommercePlatformSimulator(access_token=TOKEN, app_secret=APP_SECRET) as sim:
        env = local.function_environment({"STOCKSYNC_GRAPH_BASE_URL": sim.url})
        for key in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_LOG_LEVEL"):
            env[key] = os.environ[key]
        local.put_graph_credentials(TOKEN, APP_SECRET)
        for index in range(args.skus):
            sim.add_product(f"SKU-{index:05d}", quantity=1_000_000)
        orders = [(f"o-{index:06d}", f"SKU-{index % args.skus:05d}", 1 + index % 3) for index in range(order_count)]
        for order_id, sku, units in orders:
            sim.place_order(order_id, [(sku, units)], state="FB_PROCESSING")
        sim.advance(1)
        with tempfile.TemporaryDirectory() as scratch:
            transactions_file = os.path.join(scratch, "transactions.pickle")
            placed = in_child(run_poll_handler, env, transactions_file)
            for order_id, _, _ in orders:
                sim.move_order(order_id, "CREATED")
            sim.advance(1)
            moved = in_child(run_poll_handler, env, transactions_file)

            local.reset_data()
            baseline = in_child(run_baseline, env, transactions_file)

    handler_seconds = placed["seconds"] + moved["seconds"]
    changes = placed["applied"] + moved["applied"]
    dynamodb = Counter(placed["dynamodb"]) + Counter(moved["dynamodb"])
    sqs = Counter(placed["sqs"]) + Counter(moved["sqs"])
    result = {
        "changes": changes,
        "skus": args.skus,
        "handler_changes_per_s": round(changes / handler_seconds, 1),
        "baseline_changes_per_s": round(changes / baseline["seconds"], 1),
        "handler_vs_baseline": round(handler_seconds / baseline["seconds"], 2),
        "dynamodb_requests_per_change": round(sum(dynamodb.values()) / changes, 3),
        "transactions_per_change": round(dynamodb["TransactWriteItems"] / changes, 3),
        "dynamodb_requests": dict(dynamodb),
        "sqs_requests": dict(sqs),
        "handler_peak_rss_mb": round(max(placed["peak_rss_mb"], moved["peak_rss_mb"]), 1),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
    }
    problems = []
    if baseline["transactions"] != dynamodb["TransactWriteItems"]:
        problems.append("the baseline did not replay every transaction of the handler")
    if changes != args.changes:
        problems.append(f"expected {args.changes} applied changes, got {changes}")
    if result["handler_peak_rss_mb"] > 256:
        problems.append(f"the handler held {result['handler_peak_rss_mb']:.0f} MB: more than a 256 MB Lambda")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
