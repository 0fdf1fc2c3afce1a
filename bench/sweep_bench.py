"""Benchmark: a bucket sweep through the real sweep_stock handler vs. only paging through the same bucket index.

    .venv/bin/python bench/sweep_bench.py            # 100,000 SKUs in one bucket, 1 % of them changed
    .venv/bin/python bench/sweep_bench.py --quick    # 2,000 SKUs (what `make test` runs)

Both sides run against the same moto server (in this process), each in a child process of its own, so the peak
memory reported (the child's peak resident set) is what one Lambda process would hold. The handler runs as Lambda would
run it: a context whose remaining time counts down from the function's timeout (300 s), so a sweep that does not fit
hands the rest of its bucket over through the sweep queue, and the bench delivers that message to the handler
again, as the queue's event source mapping would. The baseline pages through the same index with the same page size
and does nothing else. Against moto, most of either side's time is moto serialising the items; the ratio is what
the sweep adds on top of reading its bucket.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    CountdownContext,
    count_requests,
    finish,
    in_child,
    peak_memory_mb,
    seed_table,
)

BUCKET = "fast"
PAGE_SIZE = 1000  # what the sweep reads per page (stocksync.wiring.sweep_stock.SWEEP_PAGE_SIZE)
TIMEOUT_SECONDS = 300  # SweepStockFunction's Timeout in template.yaml


def run_sweep_handler(env: dict[str, str]) -> dict[str, Any]:
    """Child process: the scheduled sweep, then each hand-over from the sweep queue, until the bucket is done."""
    os.environ.update(env)
    from stocksync.dal import aws
    from tests.support import load_handler, sqs_event

    dynamodb_calls: Counter[str] = Counter()
    sqs_calls: Counter[str] = Counter()
    sqs = aws.client("sqs")
    count_requests(aws.client("dynamodb"), dynamodb_calls)
    count_requests(sqs, sqs_calls)
    handler = load_handler("sweep_stock")
    started = time.perf_counter()
    first = handler.lambda_handler({"bucket": BUCKET}, CountdownContext(TIMEOUT_SECONDS, "sweep"))
    invocations = 1
    while not first["finished"]:
        waiting = sqs.receive_message(QueueUrl=env["SWEEP_QUEUE_URL"], MaxNumberOfMessages=1).get("Messages", [])
        if not waiting:
            break
        # What the queue's event source mapping does: deliver the hand-over, delete it once handled.
        answer = handler.lambda_handler(sqs_event([waiting[0]["Body"]]), CountdownContext(TIMEOUT_SECONDS, "sweep"))
        assert answer == {"batchItemFailures": []}, answer
        sqs.delete_message(QueueUrl=env["SWEEP_QUEUE_URL"], ReceiptHandle=waiting[0]["ReceiptHandle"])
        invocations += 1
    seconds = time.perf_counter() - started
    attributes = sqs.get_queue_attributes(
        QueueUrl=env["PUSH_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return {
        "seconds": seconds,
        "invocations": invocations,
        "pages": dynamodb_calls["Query"],
        "pushes_enqueued": int(attributes["Attributes"]["ApproximateNumberOfMessages"]),
        "dynamodb": dict(dynamodb_calls),
        "sqs": {name: count for name, count in sqs_calls.items() if name != "GetQueueAttributes"},
        "peak_rss_mb": peak_memory_mb(),
    }


def run_baseline(env: dict[str, str]) -> dict[str, Any]:
    """Child process: page through the same bucket index with the same page size; nothing else."""
    os.environ.update(env)
    import boto3

    client = boto3.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": env["SKU_TABLE"],
        "IndexName": "bucket-index",
        "KeyConditionExpression": "#bucket = :bucket",
        "ExpressionAttributeNames": {"#bucket": "bucket"},
        "ExpressionAttributeValues": {":bucket": {"S": BUCKET}},
        "Limit": PAGE_SIZE,
    }
    started = time.perf_counter()
    items = pages = 0
    while True:
        answer = client.query(**request)
        pages += 1
        items += len(answer["Items"])
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return {"seconds": time.perf_counter() - started, "skus": items, "pages": pages, "peak_rss_mb": peak_memory_mb()}


def sku_records(count: int, changed_every: int) -> list[dict[str, Any]]:
    """SKUs whose catalog shows their published number, except every ``changed_every``-th one (its level moved)."""
    records = []
    for index in range(count):
        level = 40 + index % 50
        pending = index % 4
        records.append(
            {
                "retailer_id": f"SKU-{index:06d}",
                "record": "state",
                "bucket": BUCKET,
                "warehouse_level": level + (5 if index % changed_every == 0 else 0),
                "warehouse_as_of_ms": 1_763_900_000_000,
                "pending_processing": pending,
                "pending_created": 0,
                "platform_units": -pending,
                "published_value": level - pending,
                "published_version": 3,
                "confirmed_value": level - pending,
                "confirmed_version": 3,
                # The confirmed push is the catalog's anchor; the FB/IG orders came before it (erased, then
                # counted in P): the catalog shows the published value.
                "catalog_value": level - pending,
                "catalog_from_ms": 1_763_900_060_000,
                "catalog_to_ms": 1_763_900_120_000,
                "catalog_basis": "push",
            }
        )
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--changed-every", type=int, default=100, help="every N-th SKU drifted (default: 1 %%)")
    parser.add_argument("--quick", action="store_true", help="2,000 SKUs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.skus = 2_000
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

    from stocksync_dev.local.aws import LocalAws

    records = sku_records(args.skus, args.changed_every)
    changed = sum(1 for index in range(args.skus) if index % args.changed_every == 0)
    with LocalAws() as local:
        env = local.function_environment()
        for key in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_LOG_LEVEL"):
            env[key] = os.environ[key]
        seeding = time.perf_counter()
        seed_table(local, env["SKU_TABLE"], records)
        seeding = time.perf_counter() - seeding
        baseline = in_child(run_baseline, env)
        sweep = in_child(run_sweep_handler, env)

    dynamodb_requests = sum(sweep["dynamodb"].values())
    result = {
        "skus": args.skus,
        "changed": changed,
        "seed_seconds": round(seeding, 1),
        "sweep_seconds": round(sweep["seconds"], 2),
        "baseline_seconds": round(baseline["seconds"], 2),
        "sweep_skus_per_s": round(args.skus / sweep["seconds"], 1),
        "baseline_skus_per_s": round(args.skus / baseline["seconds"], 1),
        "sweep_vs_baseline": round(sweep["seconds"] / baseline["seconds"], 3),
        "sweep_invocations": sweep["invocations"],
        "pushes_enqueued": sweep["pushes_enqueued"],
        "dynamodb_requests_per_sku": round(dynamodb_requests / args.skus, 4),
        "baseline_requests_per_sku": round(baseline["pages"] / args.skus, 4),
        "index_pages": sweep["pages"],
        "dynamodb_requests": sweep["dynamodb"],
        "sqs_requests": sweep["sqs"],
        "sweep_peak_rss_mb": round(sweep["peak_rss_mb"], 1),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
    }
    problems = []
    if baseline["skus"] != args.skus or sweep["pages"] != baseline["pages"]:
        problems.append(
            f"the sweep read {sweep['pages']} pages, the baseline {baseline['pages']} ({baseline['skus']} SKUs)"
        )
    if sweep["pushes_enqueued"] != changed:
        problems.append(f"expected {changed} pushes, got {sweep['pushes_enqueued']}")
    if sweep["peak_rss_mb"] > 256:
        problems.append(f"the sweep held {sweep['peak_rss_mb']:.0f} MB: more than a 256 MB Lambda")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
