"""Signed webhooks end to end on moto server, with template.yaml deployed with WebhookEndpoint=function-url:
Function URL event -> order_webhook (signature, idempotency) -> webhook queue -> webhook_orders -> ledger and
counters -> recompute queue; refusals store nothing."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from stocksync.dal.codec import decode, encode
from stocksync.integrations.webhook_signatures import sign
from stocksync_dev.cli.main import main
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler, pointed_at

EVENTS = Path(__file__).resolve().parents[2] / "events"
# The secrets the samples in events/ are signed with (docs/connectors.md): never a real shop's.
SECRETS = {"woocommerce": "stocksync-sample-woocommerce-secret", "generic": "stocksync-sample-generic-secret"}


@pytest.fixture(scope="module")
def webhook_stack() -> Iterator[LocalAws]:
    with LocalAws(parameter_overrides={"WebhookEndpoint": "function-url"}, stack_name="stocksync-webhook") as local:
        # moto's state is per process: another stack of the session (a replay) may have stored the secret already.
        local.put_webhook_secrets(SECRETS)
        yield local


@pytest.fixture
def env(webhook_stack: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The webhook functions' environment: Globals plus their own variables, as the template sets them."""
    overrides = {
        "WEBHOOK_QUEUE_URL": webhook_stack.outputs["WebhookQueueUrl"],
        "WEBHOOK_SECRET_NAME": "stocksync/webhooks",
    }
    with pointed_at(webhook_stack, monkeypatch, overrides) as environment:
        yield environment


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def url_event(body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
    event = sample("woocommerce_order_updated.json")
    event["headers"] = {"content-type": "application/json", **headers}
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    event["isBase64Encoded"] = base64_body
    return event


def woo_body(status: str, modified: str = "2026-12-04T10:00:00", *, lines: list[dict[str, Any]] | None = None) -> bytes:
    order = json.loads(sample("woocommerce_order_updated.json")["body"])
    order.update(status=status, date_modified_gmt=modified)
    if lines is not None:
        order["line_items"] = lines
    return json.dumps(order).encode()


def woo_headers(body: bytes, delivery_id: str, *, secret: str = SECRETS["woocommerce"]) -> dict[str, str]:
    return {
        "x-wc-webhook-topic": "order.updated",
        "x-wc-webhook-delivery-id": delivery_id,
        "x-wc-webhook-signature": sign(secret, body),
    }


def post(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = load_handler("order_webhook").lambda_handler(event, FakeLambdaContext())
    return answer["statusCode"], json.loads(answer["body"])


def queued(env: dict[str, str], local: LocalAws) -> list[dict[str, Any]]:
    """The webhook queue's messages as an SQS batch event (read, not deleted: they stay for webhook_orders)."""
    sqs = local.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=env["WEBHOOK_QUEUE_URL"], MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def consume(
    local: LocalAws, env: dict[str, str], messages: list[dict[str, Any]], *, receive_count: int = 1
) -> dict[str, Any]:
    event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WebhookQueue",
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }
    return load_handler("webhook_orders").lambda_handler(event, FakeLambdaContext())


def sku_state(local: LocalAws, env: dict[str, str], sku: str) -> dict[str, Any]:
    item = (
        local.client("dynamodb")
        .get_item(TableName=env["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"}))
        .get("Item")
    )
    return decode(item) if item else {}


def count_items(local: LocalAws, table: str) -> int:
    return int(local.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])


