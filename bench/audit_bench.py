"""Benchmark: a catalog audit through the real audit_catalog handler vs. only paging the same products listing.

    .venv/bin/python bench/audit_bench.py            # 100,000 SKUs in the catalog, 1 % of them drifted
    .venv/bin/python bench/audit_bench.py --quick    # 2,000 SKUs (what `make test` runs)

The catalog lives in the Commerce Platform simulator (a real HTTP server in this process), the SKU records in moto
server (template.yaml deployed). Each side runs in a child process of its own, so the peak memory reported is what
one Lambda process would hold. The handler runs as Lambda would: a context whose remaining time counts down from
the function's timeout (900 s); a run that stops (time, read budget) is followed by the next scheduled run, which
resumes where it stopped. The baseline pages through the same listing with the same Graph client and page size and
does nothing else: the ratio is what the audit adds (reading the SKU records, comparing, anchoring and recomputing
the drifted ones, the read budget) on top of reading the catalog.
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

TIMEOUT_SECONDS = 900  # AuditCatalogFunction's Timeout in template.yaml
TOKEN, APP_SECRET = "bench-token", "bench-app-secret"
ANCHORED_MS = 1_796_000_000_000  # every SKU's push was seen landing well before the audit


def run_audit_handler(env: dict[str, str]) -> dict[str, Any]:
    """Child process: scheduled audit runs until the catalog has been read to its end."""
    os.environ.update(env)
    from stocksync.dal import aws
    from stocksync.integrations import graph_api
    from tests.support import load_handler

    dynamodb_calls: Counter[str] = Counter()
    sqs_calls: Counter[str] = Counter()
    count_requests(aws.client("dynamodb"), dynamodb_calls)
    count_requests(aws.client("sqs"), sqs_calls)
    graph_calls = _count_graph_calls(graph_api)
    handler = load_handler("audit_catalog")
    started = time.perf_counter()
    runs, read, drifted, pages = 0, 0, 0, 0
    while True:
        runs += 1
        answer = handler.lambda_handler({"dry_run": False}, CountdownContext(TIMEOUT_SECONDS, "audit"))
        read, drifted, pages = read + answer["read"], drifted + answer["drifted"], pages + answer["pages"]
        if answer["finished"] or runs > 50:
            break
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "runs": runs,
        "read": read,
        "drifted": drifted,
        "pages": pages,
        "graph_calls": graph_calls["n"],
        "dynamodb": dict(dynamodb_calls),
        "sqs": dict(sqs_calls),
        "peak_rss_mb": peak_memory_mb(),
    }


def _count_graph_calls(graph_api: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    send = graph_api.GraphApiClient._send

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return send(self, *args, **kwargs)

    graph_api.GraphApiClient._send = counted
    return calls


def run_baseline(env: dict[str, str], page_size: int) -> dict[str, Any]:
    """Child process: page through the same listing with the same client and page size; nothing else."""
    os.environ.update(env)
    from stocksync.integrations.graph_api import graph_client_from_settings
    from stocksync.models.settings import get_settings

    settings = get_settings()
    client = graph_client_from_settings(settings)
    started = time.perf_counter()
    items = pages = 0
    for page in client.list_products(settings.catalog_id, limit=page_size):
        pages += 1
        items += len(page.products)
    return {"seconds": time.perf_counter() - started, "read": items, "pages": pages, "peak_rss_mb": peak_memory_mb()}


def sku_records(count: int, drift_every: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """SKU records anchored at their published value, and what the catalog shows (off by 3 every N-th SKU)."""
    records, catalog = [], {}
    for index in range(count):
        rid = f"SKU-{index:06d}"
        value = 20 + index % 50
        records.append(
            {
                "retailer_id": rid,
                "record": "state",
                "bucket": "slow",
                "warehouse_level": value,
                "warehouse_as_of_ms": ANCHORED_MS - 60_000,
                "published_value": value,
                "published_version": 2,
                "confirmed_value": value,
                "confirmed_version": 2,
                "catalog_value": value,
                "catalog_from_ms": ANCHORED_MS - 60_000,
                "catalog_to_ms": ANCHORED_MS,
                "catalog_basis": "push",
            }
        )
        catalog[rid] = value - 3 if index % drift_every == 0 else value
    return records, catalog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--drift-every", type=int, default=100, help="every N-th SKU drifted (default: 1 %%)")
    parser.add_argument("--quick", action="store_true", help="2,000 SKUs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.skus = 2_000
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

    from datetime import UTC, datetime

    from stocksync.logic.catalog_reads import AUDIT_PAGE_SIZE
    from stocksync_dev.local.aws import LocalAws
    from stocksync_dev.simulator import CommercePlatformSimulator

    records, catalog = sku_records(args.skus, args.drift_every)
    drifted = sum(1 for index in range(args.skus) if index % args.drift_every == 0)
    start = datetime.fromtimestamp(ANCHORED_MS / 1000 + 3600, UTC)
    with (
        LocalAws() as local,
        CommercePlatformSimulator(access_token=TOKEN, app_secret=APP_SECRET, start=start) as sim,
    ):
        local.put_graph_credentials(TOKEN, APP_SECRET)
        env = local.function_environment()
        env.update(
            {
                "STOCKSYNC_GRAPH_BASE_URL": sim.url,
                "STOCKSYNC_CATALOG_READS_PER_HOUR": "3600",
                "POWERTOOLS_METRICS_DISABLED": os.environ["POWERTOOLS_METRICS_DISABLED"],
                "POWERTOOLS_TRACE_DISABLED": os.environ["POWERTOOLS_TRACE_DISABLED"],
                "POWERTOOLS_LOG_LEVEL": os.environ["POWERTOOLS_LOG_LEVEL"],
            }
        )
        seeding = time.perf_counter()
        seed_table(local, env["SKU_TABLE"], records)
        for rid, quantity in catalog.items():
            sim.add_product(rid, quantity=quantity)
        seeding = time.perf_counter() - seeding
        baseline = in_child(run_baseline, env, AUDIT_PAGE_SIZE)
        audit = in_child(run_audit_handler, env)
        recomputes = local.client("sqs").get_queue_attributes(
            QueueUrl=env["RECOMPUTE_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]

    dynamodb_requests = sum(audit["dynamodb"].values())
    result = {
        "skus": args.skus,
        "drifted": drifted,
        "seed_seconds": round(seeding, 1),
        "audit_seconds": round(audit["seconds"], 2),
        "baseline_seconds": round(baseline["seconds"], 2),
        "audit_skus_per_s": round(args.skus / audit["seconds"], 1),
        "baseline_skus_per_s": round(args.skus / baseline["seconds"], 1),
        "audit_vs_baseline": round(audit["seconds"] / baseline["seconds"], 3),
        "audit_runs": audit["runs"],
        "graph_calls": audit["graph_calls"],
        "baseline_graph_calls": baseline["pages"],
        "dynamodb_requests": audit["dynamodb"],
        "dynamodb_requests_per_sku": round(dynamodb_requests / args.skus, 4),
        "sqs_requests": audit["sqs"],
        "recomputes_enqueued": int(recomputes),
        "audit_peak_rss_mb": round(audit["peak_rss_mb"], 1),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
    }
    problems = []
    if audit["read"] != args.skus or baseline["read"] != args.skus:
        problems.append(f"the audit read {audit['read']} items, the baseline {baseline['read']}, of {args.skus}")
    if audit["graph_calls"] != baseline["pages"]:
        problems.append(f"the audit made {audit['graph_calls']} Graph calls, the listing has {baseline['pages']} pages")
    if audit["drifted"] != drifted or int(recomputes) != drifted:
        problems.append(f"expected {drifted} drifted SKUs recomputed, got {audit['drifted']} ({recomputes} enqueued)")
    if audit["peak_rss_mb"] > 256:
        problems.append(f"the audit held {audit['peak_rss_mb']:.0f} MB: more than a 256 MB Lambda")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
