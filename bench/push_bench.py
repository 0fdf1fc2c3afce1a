"""Benchmark: changed SKUs through the real push_batch and verify_batch handlers vs. only posting the same payloads.

    .venv/bin/python bench/push_bench.py            # 10,000 changed SKUs, 3,000 per call (the defaults)
    .venv/bin/python bench/push_bench.py --quick    # 300 SKUs, 100 per call (what `make test` runs)
    .venv/bin/python bench/push_bench.py --json

Reported: Graph calls per run against the API's minimum ceil(n / per-call size), items_batch bytes sent per SKU,
push handler time per 1,000 SKUs beside a baseline that only POSTs the same payloads to the same simulator, verify
handler time per 1,000 SKUs, AWS requests per SKU, the "value changed -> value confirmed" p50/p95/p99, and each side's
peak memory. The handlers run in a child process of their own (moto server and the simulator stay in this one), so
the peak memory (VmHWM of the child) is what one Lambda process holds; a function must stay under 256 MB.

Latency here is processing time only: messages are handed to push_batch at once and verify messages are released
without their SQS delay. In production add the batching window (PushBatchingWindowSeconds), the platform's own
processing time and the first-check delay (VerifyDelaySeconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import count_requests, finish, in_child, peak_memory_mb  # noqa: E402

TOKEN, APP_SECRET = "bench-token", "bench-app-secret"
PUSH_BATCH_SIZE = 5000  # the template's PushBatchSize default: messages per push_batch invocation
# The run hands push_batch every row in one instant, to measure what a push costs per SKU; the pacing (one call per
# slot) and the latency it gives are latency_bench's. A burst of 10 lets every call of the run find an open slot.
BURST_CALLS = 10


def run_push_handler(env: dict[str, str], skus: int) -> dict[str, Any]:
    """Child process: ``skus`` push messages, PUSH_BATCH_SIZE per invocation, as SQS hands them over."""
    os.environ.update(env)
    from stocksync.dal import aws
    from tests.support import FakeLambdaContext, load_handler, sqs_event

    requests: Counter[str] = Counter()
    count_requests(aws.client("dynamodb"), requests)
    count_requests(aws.client("sqs"), requests)
    handler = load_handler("push_batch")
    computed_at = datetime.now(UTC).isoformat()
    bodies = [
        {
            "retailer_id": f"SKU-{i:05d}",
            "value": i % 50,
            "version": 1,
            "visibility": "published",
            "computed_at": computed_at,
        }
        for i in range(skus)
    ]
    failures = 0
    started = time.perf_counter()
    for start in range(0, skus, PUSH_BATCH_SIZE):
        answer = handler.lambda_handler(sqs_event(bodies[start : start + PUSH_BATCH_SIZE]), FakeLambdaContext())
        failures += len(answer["batchItemFailures"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "failures": failures, "requests": dict(requests), "peak_rss_mb": peak_memory_mb()}


def run_verify_handler(env: dict[str, str], verify_bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """Child process: one verify message per invocation, as the template configures it."""
    os.environ.update(env)
    from stocksync.dal import aws
    from tests.support import FakeLambdaContext, load_handler, sqs_event

    requests: Counter[str] = Counter()
    count_requests(aws.client("dynamodb"), requests)
    handler = load_handler("verify_batch")
    failures = 0
    started = time.perf_counter()
    for body in verify_bodies:
        failures += len(handler.lambda_handler(sqs_event([body]), FakeLambdaContext())["batchItemFailures"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "failures": failures, "requests": dict(requests), "peak_rss_mb": peak_memory_mb()}


def run_baseline(url: str, catalog_id: str, payloads: list[dict[str, str]]) -> dict[str, Any]:
    """Child process: the same items_batch bodies POSTed with one pooled session; nothing else."""
    import requests

    from stocksync_dev.simulator import appsecret_proof

    session = requests.Session()
    auth = {"access_token": TOKEN, "appsecret_proof": appsecret_proof(TOKEN, APP_SECRET)}
    started = time.perf_counter()
    for payload in payloads:
        answer = session.post(f"{url}/v25.0/{catalog_id}/items_batch", data={**payload, **auth}, timeout=60)
        answer.raise_for_status()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_memory_mb()}


def seed(local: Any, sim: Any, skus: int) -> None:
    from stocksync.dal.codec import encode

    dynamodb, table = local.client("dynamodb"), local.function_environment()["SKU_TABLE"]
    for start in range(0, skus, 25):
        puts = [
            {"PutRequest": {"Item": encode({"retailer_id": f"SKU-{i:05d}", "record": "state", "published_version": 1})}}
            for i in range(start, min(start + 25, skus))
        ]
        dynamodb.batch_write_item(RequestItems={table: puts})
    for index in range(skus):
        sim.add_product(f"SKU-{index:05d}", quantity=0)


def verify_messages(local: Any) -> list[dict[str, Any]]:
    """The verify queue's messages, their SQS delay skipped."""
    from moto.backends import get_backend

    url = local.function_environment()["VERIFY_QUEUE_URL"]
    account = local.client("sts").get_caller_identity()["Account"]
    queue = get_backend("sqs")[account][local.region].get_queue(url.rsplit("/", 1)[-1])
    for message in queue._messages:
        message.delayed_until = 0
    bodies = []
    sqs = local.client("sqs")
    while answer := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in answer:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=10_000, help="changed SKUs")
    parser.add_argument("--per-call", type=int, default=3000, help="PushRequestsPerCall")
    parser.add_argument("--quick", action="store_true", help="300 SKUs, 100 per call")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.skus, args.per_call = 300, 100
    if math.ceil(args.skus / args.per_call) > BURST_CALLS:
        parser.error(f"--skus / --per-call needs more than {BURST_CALLS} calls, more than one burst of slots")
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)

    from stocksync.dal.batches_table import BatchesTable
    from stocksync.logic.latency import summarize
    from stocksync_dev.local.aws import LocalAws
    from stocksync_dev.simulator import CommercePlatformSimulator

    with LocalAws() as local, CommercePlatformSimulator(access_token=TOKEN, app_secret=APP_SECRET) as sim:
        env = local.function_environment(
            {
                "STOCKSYNC_GRAPH_BASE_URL": sim.url,
                "STOCKSYNC_PUSH_REQUESTS_PER_CALL": str(args.per_call),
                "STOCKSYNC_PUSH_BURST_CALLS": str(BURST_CALLS),
            }
        )
        for key in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_LOG_LEVEL"):
            env[key] = os.environ[key]
        local.put_graph_credentials(TOKEN, APP_SECRET)
        seed(local, sim, args.skus)

        pushed = in_child(run_push_handler, env, args.skus)
        calls = [params for method, path, params in sim.requests_log if path.endswith("/items_batch")]
        verified = in_child(run_verify_handler, env, verify_messages(local))
        payloads = [{key: params[key] for key in ("item_type", "allow_upsert", "requests")} for params in calls]
        baseline = in_child(run_baseline, sim.url, sim.catalog_id, payloads)

        batches = BatchesTable(local.client("dynamodb"), env["BATCHES_TABLE"])
        latency = summarize([seconds for _batch, rows in batches.latency_samples() for seconds in rows])
        catalog = sim.catalog()
        delivered = sum(
            1 for i in range(args.skus) if catalog[f"SKU-{i:05d}"]["quantity_to_sell_on_facebook"] == i % 50
        )

    per_thousand = 1000 / args.skus
    body_bytes = sum(len(urlencode({**params, "access_token": TOKEN, "appsecret_proof": "0" * 64})) for params in calls)
    result = {
        "skus": args.skus,
        "per_call": args.per_call,
        "graph_calls": len(calls),
        "minimum_calls": math.ceil(args.skus / args.per_call),
        "bytes_per_sku": round(body_bytes / args.skus, 1),
        "push_handler_s_per_1000": round(pushed["seconds"] * per_thousand, 3),
        "baseline_post_s_per_1000": round(baseline["seconds"] * per_thousand, 3),
        "push_vs_baseline": round(pushed["seconds"] / baseline["seconds"], 2),
        "verify_handler_s_per_1000": round(verified["seconds"] * per_thousand, 3),
        "push_aws_requests_per_sku": round(sum(pushed["requests"].values()) / args.skus, 3),
        "verify_dynamodb_requests_per_sku": round(sum(verified["requests"].values()) / args.skus, 3),
        "confirmed": latency.count if latency else 0,
        "change_to_confirm_s": latency.as_dict() if latency else None,
        "push_peak_rss_mb": round(pushed["peak_rss_mb"], 1),
        "verify_peak_rss_mb": round(verified["peak_rss_mb"], 1),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
    }
    problems = []
    if result["graph_calls"] != result["minimum_calls"]:
        problems.append(f"{result['graph_calls']} calls, the minimum is {result['minimum_calls']}")
    if pushed["failures"] or verified["failures"] or result["confirmed"] != args.skus or delivered != args.skus:
        problems.append(f"not every SKU was pushed and confirmed: {result['confirmed']} of {args.skus}")
    if max(pushed["peak_rss_mb"], verified["peak_rss_mb"]) > 256:
        problems.append("a handler needed more than a 256 MB Lambda")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
