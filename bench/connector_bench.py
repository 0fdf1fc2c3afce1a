"""Benchmark: what a web-shop connector costs per order change, beside the existing order_events path.

    .venv/bin/python bench/connector_bench.py            # 1,000 order changes over 200 SKUs per path
    .venv/bin/python bench/connector_bench.py --quick    # 60 changes over 20 SKUs (what `make test` runs)

The same orders (one new order of 1-3 lines, then the same order cancelled: two changes each) go through each path's
real handlers against the same moto server, each path in a child process of its own, so the peak memory reported
(VmHWM of the child) is what one Lambda process would hold:

- ``order_events`` (the baseline): "Order Changed" events on the product's bus, as SQS records of 10;
- ``shopify_orders``: the same orders as Shopify's ``orders/create`` and ``orders/cancelled`` webhooks on the
  partner event bus, as SQS records of 10;
- ``webhook``: the same orders as signed WooCommerce deliveries: ``order_webhook`` (the Function URL: signature,
  idempotency record, queue) once per delivery, then ``webhook_orders`` on the queued deliveries, 10 a batch.

Reported per path: handler milliseconds per order change (only the handlers' calls are timed), its ratio to
order_events', DynamoDB and SQS requests per change, and peak memory. Every path must leave the same counters in the
SKU table (checked), so the comparison is of equal work.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
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

from bench.harness import CountdownContext, count_requests, finish, in_child, peak_memory_mb  # noqa: E402

SHOPIFY_SOURCE = "aws.partner/shopify.com/1234567/stocksync-bench"
T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
BATCH = 10
# The sample secret the local stack stores (stocksync_dev.local.aws.SAMPLE_WEBHOOK_SECRETS; not imported by the
# children: it would load moto into a process that stands for a Lambda).
WOOCOMMERCE_SECRET = "stocksync-sample-woocommerce-secret"
PATHS = ("order_events", "shopify_orders", "webhook")


def bus_event(detail: dict[str, Any]) -> dict[str, Any]:
    """An "Order Changed" EventBridge event as the bus rule puts it on the order events queue."""
    return {
        "version": "0",
        "id": f"bench-{detail['order_id']}-{detail['state']}",
        "detail-type": "Order Changed",
        "source": "merchant.checkout",
        "account": "123456789012",
        "time": detail["occurred_at"],
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def orders(count: int, skus: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` orders of 1-3 distinct SKUs, 1-3 units each (deterministic)."""
    draw = random.Random(seed)
    result = []
    for number in range(count):
        chosen = draw.sample(range(skus), draw.randint(1, 3))
        result.append({"number": 5000 + number, "lines": [(f"SKU-{sku:04d}", draw.randint(1, 3)) for sku in chosen]})
    return result


def sqs_records(bodies: list[str], first: int) -> list[dict[str, Any]]:
    """SQS records as Lambda delivers them (what tests/support.py builds; not imported here, since it loads moto)."""
    return [
        {
            "messageId": f"msg-{first + index}",
            "receiptHandle": f"handle-{first + index}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796378400000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
            "awsRegion": "us-east-1",
        }
        for index, body in enumerate(bodies)
    ]


