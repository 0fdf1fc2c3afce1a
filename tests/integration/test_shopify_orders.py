"""The Shopify connector end to end on moto: Shopify's partner event source, the partner event bus the stack creates
for it, the topic rule, the queue, shopify_orders (the real handler), the ledger and the recompute queue.

The stack here is deployed with ``ShopifyEventSourceName`` set (the session's shared stack leaves the connector off).
Shopify creates the partner event source in the merchant's account before the deploy; the test does that in moto,
then sends each webhook as Shopify does, through PutPartnerEvents from the partner's account.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from stocksync.dal.codec import decode, encode
from stocksync_dev.cli.main import main
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import load_template, translate_template
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler, pointed_at

EVENTS = Path(__file__).resolve().parents[2] / "events"
PARTNER_ACCOUNT = "210987654321"  # Shopify's side of the partner event source
REGION = "us-east-1"
# Unique per session: moto's state is per process, and the bus (named as the source) may exist only once.
SOURCE_NAME = f"aws.partner/shopify.com/7261741/stocksync-{uuid.uuid4().hex[:8]}"
T0 = datetime(2026, 11, 23, 9, 58, tzinfo=UTC)
UNPLACED = "StockSync/OrderLinesUnplaced service=stocksync"


@pytest.fixture(scope="module")
def shopify_aws() -> Iterator[LocalAws]:
    partner = get_backend("events")[PARTNER_ACCOUNT][REGION]
    partner.create_partner_event_source(SOURCE_NAME, DEFAULT_ACCOUNT_ID)
    stack = f"stocksync-shopify-{uuid.uuid4().hex[:8]}"
    with LocalAws(parameter_overrides={"ShopifyEventSourceName": SOURCE_NAME}, stack_name=stack) as aws:
        yield aws


@pytest.fixture
def env(shopify_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """As tests/conftest.py's ``aws_env``, for this module's stack."""
    with pointed_at(shopify_aws, monkeypatch) as environment:
        yield environment


def webhook_event(topic: str, payload: dict[str, Any], webhook_id: str | None = None) -> dict[str, Any]:
    event = json.loads((EVENTS / "shopify_orders_create.json").read_text())
    event["detail"]["metadata"]["X-Shopify-Topic"] = topic
    event["detail"]["metadata"]["X-Shopify-Webhook-Id"] = webhook_id or str(uuid.uuid4())
    event["detail"]["payload"] = payload
    return event


def publish(*events: dict[str, Any]) -> None:
    """What Shopify does: PutPartnerEvents on the source, which EventBridge hands to the matched partner bus."""
    get_backend("events")[PARTNER_ACCOUNT][REGION].put_partner_events(
        [
            {
                "Source": SOURCE_NAME,
                "EventBusName": SOURCE_NAME,
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
            for event in events
        ]
    )


def receive(aws: LocalAws, receive_count: int = 1) -> dict[str, Any]:
    """The queue's messages as the batch Lambda's event source mapping hands over."""
    sqs, url = aws.client("sqs"), aws.outputs["ShopifyOrdersQueueUrl"]
    records = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {"ApproximateReceiveCount": str(receive_count)},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ShopifyOrdersQueue",
                    "awsRegion": REGION,
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert records, "the partner bus rule delivered nothing"
    return {"Records": records}


def deliver(aws: LocalAws) -> list[dict[str, Any]]:
    """Every queued record to the function, ten at a time as the event source mapping does; the responses."""
    records = receive(aws)["Records"]
    handler = load_handler("shopify_orders")
    return [
        handler.lambda_handler({"Records": records[start : start + 10]}, FakeLambdaContext())
        for start in range(0, len(records), 10)
    ]


def counters(aws: LocalAws, sku: str) -> tuple[int, int, int]:
    item = aws.client("dynamodb").get_item(
        TableName=aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )["Item"]
    state = decode(item)
    return state["pending_processing"], state["pending_created"], state["acknowledged_unsynced"]


def order(
    *lines: tuple[str | None, int, int],
    order_id: int = 5904326025302,
    financial: str = "paid",
    fulfillment: str | None = None,
    cancelled: bool = False,
    minutes: int = 0,
) -> dict[str, Any]:
    """An order payload; each line is (sku, quantity, current_quantity); ``minutes`` after T0 it was updated."""
    return {
        "id": order_id,
        "name": "#1042",
        "created_at": T0.isoformat(),
        "updated_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "cancelled_at": (T0 + timedelta(minutes=minutes)).isoformat() if cancelled else None,
        "financial_status": financial,
        "fulfillment_status": fulfillment,
        "source_name": "web",
        "line_items": [
            {"id": 14371844292694 + index, "sku": sku, "quantity": quantity, "current_quantity": current}
            for index, (sku, quantity, current) in enumerate(lines)
        ],
    }


def recomputed(aws: LocalAws) -> list[str]:
    messages = drain_queue(aws.client("sqs"), aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    return sorted(message["body"]["retailer_id"] for message in messages)


def dead_letters(aws: LocalAws) -> list[dict[str, Any]]:
    return drain_queue(aws.client("sqs"), aws.function_environment()["DEAD_LETTER_QUEUE_URL"])


# ------------------------------------------------------------------ the template
def test_everything_shopify_is_off_by_default_and_the_rule_sits_on_the_partner_bus() -> None:
    template = translate_template()
    resources = template["Resources"]
    shopify = {name for name in resources if name.startswith("Shopify")}
    assert {"ShopifyEventBus", "ShopifyOrdersRule", "ShopifyOrdersQueue", "ShopifyOrdersFunction"} <= shopify
    assert all(resources[name].get("Condition") == "HasShopify" for name in shopify)
    assert load_template()["Parameters"]["ShopifyEventSourceName"]["Default"] == ""
    bus = resources["ShopifyEventBus"]["Properties"]
    assert bus["Name"] == bus["EventSourceName"] == {"Ref": "ShopifyEventSourceName"}
    rule = resources["ShopifyOrdersRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "ShopifyEventSourceName"}
    assert resources["ShopifyOrdersRule"]["DependsOn"] == "ShopifyEventBus"
    assert rule["EventPattern"]["detail-type"] == ["shopifyWebhook"]
    assert sorted(rule["EventPattern"]["detail"]["metadata"]["X-Shopify-Topic"]) == [
        "orders/cancelled",
        "orders/create",
        "orders/edited",
        "orders/updated",
        "refunds/create",
    ]


def test_the_stack_with_the_connector_on_creates_the_partner_bus_and_the_function(shopify_aws: LocalAws) -> None:
    assert shopify_aws.outputs["ShopifyEventBusName"] == SOURCE_NAME
    assert shopify_aws.resources["ShopifyOrdersFunction"][0] == "AWS::Lambda::Function"


# ------------------------------------------------------------------ the whole path
def test_created_paid_refunded_fulfilled_counts_exactly_and_enqueues_the_recomputes(
    shopify_aws: LocalAws, env: Any
) -> None:
    publish(webhook_event("orders/create", order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 1), financial="pending")))
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (2, 0, 0) and counters(shopify_aws, "MUG-BLUE") == (1, 0, 0)
    assert recomputed(shopify_aws) == ["MUG-BLUE", "MUG-RED"]

    publish(webhook_event("orders/updated", order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 1), minutes=1)))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 1, 0)
    assert recomputed(shopify_aws) == ["MUG-BLUE", "MUG-RED"]

    # A refund restocking the blue mug: noted; its effect is the orders/updated Shopify sends with it.
    refund = {
        "id": 996953686102,
        "order_id": 5904326025302,
        "created_at": (T0 + timedelta(minutes=2)).isoformat(),
        "refund_line_items": [
            {"id": 1, "line_item_id": 14371844292695, "quantity": 1, "restock_type": "cancel"},
        ],
    }
    publish(webhook_event("refunds/create", refund))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-BLUE") == (0, 1, 0) and recomputed(shopify_aws) == []
    publish(
        webhook_event(
            "orders/updated",
            order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 0), financial="partially_refunded", minutes=2),
        )
    )
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 0, 0)
    assert recomputed(shopify_aws) == ["MUG-BLUE"]

    publish(
        webhook_event(
            "orders/updated",
            order(
                ("MUG-RED", 2, 2),
                ("MUG-BLUE", 1, 0),
                financial="partially_refunded",
                fulfillment="fulfilled",
                minutes=3,
            ),
        )
    )
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 0, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 0, 0)
    assert recomputed(shopify_aws) == ["MUG-RED"]
    assert dead_letters(shopify_aws) == []


def test_a_cancellation_releases_every_unit(shopify_aws: LocalAws, env: Any) -> None:
    publish(webhook_event("orders/create", order(("MUG-RED", 3, 3), order_id=7001)))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 3, 0)
    publish(webhook_event("orders/cancelled", order(("MUG-RED", 3, 3), order_id=7001, cancelled=True, minutes=5)))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 0, 0)


def test_duplicate_and_out_of_order_deliveries_count_once_and_never_go_back(shopify_aws: LocalAws, env: Any) -> None:
    created = webhook_event("orders/create", order(("MUG-RED", 4, 4), order_id=7002, financial="pending"))
    paid = webhook_event("orders/updated", order(("MUG-RED", 4, 4), order_id=7002, minutes=1))
    edited = webhook_event("orders/updated", order(("MUG-RED", 4, 3), order_id=7002, minutes=2))
    # The newest first, then the older ones, each twice (Shopify retries with the same webhook id), in one batch.
    publish(edited, edited, paid, created, copy.deepcopy(paid), created)
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (0, 3, 0)
    assert recomputed(shopify_aws) == ["MUG-RED"]  # only the first delivery changed anything

    # The same deliveries again later: nothing moves, nothing to recompute.
    publish(created, paid, edited)
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 3, 0) and recomputed(shopify_aws) == []
    assert dead_letters(shopify_aws) == []


def test_a_line_without_sku_is_counted_and_dead_lettered_naming_order_and_line_and_the_rest_applies(
    shopify_aws: LocalAws, env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    publish(webhook_event("orders/create", order(("MUG-RED", 2, 2), (None, 1, 1), ("", 1, 1), order_id=7003)))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0)
    assert emitted_metrics(capsys.readouterr().out)[UNPLACED] == [2.0]
    letters = dead_letters(shopify_aws)
    assert sorted(letter["attributes"]["reason"] for letter in letters) == [
        "order shopify:7003 line 14371844292695: line item has no SKU",
        "order shopify:7003 line 14371844292696: line item has no SKU",
    ]
    assert {letter["attributes"]["source"] for letter in letters} == {"shopify_orders"}
    assert {letter["body"]["body"]["topic"] for letter in letters} == {"orders/create"}


def test_bad_input_is_dead_lettered_with_the_field_and_the_rest_of_the_batch_applies(
    shopify_aws: LocalAws, env: Any
) -> None:
    bad = order(("MUG-RED", 2, 2), order_id=7004)
    bad["line_items"][0]["quantity"] = -1
    publish(
        webhook_event("orders/create", bad), webhook_event("orders/create", order(("MUG-RED", 1, 1), order_id=7005))
    )
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (0, 1, 0)
    reasons = [letter["attributes"]["reason"] for letter in dead_letters(shopify_aws)]
    assert len(reasons) == 1 and reasons[0].startswith("detail.payload.line_items.0.quantity:")


def test_an_order_of_250_lines_applies_in_parts_and_counts_every_unit(shopify_aws: LocalAws, env: Any) -> None:
    lines = [(f"SKU-{index:03d}", 1 + index % 2, 1 + index % 2) for index in range(250)]
    publish(webhook_event("orders/create", order(*lines, order_id=7006)))
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "SKU-000") == (0, 1, 0) and counters(shopify_aws, "SKU-249") == (0, 2, 0)
    assert sum(counters(shopify_aws, sku)[1] for sku, _, _ in lines) == 375
    assert len(recomputed(shopify_aws)) == 250
    publish(webhook_event("orders/cancelled", order(*lines, order_id=7006, cancelled=True, minutes=1)))
    deliver(shopify_aws)
    assert sum(counters(shopify_aws, sku)[1] for sku, _, _ in lines) == 0
    assert dead_letters(shopify_aws) == []


def test_the_shipped_sample_batch_applies_the_order_and_notes_the_refund(shopify_aws: LocalAws, env: Any) -> None:
    sample = json.loads((EVENTS / "shopify_orders_sqs_batch.json").read_text())
    assert load_handler("shopify_orders").lambda_handler(sample, FakeLambdaContext()) == {"batchItemFailures": []}
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 1, 0)
    assert dead_letters(shopify_aws) == []


def test_an_edit_that_adds_a_line_item_and_units_counts_them_and_the_older_delivery_changes_nothing(
    shopify_aws: LocalAws, env: Any
) -> None:
    """docs/connectors.md, "Edits that add line items": an edited order grows in the ledger (a new SKU joins, a
    SKU's units take the larger count), so the units an edit adds are counted, once, whatever the delivery order."""
    created = webhook_event("orders/create", order(("MUG-RED", 1, 1), order_id=7007))
    publish(created)
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (0, 1, 0)
    assert recomputed(shopify_aws) == ["MUG-RED"]

    # The merchant edits the order: a blue mug added, a second red one (Shopify sends orders/updated after the edit).
    edited = order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 1), order_id=7007, minutes=1)
    edit = {
        "order_edit": {
            "id": 79,
            "order_id": 7007,
            "created_at": (T0 + timedelta(minutes=1)).isoformat(),
            "committed_at": (T0 + timedelta(minutes=1)).isoformat(),
            "line_items": {"additions": [{"id": 14371844292694, "delta": 1}, {"id": 14371844292695, "delta": 1}]},
        }
    }
    publish(webhook_event("orders/edited", edit), webhook_event("orders/updated", edited))
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 1, 0)
    assert recomputed(shopify_aws) == ["MUG-BLUE", "MUG-RED"]

    # The older orders/create again (Shopify's retry, or a late EventBridge delivery): nothing moves.
    publish(created)
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 1, 0)
    assert recomputed(shopify_aws) == []
    assert dead_letters(shopify_aws) == []

    # Shipped: every unit leaves C, the added ones included.
    shipped = order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 1), order_id=7007, fulfillment="fulfilled", minutes=5)
    publish(webhook_event("orders/updated", shipped))
    deliver(shopify_aws)
    assert counters(shopify_aws, "MUG-RED") == (0, 0, 0) and counters(shopify_aws, "MUG-BLUE") == (0, 0, 0)


