"""``stocksync redrive`` against the stack deployed in moto server: a record dead-lettered by a real handler goes back
to its queue after the fix and is applied; a second run changes nothing; what has no known source stays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.models.settings import get_settings
from stocksync_dev.cli import main as cli
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, bus_event, load_handler

SKU = "MUG-RED"


def url(local_aws: LocalAws, queue: str) -> str:
    return local_aws.resources[queue][1]


def arn(local_aws: LocalAws, queue: str) -> str:
    answer = local_aws.client("sqs").get_queue_attributes(QueueUrl=url(local_aws, queue), AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


def bodies(local_aws: LocalAws, queue: str) -> list[Any]:
    """The visible messages of a queue, left in place (made visible again at once)."""
    sqs, queue_url = local_aws.client("sqs"), url(local_aws, queue)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    found = messages.get("Messages", [])
    for message in found:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return [(json.loads(message["Body"]), message.get("MessageAttributes", {})) for message in found]


def deliver(local_aws: LocalAws, queue: str, function: str) -> dict[str, Any]:
    """One batch of ``queue`` to ``function``'s real entry point, as Lambda's event source mapping hands it over
    (the queue's real ARN, receive count and all), deleting what the handler did not report as failed."""
    sqs, queue_url = local_aws.client("sqs"), url(local_aws, queue)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    records = [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn(local_aws, queue),
            "awsRegion": "us-east-1",
        }
        for message in messages
    ]
    answer = load_handler(function).lambda_handler({"Records": records}, FakeLambdaContext())
    failed = {failure["itemIdentifier"] for failure in answer.get("batchItemFailures", [])}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return dict(answer)


def sku_state(local_aws: LocalAws, retailer_id: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Key=encode({"retailer_id": retailer_id, "record": "state"}),
    )
    return decode(answer.get("Item", {}))


def redrive(local_aws: LocalAws, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str]:
    capsys.readouterr()  # what the handlers printed before (their metrics)
    code = cli.main(["redrive", "--stack-name", local_aws.stack_name, *more])
    return code, capsys.readouterr().out