def load_app(function: str) -> Any:
    """functions/<function>/app.py, imported as Lambda imports it (nothing of the dev tools around it)."""
    spec = importlib.util.spec_from_file_location(f"bench_{function}", ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drain(sqs: Any, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.extend(message["Body"] for message in messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    return bodies


def order_event_bodies(order: dict[str, Any], path: str) -> list[str]:
    """The order's two changes as the path's input bodies (SQS record bodies, or Function URL events)."""
    created, cancelled = T0 + timedelta(seconds=order["number"]), T0 + timedelta(seconds=order["number"], minutes=5)
    if path == "order_events":

        def detail(state: str, at: datetime) -> dict[str, Any]:
            items = [{"retailer_id": sku, "quantity": units} for sku, units in order["lines"]]
            if state == "cancelled":
                items = [{**item, "cancelled": item["quantity"]} for item in items]
            return {
                "order_id": f"web-{order['number']}",
                "state": state,
                "channel": "web",
                "items": items,
                "occurred_at": at.isoformat(),
            }

        return [json.dumps(bus_event(detail(s, at))) for s, at in (("placed", created), ("cancelled", cancelled))]
    if path == "shopify_orders":
        sample = json.loads((ROOT / "events" / "shopify_orders_create.json").read_text())
        bodies = []
        for topic, at in (("orders/create", created), ("orders/cancelled", cancelled)):
            event = copy.deepcopy(sample)
            event["source"] = SHOPIFY_SOURCE
            event["detail"]["metadata"]["X-Shopify-Topic"] = topic
            event["detail"]["metadata"]["X-Shopify-Webhook-Id"] = f"wh-{order['number']}-{topic.replace('/', '-')}"
            payload = event["detail"]["payload"]
            template_line = payload["line_items"][0]
            payload.update(
                id=order["number"],
                updated_at=at.isoformat(),
                cancelled_at=at.isoformat() if topic == "orders/cancelled" else None,
                financial_status="paid",
                fulfillment_status=None,
                line_items=[
                    {
                        **template_line,
                        "id": order["number"] * 10 + index,
                        "sku": sku,
                        "quantity": units,
                        "current_quantity": 0 if topic == "orders/cancelled" else units,
                    }
                    for index, (sku, units) in enumerate(order["lines"])
                ],
                refunds=[],
                fulfillments=[],
            )
            bodies.append(json.dumps(event))
        return bodies
    from stocksync.integrations.webhook_signatures import sign

    sample = json.loads((ROOT / "events" / "woocommerce_order_updated.json").read_text())
    base = json.loads(sample["body"])
    events = []
    for status, at in (("processing", created), ("cancelled", cancelled)):
        body = {
            **base,
            "id": order["number"],
            "status": status,
            "date_modified_gmt": at.replace(tzinfo=None).isoformat(),
            "date_created_gmt": created.replace(tzinfo=None).isoformat(),
            "line_items": [
                {**base["line_items"][0], "id": order["number"] * 10 + index, "sku": sku, "quantity": units}
                for index, (sku, units) in enumerate(order["lines"])
            ],
        }
        raw = json.dumps(body).encode()
        event = copy.deepcopy(sample)
        event["body"] = raw.decode()
        event["headers"]["x-wc-webhook-delivery-id"] = f"d-{order['number']}-{status}"
        event["headers"]["x-wc-webhook-signature"] = sign(WOOCOMMERCE_SECRET, raw)
        events.append(json.dumps(event))
    return events


def run_path(path: str, env: dict[str, str], order_list: list[dict[str, Any]]) -> dict[str, Any]:
    """Child process: every order change of ``order_list`` through ``path``'s handlers; only the handlers timed."""
    os.environ.update(env)
    from stocksync.dal import aws

    requests: Counter[str] = Counter()
    count_requests(aws.client("dynamodb"), requests)
    count_requests(aws.client("sqs"), requests)
    inputs = [body for order in order_list for body in order_event_bodies(order, path)]
    # Creates first, then cancels: every order is created before it is cancelled, as the shops send them.
    inputs = inputs[0::2] + inputs[1::2]
    failures = 0
    handler_seconds = 0.0
    if path == "webhook":
        endpoint, consumer = load_app("order_webhook"), load_app("webhook_orders")
        for body in inputs:
            started = time.perf_counter()
            answer = endpoint.lambda_handler(json.loads(body), CountdownContext(10, "order_webhook"))
            handler_seconds += time.perf_counter() - started
            failures += answer["statusCode"] != 200
        queued = drain(aws.client("sqs"), env["WEBHOOK_QUEUE_URL"])
        batches = [queued[start : start + BATCH] for start in range(0, len(queued), BATCH)]
        handler = consumer
    else:
        handler = load_app(path)
        batches = [inputs[start : start + BATCH] for start in range(0, len(inputs), BATCH)]
    for number, batch in enumerate(batches):
        event = {"Records": sqs_records(batch, number * BATCH)}
        started = time.perf_counter()
        answer = handler.lambda_handler(event, CountdownContext(60, path))
        handler_seconds += time.perf_counter() - started
        failures += len(answer.get("batchItemFailures", []))
    return {
        "changes": len(inputs),
        "handler_seconds": handler_seconds,
        "requests": dict(requests),
        "failures": failures,
        "peak_mb": peak_memory_mb(),
    }


def counters(local: Any, skus: int) -> dict[str, tuple[int, int, int]]:
    from stocksync.dal.codec import decode

    table = local.function_environment()["SKU_TABLE"]
    client = local.client("dynamodb")
    result = {}
    for sku in range(skus):
        item = client.get_item(TableName=table, Key={"retailer_id": {"S": f"SKU-{sku:04d}"}, "record": {"S": "state"}})
        state = decode(item.get("Item", {}))
        result[f"SKU-{sku:04d}"] = tuple(
            int(state.get(name, 0)) for name in ("pending_processing", "pending_created", "acknowledged_unsynced")
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    count, skus = (30, 20) if args.quick else (500, 200)
    order_list = orders(count, skus)

    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    from stocksync_dev.local.aws import LocalAws

    # Shopify creates the partner event source in the merchant's account before the deploy (moto is in process).
    get_backend("events")["210987654321"]["us-east-1"].create_partner_event_source(SHOPIFY_SOURCE, DEFAULT_ACCOUNT_ID)
    overrides = {"ShopifyEventSourceName": SHOPIFY_SOURCE, "WebhookEndpoint": "function-url"}
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    with LocalAws(parameter_overrides=overrides, stack_name="stocksync-connector-bench") as local:
        local.put_webhook_secrets()
        env = {**local.function_environment(), "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"}
        for path in PATHS:
            local.reset_data()
            results[path] = in_child(run_path, path, env, order_list)
            after = counters(local, skus)
            left = {sku: values for sku, values in after.items() if any(values)}
            if left:
                problems.append(
                    f"{path}: every order was cancelled, yet counters (P, C, K) remain: {sorted(left.items())[:3]}"
                )
            if results[path]["failures"]:
                problems.append(f"{path}: {results[path]['failures']} records failed or were refused")
    base = results["order_events"]["handler_seconds"] / results["order_events"]["changes"]
    result: dict[str, Any] = {"order_changes_per_path": results["order_events"]["changes"], "skus": skus}
    for path, figures in results.items():
        per_change = figures["handler_seconds"] / figures["changes"]
        calls = sum(figures["requests"].values()) / figures["changes"]
        result[path] = (
            f"{per_change * 1000:.1f} ms per change ({per_change / base:.2f}x order_events), "
            f"{calls:.1f} AWS requests per change, peak {figures['peak_mb']:.0f} MB"
        )
        if figures["peak_mb"] > 256:
            problems.append(f"{path}: peak {figures['peak_mb']:.0f} MB exceeds a 256 MB Lambda")
    return finish(result, problems, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