# ------------------------------------------------------------------ the whole path
def test_the_sample_goes_from_function_url_to_ledger_to_recompute_queue(
    webhook_stack: LocalAws, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The endpoint: moto creates the function, not its AWS::Lambda::Url (nor so the WebhookUrl output).
    assert webhook_stack.resources["OrderWebhookFunction"][0] == "AWS::Lambda::Function"
    assert webhook_stack.skipped_resources["OrderWebhookFunctionUrl"] == "AWS::Lambda::Url"
    status, answer = post(sample("woocommerce_order_updated.json"))
    assert status == 200 and answer["delivery_id"] == "6f1c0e9b3a2d4c58b7e1d2f3a4b5c6d7"
    messages = queued(env, webhook_stack)
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["platform"] == "woocommerce"

    assert consume(webhook_stack, env, messages) == {"batchItemFailures": []}
    state = sku_state(webhook_stack, env, "MUG-RED")
    assert (state["pending_processing"], state["pending_created"]) == (0, 2)
    rows = webhook_stack.client("dynamodb").scan(TableName=env["ORDERS_TABLE"])["Items"]
    assert [decode(row)["order_id"] for row in rows] == ["woocommerce:727"]
    recompute = drain_queue(webhook_stack.client("sqs"), env["RECOMPUTE_QUEUE_URL"])
    assert [message["body"]["retailer_id"] for message in recompute] == ["MUG-RED"]

    # The gift card line has no SKU: counted and dead-lettered with the order and line, the mug still applied.
    letters = drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert [letter["attributes"]["reason"] for letter in letters] == [
        "order woocommerce:727 line 316: line item has no SKU"
    ]
    assert letters[0]["attributes"]["source"] == "webhook_orders"
    assert letters[0]["body"]["body"]["delivery_id"] == "6f1c0e9b3a2d4c58b7e1d2f3a4b5c6d7"
    emitted = emitted_metrics(capsys.readouterr().out)
    assert emitted["StockSync/OrderLinesUnplaced service=stocksync"] == [1.0]


def test_the_generic_sample_is_applied(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    status, _ = post(sample("generic_order_webhook.json"))
    assert status == 200
    assert consume(webhook_stack, env, queued(env, webhook_stack)) == {"batchItemFailures": []}
    assert sku_state(webhook_stack, env, "CAP-BLUE")["pending_created"] == 3
    assert sku_state(webhook_stack, env, "MUG-RED")["pending_created"] == 1


# ------------------------------------------------------------------ refusals store nothing
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: woo_headers(body, "d-1", secret="wrong"), id="wrong secret"),
        pytest.param(lambda body: woo_headers(woo_body("cancelled"), "d-1"), id="tampered body"),
        pytest.param(lambda body: {"x-wc-webhook-delivery-id": "d-1"}, id="missing header"),
        pytest.param(
            lambda body: {"x-shopify-hmac-sha256": sign(SECRETS["woocommerce"], body)}, id="platform without secret"
        ),
    ],
)
def test_a_bad_or_missing_signature_is_401_with_nothing_stored(
    webhook_stack: LocalAws, env: dict[str, str], headers: Any
) -> None:
    body = woo_body("processing")
    status, _ = post(url_event(body, headers(body)))
    assert status == 401
    assert queued(env, webhook_stack) == []
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 0
    assert count_items(webhook_stack, env["ORDERS_TABLE"]) == 0