def test_an_edit_that_would_take_an_order_past_one_part_is_dead_lettered_naming_the_order(
    shopify_aws: LocalAws, env: Any
) -> None:
    """docs/connectors.md, "Not handled yet": growth stays within one part (49 SKUs); the order stays as applied."""
    lines = [(f"SKU-{index:03d}", 1, 1) for index in range(45)]
    publish(webhook_event("orders/create", order(*lines, order_id=7009)))
    deliver(shopify_aws)
    added = [(f"SKU-{index:03d}", 1, 1) for index in range(45, 50)]
    publish(webhook_event("orders/updated", order(*lines, *added, order_id=7009, minutes=1)))
    assert deliver(shopify_aws) == [{"batchItemFailures": []}]
    assert counters(shopify_aws, "SKU-000") == (0, 1, 0)
    reasons = [letter["attributes"]["reason"] for letter in dead_letters(shopify_aws)]
    assert len(reasons) == 1
    assert "order shopify:7009 holds 45 SKU(s)" in reasons[0] and "past one part" in reasons[0]


def test_a_redelivered_record_enqueues_its_skus_again_and_counts_once(shopify_aws: LocalAws, env: Any) -> None:
    """A first try may have written the ledger and died before its recompute enqueue: SQS's redelivery (receive
    count 2) finds the order unchanged and enqueues its SKUs all the same."""
    publish(webhook_event("orders/create", order(("MUG-RED", 2, 2), ("MUG-BLUE", 1, 1), order_id=7008)))
    batch = receive(shopify_aws)
    handler = load_handler("shopify_orders")
    handler.lambda_handler(batch, FakeLambdaContext())
    assert recomputed(shopify_aws) == ["MUG-BLUE", "MUG-RED"]
    again = {"Records": [{**record, "attributes": {"ApproximateReceiveCount": "2"}} for record in batch["Records"]]}
    assert handler.lambda_handler(again, FakeLambdaContext()) == {"batchItemFailures": []}
    assert recomputed(shopify_aws) == ["MUG-BLUE", "MUG-RED"]
    assert counters(shopify_aws, "MUG-RED") == (0, 2, 0)


def test_the_sample_batch_replays_like_sam_local_invoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`stocksync replay events/shopify_orders_sqs_batch.json --function shopify_orders` (its own stack, connector
    off: invoking the function needs only the function)."""
    code = main(["replay", str(EVENTS / "shopify_orders_sqs_batch.json"), "--function", "shopify_orders"])
    answer = json.loads(capsys.readouterr().out)
    assert (code, answer) == (0, {"dead_letters": [], "result": {"batchItemFailures": []}})