def test_a_dead_letter_is_applied_after_the_fix_and_a_second_redrive_changes_nothing(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A settings change naming a bucket the deployment does not have yet: refused, with its reason.
    change = bus_event(
        "SKU Settings Changed", {"retailer_id": SKU, "as_of": "2026-11-23T10:00:00Z", "bucket": "clearance"}
    )
    local_aws.client("sqs").send_message(QueueUrl=url(local_aws, "RecomputeQueue"), MessageBody=json.dumps(change))
    assert deliver(local_aws, "RecomputeQueue", "recompute_stock") == {"batchItemFailures": []}
    [(letter, _attributes)] = bodies(local_aws, "DeadLetterQueue")
    assert letter["queue_arn"] == arn(local_aws, "RecomputeQueue") and "unknown bucket 'clearance'" in letter["reason"]
    assert sku_state(local_aws, SKU).get("bucket") != "clearance"

    # The fix: a deploy that adds the bucket.
    buckets = json.loads(aws_env["STOCKSYNC_BUCKETS"])
    monkeypatch.setenv("STOCKSYNC_BUCKETS", json.dumps({**buckets, "clearance": {"threshold": 0}}))
    get_settings.cache_clear()

    code, out = redrive(local_aws, capsys, "--dry-run", "--queue", "deadletterqueue")
    assert code == 0
    assert out.splitlines()[:2] == [
        "1 dead-letter queues checked: would move 1, left 0",
        "DeadLetterQueue: would move 1 (1 to RecomputeQueue), left 0",
    ]
    assert len(bodies(local_aws, "DeadLetterQueue")) == 1 and bodies(local_aws, "RecomputeQueue") == []

    code, out = redrive(local_aws, capsys, "--json")
    assert code == 0
    [report] = [queue for queue in json.loads(out)["queues"] if queue["moved"] or queue["left"]]
    assert report["queue"] == "DeadLetterQueue" and report["moved"] == 1 and report["left"] == 0
    assert report["to"] == {"RecomputeQueue": 1}
    [reason] = report["reasons"]
    assert reason.startswith("recompute_stock: detail.bucket: unknown bucket 'clearance'")
    assert bodies(local_aws, "DeadLetterQueue") == []
    assert [body for body, _ in bodies(local_aws, "RecomputeQueue")] == [change]

    assert deliver(local_aws, "RecomputeQueue", "recompute_stock") == {"batchItemFailures": []}
    assert sku_state(local_aws, SKU)["bucket"] == "clearance"
    assert bodies(local_aws, "DeadLetterQueue") == []
    applied = sku_state(local_aws, SKU)

    code, out = redrive(local_aws, capsys)
    assert (code, out.splitlines()[0].split(": ", 1)[1]) == (0, "moved 0, left 0 (all empty)")
    assert bodies(local_aws, "RecomputeQueue") == [] and sku_state(local_aws, SKU) == applied


def test_each_kind_of_dead_letter_goes_back_to_its_source_or_stays_and_is_reported(
    local_aws: LocalAws, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = local_aws.client("sqs")
    # A push message whose receives ran out: SQS moved it to the push queue's own DLQ, attributes and all.
    push = {
        "retailer_id": SKU,
        "value": 3,
        "version": 2,
        "visibility": "published",
        "computed_at": "2026-11-23T10:00:00Z",
    }
    tag = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    sqs.send_message(
        QueueUrl=url(local_aws, "PushDeadLetterQueue"), MessageBody=json.dumps(push), MessageAttributes=tag
    )
    # An order event the bus could not deliver to the order events queue, and a poll the scheduler could not start.
    order = bus_event("Order Changed", {"order_id": "o-1"}, source="stocksync.orders")
    for body, target in (
        (order, arn(local_aws, "OrderEventsQueue")),
        ({}, "arn:aws:lambda:us-east-1:123456789012:function:poll"),
    ):
        sqs.send_message(
            QueueUrl=url(local_aws, "BusDeadLetterQueue"),
            MessageBody=json.dumps(body),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": "SQSPermissionDenied"},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": "denied"},
                "TARGET_ARN": {"DataType": "String", "StringValue": target},
            },
        )
    # An order the poller read and refused: it came from no queue, so it has nowhere to go back to.
    rejected = {"source": "poll_orders:meta_commerce", "reason": "lines.0.quantity: too big", "body": {"id": "9"}}
    sqs.send_message(QueueUrl=url(local_aws, "DeadLetterQueue"), MessageBody=json.dumps(rejected))

    code, out = redrive(local_aws, capsys)
    assert code == 1  # something stays
    lines = out.splitlines()
    assert lines[0].endswith(" dead-letter queues checked: moved 2, left 2")
    assert "PushDeadLetterQueue: moved 1 (1 to PushQueue), left 0" in lines
    assert "BusDeadLetterQueue: moved 1 (1 to OrderEventsQueue), left 1" in lines
    assert "  2 x SQSPermissionDenied: denied" in lines
    assert any(line.startswith("  left: 1 x its target function:poll is not a queue of the stack") for line in lines)
    assert "DeadLetterQueue: moved 0, left 1" in lines
    assert (
        "  left: 1 x poll_orders:meta_commerce recorded no queue (a part of a message, or a record read from "
        "elsewhere)" in lines
    )

    assert bodies(local_aws, "PushQueue") == [(push, {"trace": {"DataType": "String", "StringValue": "t-1"}})]
    assert [body for body, _ in bodies(local_aws, "OrderEventsQueue")] == [order]
    assert [body for body, _ in bodies(local_aws, "DeadLetterQueue")] == [rejected]  # left, and visible again
    assert len(bodies(local_aws, "BusDeadLetterQueue")) == 1
    assert bodies(local_aws, "PushDeadLetterQueue") == []

    assert cli.main(["redrive", "--stack-name", local_aws.stack_name, "--queue", "PushQueue"]) == 2
    assert "not a dead-letter queue of stack" in capsys.readouterr().err