def test_a_replayed_delivery_is_queued_once(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    body = woo_body("processing")
    event = url_event(body, woo_headers(body, "replayed-1"))
    assert [post(event)[0] for _ in range(3)] == [200, 200, 200]
    assert len(queued(env, webhook_stack)) == 1
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 1
    # WooCommerce's delivery id is a hash of the webhook id and the second: two updates within one second share
    # it. The other body is its own delivery, queued too (the ledger orders them by content, not arrival).
    other = woo_body("completed", "2026-12-04T10:00:01")
    assert [post(url_event(other, woo_headers(other, "replayed-1")))[0] for _ in range(2)] == [200, 200]
    assert len(queued(env, webhook_stack)) == 1
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 2


def test_woocommerces_unsigned_ping_gets_200_and_stores_nothing(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    event = url_event(b"webhook_id=12", {"content-type": "application/x-www-form-urlencoded"})
    assert post(event)[0] == 200
    assert queued(env, webhook_stack) == []
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 0


def test_a_base64_body_is_verified_over_its_decoded_bytes(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    body = woo_body("pending")
    assert post(url_event(body, woo_headers(body, "b64-1"), base64_body=True))[0] == 200
    assert consume(webhook_stack, env, queued(env, webhook_stack)) == {"batchItemFailures": []}
    assert sku_state(webhook_stack, env, "MUG-RED")["pending_processing"] == 2


# ------------------------------------------------------------------ order and size
def test_out_of_order_and_duplicate_deliveries_leave_exact_counts(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    deliveries = [
        ("cancelled", "2026-12-04T10:30:00", "d-3"),
        ("processing", "2026-12-04T10:00:00", "d-2"),
        ("pending", "2026-12-04T09:55:00", "d-1"),
        ("processing", "2026-12-04T10:00:00", "d-2b"),  # WooCommerce sent the same content again
    ]
    for status, modified, delivery_id in deliveries:
        body = woo_body(status, modified)
        assert post(url_event(body, woo_headers(body, delivery_id)))[0] == 200
    for message in queued(env, webhook_stack):  # one at a time, in the order they arrived
        assert consume(webhook_stack, env, [message]) == {"batchItemFailures": []}
    state = sku_state(webhook_stack, env, "MUG-RED")
    assert (state.get("pending_processing", 0), state.get("pending_created", 0)) == (0, 0)
    row = decode(webhook_stack.client("dynamodb").scan(TableName=env["ORDERS_TABLE"])["Items"][0])
    assert row["state"] == "COMPLETED"
    letters = drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert len(letters) == 1  # the SKU-less line, reported by the first delivery only (the rest changed nothing)


def test_a_250_line_order_fits_one_message_and_is_counted_exactly(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    lines = [
        {"id": 5000 + n, "name": f"Product {n} " + "x" * 300, "sku": f"SKU-{n:03d}", "quantity": 1 + n % 4}
        for n in range(250)
    ]
    body = woo_body("processing", lines=lines)
    assert len(body) > 64 * 1024
    assert post(url_event(body, woo_headers(body, "big-1")))[0] == 200
    messages = queued(env, webhook_stack)
    assert len(messages) == 1
    assert consume(webhook_stack, env, messages) == {"batchItemFailures": []}
    for n in (0, 1, 2, 3, 124, 249):
        assert sku_state(webhook_stack, env, f"SKU-{n:03d}")["pending_created"] == 1 + n % 4
    recompute = drain_queue(webhook_stack.client("sqs"), env["RECOMPUTE_QUEUE_URL"])
    assert len({message["body"]["retailer_id"] for message in recompute}) == 250


def test_a_bad_payload_is_dead_lettered_naming_the_field(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    body = json.dumps({"id": 9, "status": "processing", "line_items": []}).encode()
    assert post(url_event(body, woo_headers(body, "bad-1")))[0] == 200  # signed: accepted, checked later
    assert consume(webhook_stack, env, queued(env, webhook_stack)) == {"batchItemFailures": []}
    letters = drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert [letter["attributes"]["reason"].split(":")[0] for letter in letters] == ["date_modified_gmt"]


def test_a_delivery_dated_past_the_clock_skew_is_dead_lettered_naming_the_field(
    webhook_stack: LocalAws, env: dict[str, str]
) -> None:
    body = woo_body("processing", modified="2099-01-01T00:00:00")
    assert post(url_event(body, woo_headers(body, "future-1")))[0] == 200
    assert consume(webhook_stack, env, queued(env, webhook_stack)) == {"batchItemFailures": []}
    (letter,) = drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert letter["attributes"]["reason"].startswith("date_modified_gmt: Value error, lies ")
    assert "at most 5 minutes of clock skew is accepted" in letter["attributes"]["reason"]


# ------------------------------------------------------------------ requests that are not deliveries
def test_requests_that_are_not_deliveries_are_refused_before_the_signature(
    webhook_stack: LocalAws, env: dict[str, str]
) -> None:
    body = woo_body("processing")
    get = url_event(body, woo_headers(body, "m-1"))
    get["requestContext"]["http"]["method"] = "GET"
    assert post(get)[0] == 405
    broken = url_event(body, woo_headers(body, "m-2"))
    broken.update(body="***", isBase64Encoded=True)
    assert post(broken)[0] == 400
    latin1 = '{"caf\xe9": 1}'.encode("latin-1")
    assert post(url_event(latin1, woo_headers(latin1, "m-3"), base64_body=True))[0] == 400
    assert post(url_event(body, woo_headers(body, "bad\nid")))[0] == 400
    assert queued(env, webhook_stack) == []
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 0


def test_a_delivery_without_an_id_is_keyed_on_its_body(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    body = woo_body("processing")
    headers = {"x-wc-webhook-signature": sign(SECRETS["woocommerce"], body)}
    first, second = post(url_event(body, headers)), post(url_event(body, headers))
    assert first[0] == second[0] == 200 and first[1]["delivery_id"].startswith("sha256:")
    assert len(queued(env, webhook_stack)) == 1


def test_a_redelivered_record_reports_its_unplaced_line_again(webhook_stack: LocalAws, env: dict[str, str]) -> None:
    """A first try may have failed after its ledger write and before its dead letter: the retry reports again."""
    assert post(sample("woocommerce_order_updated.json"))[0] == 200
    messages = queued(env, webhook_stack)
    assert consume(webhook_stack, env, messages) == {"batchItemFailures": []}
    assert consume(webhook_stack, env, messages) == {"batchItemFailures": []}  # a repeat: quiet
    assert len(drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])) == 1
    drain_queue(webhook_stack.client("sqs"), env["RECOMPUTE_QUEUE_URL"])
    assert consume(webhook_stack, env, messages, receive_count=2) == {"batchItemFailures": []}
    letters = drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert [letter["attributes"]["reason"] for letter in letters] == [
        "order woocommerce:727 line 316: line item has no SKU"
    ]
    # ...and enqueues the order's SKUs again, as order_events does (its first enqueue may be what failed).
    recompute = drain_queue(webhook_stack.client("sqs"), env["RECOMPUTE_QUEUE_URL"])
    assert [message["body"]["retailer_id"] for message in recompute] == ["MUG-RED"]


def test_a_pending_order_gaining_an_item_counts_the_added_units_once(
    webhook_stack: LocalAws, env: dict[str, str]
) -> None:
    """A WooCommerce admin adds an item to a pending order and raises a quantity: the ledger grows the order
    (docs/connectors.md, "Edits that add line items"); an older delivery, or one with a lowered quantity, never
    takes units back before the order completes."""

    def deliver(body: bytes, delivery_id: str) -> None:
        assert post(url_event(body, woo_headers(body, delivery_id)))[0] == 200
        assert consume(webhook_stack, env, queued(env, webhook_stack)) == {"batchItemFailures": []}

    def pending(sku: str) -> tuple[int, int]:
        state = sku_state(webhook_stack, env, sku)
        return state.get("pending_processing", 0), state.get("pending_created", 0)

    placed = woo_body("pending", lines=[{"id": 1, "sku": "MUG-RED", "quantity": 2}])
    deliver(placed, "e-1")
    assert pending("MUG-RED") == (2, 0)
    edited_lines = [{"id": 1, "sku": "MUG-RED", "quantity": 3}, {"id": 2, "sku": "MUG-BLUE", "quantity": 1}]
    deliver(woo_body("pending", "2026-12-04T10:10:00", lines=edited_lines), "e-2")
    assert pending("MUG-RED") == (3, 0) and pending("MUG-BLUE") == (1, 0)

    deliver(placed, "e-3")  # the older delivery again, under a new delivery id
    lowered = [{"id": 1, "sku": "MUG-RED", "quantity": 1}, {"id": 2, "sku": "MUG-BLUE", "quantity": 1}]
    deliver(woo_body("pending", "2026-12-04T10:20:00", lines=lowered), "e-4")
    assert pending("MUG-RED") == (3, 0) and pending("MUG-BLUE") == (1, 0)  # the safe direction until it completes

    deliver(woo_body("processing", "2026-12-04T10:30:00", lines=lowered), "e-5")
    assert pending("MUG-RED") == (0, 3) and pending("MUG-BLUE") == (0, 1)
    deliver(woo_body("completed", "2026-12-04T11:00:00", lines=lowered), "e-6")
    assert pending("MUG-RED") == (0, 0) and pending("MUG-BLUE") == (0, 0)
    assert drain_queue(webhook_stack.client("sqs"), env["DEAD_LETTER_QUEUE_URL"]) == []


def test_a_body_too_large_for_a_queue_message_is_413_with_nothing_stored(
    webhook_stack: LocalAws, env: dict[str, str]
) -> None:
    body = json.dumps({"id": 1, "noise": base64.b64encode(os.urandom(400_000)).decode()}).encode()
    assert post(url_event(body, woo_headers(body, "huge-1")))[0] == 413
    assert queued(env, webhook_stack) == []
    assert count_items(webhook_stack, env["IDEMPOTENCY_TABLE"]) == 0


@pytest.mark.parametrize("sample", ["woocommerce_order_updated.json", "generic_order_webhook.json"])
def test_a_signed_sample_replays_like_sam_local_invoke(sample: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`stocksync replay events/<sample> --function order_webhook`: the local stack has the endpoint and stores the
    secrets the samples are signed with, so the sample is accepted as a real delivery would be."""
    parameters.clear_caches()
    code = main(["replay", str(EVENTS / sample), "--function", "order_webhook"])
    answer = json.loads(capsys.readouterr().out)
    assert (code, answer["dead_letters"], answer["result"]["statusCode"]) == (0, [], 200)
    assert json.loads(answer["result"]["body"])["message"] == "accepted"
