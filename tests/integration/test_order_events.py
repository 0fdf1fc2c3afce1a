"""The events order source end to end: the bus rule routes "Order Changed" to the queue, order_events applies it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from stocksync.dal.codec import decode, encode
from stocksync.integrations.messaging import RecomputeQueue
from stocksync_dev.local.aws import BUS_SOURCES, LocalAws
from tests.support import FakeLambdaContext, drain_queue, load_handler


def publish(local_aws: LocalAws, *details: dict[str, Any], detail_type: str = "Order Changed") -> None:
    answer = local_aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": local_aws.outputs["EventBusName"],
                "Source": BUS_SOURCES[detail_type],
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
            for detail in details
        ]
    )
    assert answer["FailedEntryCount"] == 0


def deliver(local_aws: LocalAws) -> dict[str, Any]:
    """What Lambda's event source mapping would do: hand the queue's messages to the function as one batch."""
    return load_handler("order_events").lambda_handler(receive(local_aws), FakeLambdaContext())


def receive(local_aws: LocalAws) -> dict[str, Any]:
    """The queue's messages as the batch Lambda's event source mapping hands over (a first delivery)."""
    sqs = local_aws.client("sqs")
    url = local_aws.outputs["OrderEventsQueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    event = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:OrderEventsQueue",
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }
    assert event["Records"], "the bus rule delivered nothing"
    return event


def sku_state(local_aws: LocalAws, sku: str) -> dict[str, Any]:
    item = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )["Item"]
    return decode(item)


def order(order_id: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "state": state,
        "channel": "webshop",
        "items": [{"retailer_id": "SKU-1", "quantity": 2}],
        "occurred_at": "2026-11-23T10:00:00Z",
        **extra,
    }


def test_order_events_move_units_through_p_and_c_and_repeat_harmlessly(local_aws: LocalAws, aws_env: Any) -> None:
    publish(local_aws, order("web-1", "pending"), order("web-2", "placed"))
    assert deliver(local_aws) == {"batchItemFailures": []}
    state = sku_state(local_aws, "SKU-1")
    assert (state["pending_processing"], state["pending_created"], state["platform_units"]) == (2, 2, 0)

    # Redelivery of the same events, then web-1 moving on: only the move counts.
    publish(local_aws, order("web-1", "pending"), order("web-1", "accepted"))
    assert deliver(local_aws) == {"batchItemFailures": []}
    state = sku_state(local_aws, "SKU-1")
    assert (state["pending_processing"], state["pending_created"], state["acknowledged_unsynced"]) == (0, 2, 2)
    recompute = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    assert {message["body"]["retailer_id"] for message in recompute} == {"SKU-1"}


def test_a_bad_event_is_dead_lettered_with_the_field_and_the_rest_of_the_batch_applied(
    local_aws: LocalAws, aws_env: Any
) -> None:
    bad_quantity = order("web-3", "placed", items=[{"retailer_id": "SKU-1", "quantity": 0}])
    unknown_state = order("web-4", "teleported")
    publish(local_aws, bad_quantity, order("web-5", "placed"), unknown_state)
    assert deliver(local_aws) == {"batchItemFailures": []}  # bad input is handled (dead-lettered), not retried
    assert sku_state(local_aws, "SKU-1")["pending_created"] == 2

    letters = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    reasons = sorted(letter["attributes"]["reason"] for letter in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("items.0.quantity:") and reasons[1].startswith("state:")
    assert all(letter["attributes"]["source"] == "order_events" for letter in letters)


def test_an_event_that_adds_items_or_units_grows_the_order_and_an_older_one_changes_nothing(
    local_aws: LocalAws, aws_env: Any
) -> None:
    """Web-shop orders can be edited after they are placed: the ledger grows them (logic/ledger.py), once."""
    publish(local_aws, order("web-6", "placed"))
    deliver(local_aws)
    grown = [{"retailer_id": "SKU-1", "quantity": 5}, {"retailer_id": "SKU-2", "quantity": 1}]
    publish(local_aws, order("web-6", "placed", items=grown, occurred_at="2026-11-23T10:05:00Z"))
    assert deliver(local_aws) == {"batchItemFailures": []}
    assert (
        sku_state(local_aws, "SKU-1")["pending_created"] == 5 and sku_state(local_aws, "SKU-2")["pending_created"] == 1
    )

    publish(local_aws, order("web-6", "placed"))  # the first event again, late
    assert deliver(local_aws) == {"batchItemFailures": []}
    assert (
        sku_state(local_aws, "SKU-1")["pending_created"] == 5 and sku_state(local_aws, "SKU-2")["pending_created"] == 1
    )
    assert drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"]) == []


def test_the_shipped_sample_batch_applies_one_order_and_dead_letters_the_other(
    local_aws: LocalAws, aws_env: Any
) -> None:
    sample = json.loads((Path(__file__).resolve().parents[2] / "events" / "order_events_sqs_batch.json").read_text())
    assert load_handler("order_events").lambda_handler(sample, FakeLambdaContext()) == {"batchItemFailures": []}
    assert sku_state(local_aws, "MUG-RED")["pending_created"] == 2
    letters = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert [letter["attributes"]["reason"].split(":")[0] for letter in letters] == ["items.0.quantity"]


def with_receive_count(event: dict[str, Any], count: int) -> dict[str, Any]:
    """The same batch as SQS hands it over again: the records' ApproximateReceiveCount is ``count``."""
    return {
        "Records": [
            {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}
            for record in event["Records"]
        ]
    }


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the dead try emits none
def test_a_redelivery_after_a_crash_between_the_ledger_write_and_the_enqueue_enqueues_the_skus(
    local_aws: LocalAws, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try writes the ledger and dies before the recompute enqueue; SQS delivers the record again
    (ApproximateReceiveCount 2), the order is unchanged, and its SKUs are enqueued all the same. A duplicate that is
    a first delivery (another event with the same content) enqueues nothing: it changed nothing."""
    sqs, recompute_url = local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"]
    publish(
        local_aws,
        order(
            "web-8", "placed", items=[{"retailer_id": "SKU-1", "quantity": 2}, {"retailer_id": "SKU-2", "quantity": 1}]
        ),
    )
    event = receive(local_aws)
    enqueue = RecomputeQueue.enqueue

    def die(self: RecomputeQueue, retailer_ids: Any, *, reason: str) -> None:
        raise RuntimeError("the Lambda died before the enqueue")

    monkeypatch.setattr(RecomputeQueue, "enqueue", die)
    with pytest.raises(BatchProcessingError):  # every record failed: Lambda fails the batch, SQS delivers it again
        load_handler("order_events").lambda_handler(event, FakeLambdaContext())
    monkeypatch.setattr(RecomputeQueue, "enqueue", enqueue)
    assert sku_state(local_aws, "SKU-1")["pending_created"] == 2 and drain_queue(sqs, recompute_url) == []

    redelivered = load_handler("order_events").lambda_handler(with_receive_count(event, 2), FakeLambdaContext())

    assert redelivered == {"batchItemFailures": []}
    assert sorted(message["body"]["retailer_id"] for message in drain_queue(sqs, recompute_url)) == ["SKU-1", "SKU-2"]
    assert sku_state(local_aws, "SKU-1")["pending_created"] == 2  # enqueued again, counted once

    assert load_handler("order_events").lambda_handler(with_receive_count(event, 1), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert drain_queue(sqs, recompute_url) == []


def test_a_hot_sku_whose_transactions_keep_conflicting_backs_off_then_dead_letters_the_event_with_the_reason(
    local_aws: LocalAws, aws_env: Any, monkeypatch: pytest.MonkeyPatch, backoff_waits: list[float]
) -> None:
    """DynamoDB cancels a transaction that meets another one on the same item (``TransactionConflict``): on a hot
    SKU, every order's transaction may. order_events retries with jittered backoff (noted, not slept, here), lets
    SQS bring the event back, and on its last receive dead-letters it with the reason, not the queue's own DLQ."""
    from botocore.exceptions import ClientError

    from stocksync.dal.ledger_table import DynamoLedger
    from stocksync.integrations.sqs_batch import MAX_RECEIVES

    write_part = DynamoLedger.write_part

    def conflicting(self: DynamoLedger, *args: Any, **kwargs: Any) -> None:
        real = self._client.transact_write_items

        def cancelled(**request: Any) -> None:
            reasons = [{"Code": "None"}] + [{"Code": "TransactionConflict"}] * (len(request["TransactItems"]) - 1)
            error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
            raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")

        self._client.transact_write_items = cancelled
        try:
            write_part(self, *args, **kwargs)
        finally:
            self._client.transact_write_items = real

    monkeypatch.setattr(DynamoLedger, "write_part", conflicting)
    publish(local_aws, order("web-hot", "placed"))
    event = receive(local_aws)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVES - 1)
    handler = load_handler("order_events")
    with pytest.raises(BatchProcessingError):  # its only record failed: SQS brings it back
        handler.lambda_handler(event, FakeLambdaContext())
    assert len(backoff_waits) == 7 and all(0 <= wait <= 0.4 for wait in backoff_waits)

    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVES)
    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    [letter] = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert letter["attributes"]["reason"] == (
        f"unexpected StaleLedgerError on the last of {MAX_RECEIVES} tries: "
        "order events:web-hot part 0: still contended after 8 tries with backoff"
    )
    assert letter["body"]["body"]["detail"]["order_id"] == "web-hot"
