"""The SQS receive and delete speed-ups a large replay needs (issue 12) keep what moto answers.

moto's ReceiveMessage counted the whole queue for every message it handed out (the retention check went through
``get_queue_attributes``), and DeleteMessage tested every message against every receipt handle it ever had; both
made draining a deep queue quadratic. These tests hold the answers: what is received, what stays in flight or
delayed, what a delete with a current, an old, a repeated or an unknown handle does, and that an expired message is
not handed out. DynamoDB items are serialized directly instead of through moto's shape walk: the answers are the
walk's for every kind of attribute value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.backends import get_backend
from moto.sqs.models import Queue

from stocksync_dev.local import moto_speedups
from stocksync_dev.local.aws import LocalAws


@pytest.fixture
def queue(local_aws: LocalAws) -> Iterator[tuple[Any, str]]:
    client = local_aws.client("sqs")
    url = client.create_queue(QueueName="replay-scale-speedup")["QueueUrl"]
    yield client, url
    client.delete_queue(QueueUrl=url)


def send(client: Any, url: str, count: int, *, delay: int = 0) -> None:
    for start in range(0, count, 10):
        entries = [
            {"Id": str(n), "MessageBody": f"m{n}", "DelaySeconds": delay} for n in range(start, min(count, start + 10))
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)


def counts(client: Any, url: str) -> dict[str, str]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]


def moto_queue(local_aws: LocalAws, url: str) -> Queue:
    account = local_aws.client("sts").get_caller_identity()["Account"]
    backend = get_backend("sqs")[account][local_aws.region]
    return backend.queues[url.rsplit("/", 1)[-1]]


def test_receive_hands_out_visible_undelayed_messages_in_order_and_counts_stay_right(queue: tuple[Any, str]) -> None:
    client, url = queue
    send(client, url, 25)
    send(client, url, 3, delay=600)
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
    second = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
    assert [message["Body"] for message in first + second] == [f"m{n}" for n in range(20)]
    assert counts(client, url) == {
        "ApproximateNumberOfMessages": "5",
        "ApproximateNumberOfMessagesNotVisible": "20",
        "ApproximateNumberOfMessagesDelayed": "3",
    }
    rest = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in rest] == [f"m{n}" for n in range(20, 25)]  # not the delayed three


def test_receive_does_not_count_the_queue(
    queue: tuple[Any, str], local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retention check reads the period, so receiving no longer builds the counted attributes per message."""
    client, url = queue
    send(client, url, 30)
    built: list[int] = []
    real_attributes = Queue.attributes

    def recording(self: Queue) -> Any:
        built.append(len(self._messages))
        return real_attributes.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "attributes", property(recording))
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    assert built == []
    assert moto_queue(local_aws, url).message_retention_period == 86400 * 4  # what moto's check read, via attributes


def test_an_expired_message_is_not_handed_out(queue: tuple[Any, str], local_aws: LocalAws) -> None:
    client, url = queue
    client.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    send(client, url, 1)
    for message in moto_queue(local_aws, url)._messages:
        message.sent_timestamp -= 120_000  # sent two minutes ago: past the period
    assert client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def test_delete_by_current_old_repeated_and_unknown_handle(queue: tuple[Any, str]) -> None:
    client, url = queue
    send(client, url, 5)
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=0)["Messages"]
    again = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=300)["Messages"]
    assert [m["Body"] for m in received] == [m["Body"] for m in again]  # the same three, each with a new handle
    client.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])  # current handle
    client.delete_message(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"])  # an older handle still works
    client.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])  # repeated: accepted, no change
    client.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])  # old handle of a deleted one
    with pytest.raises(ClientError) as caught:
        client.delete_message(QueueUrl=url, ReceiptHandle="x" * 185)
    assert caught.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    assert counts(client, url) == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "0",
    }
    left = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in left] == ["m3", "m4"]


def test_a_batch_delete_reports_each_handle(queue: tuple[Any, str]) -> None:
    client, url = queue
    send(client, url, 3)
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]
    entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)]
    entries.append({"Id": "bad", "ReceiptHandle": "y" * 185})
    answer = client.delete_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(entry["Id"] for entry in answer["Successful"]) == ["0", "1", "2"]
    assert [(entry["Id"], entry["Code"]) for entry in answer["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    assert counts(client, url)["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_draining_a_deep_queue_stays_linear(queue: tuple[Any, str], local_aws: LocalAws) -> None:
    """2,000 messages received ten at a time and deleted: every message out exactly once, the queue empty."""
    client, url = queue
    send(client, url, 2000)
    bodies: list[str] = []
    while True:
        batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        bodies.extend(message["Body"] for message in batch)
        client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
        )
    assert sorted(bodies) == sorted(f"m{n}" for n in range(2000))
    assert moto_queue(local_aws, url)._messages == []


@pytest.fixture
def item_table(local_aws: LocalAws) -> Iterator[Any]:
    client = local_aws.client("dynamodb")
    client.create_table(
        TableName="replay-scale-items",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    yield client
    client.delete_table(TableName="replay-scale-items")


EVERY_KIND = {
    "pk": {"S": "a"},
    "empty": {"S": ""},
    "n": {"N": "-12.50"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "names": {"SS": ["x", "y"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blob": {"B": b"\x00\xffbinary"},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "map": {"M": {"s": {"S": "v"}, "deep": {"M": {"l": {"L": [{"N": "1"}, {"NULL": True}]}}}, "none": {"M": {}}}},
    "list": {"L": [{"S": "x"}, {"M": {"b": {"BOOL": False}}}, {"L": []}, {"SS": ["z"]}]},
    "mixed": {"M": {"bytes": {"B": b"\x07"}, "s": {"S": "x"}}},  # a B inside: the walk serializes the whole map
}


def test_item_answers_are_the_walks_for_every_kind_of_attribute_value(
    item_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_table.put_item(TableName="replay-scale-items", Item=EVERY_KIND)
    reads = [
        lambda: item_table.get_item(TableName="replay-scale-items", Key={"pk": {"S": "a"}}),
        lambda: item_table.update_item(
            TableName="replay-scale-items",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "-12.50"}},
            ReturnValues="ALL_NEW",
        ),
        lambda: item_table.batch_get_item(RequestItems={"replay-scale-items": {"Keys": [{"pk": {"S": "a"}}]}}),
        lambda: item_table.scan(TableName="replay-scale-items"),
    ]
    direct = [strip(read()) for read in reads]
    monkeypatch.setattr(moto_speedups, "attribute_value", lambda value: None)  # every value through moto's walk
    walked = [strip(read()) for read in reads]
    assert direct == walked
    assert direct[0]["Item"] == EVERY_KIND


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


@pytest.mark.parametrize(
    "value",
    [
        {"S": "x"},
        {"N": "1"},
        {"BOOL": False},
        {"NULL": True},
        {"SS": ["a"]},
        {"M": {"a": {"L": [{"S": ""}, {"NS": ["3"]}]}}},
        {"L": []},
        {"M": {}},
    ],
)
def test_the_direct_values_are_written_as_given(value: dict[str, Any]) -> None:
    assert moto_speedups.attribute_value(value) == value


@pytest.mark.parametrize(
    "value",
    [{"B": "AAE="}, {"BS": ["AAE="]}, {"S": 1}, {"N": 1}, {"S": "x", "N": "1"}, {}, {"M": {"a": {"B": "AAE="}}}, "x"],
)
def test_anything_else_is_left_to_motos_walk(value: Any) -> None:
    assert moto_speedups.attribute_value(value) is None


def test_the_module_listing_is_the_folders_listing(local_aws: LocalAws) -> None:
    """moto's server asks for its module folders at every request; the listing is read once and stays the same."""
    import os

    import moto
    from moto import backends

    folder = os.path.dirname(moto.__file__)
    on_disk = sorted(
        name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name)) and not name.startswith("__")
    )
    assert list(backends.list_of_moto_modules()) == on_disk
    assert "dynamodb" in backends.list_of_moto_modules() and "sqs" in backends.list_of_moto_modules()
    assert local_aws.client("sts").get_caller_identity()["Account"]


def test_a_message_moved_to_its_dead_letter_queue_is_deleted_there_not_where_it_was(local_aws: LocalAws) -> None:
    client = local_aws.client("sqs")
    dlq = client.create_queue(QueueName="replay-scale-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = client.create_queue(
        QueueName="replay-scale-source",
        Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "1"}}'},
    )["QueueUrl"]
    try:
        client.send_message(QueueUrl=source, MessageBody="poison")
        first = client.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"][0]
        assert client.receive_message(QueueUrl=source, VisibilityTimeout=0).get("Messages", []) == []  # moved
        with pytest.raises(ClientError) as caught:
            client.delete_message(QueueUrl=source, ReceiptHandle=first["ReceiptHandle"])
        assert caught.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
        dead = client.receive_message(QueueUrl=dlq)["Messages"][0]
        assert dead["Body"] == "poison"
        client.delete_message(QueueUrl=dlq, ReceiptHandle=first["ReceiptHandle"])  # an old handle of the message
        assert counts(client, dlq)["ApproximateNumberOfMessagesNotVisible"] == "0"
    finally:
        client.delete_queue(QueueUrl=source)
        client.delete_queue(QueueUrl=dlq)


def test_a_fifo_queue_still_holds_back_a_group_in_flight(local_aws: LocalAws) -> None:
    """A receive skips the pending groups' walk only for a standard queue: a FIFO group in flight stays blocked."""
    client = local_aws.client("sqs")
    url = client.create_queue(
        QueueName="replay-scale-groups.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    try:
        for body, group in (("g1", "g"), ("g2", "g"), ("h1", "h")):
            client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
        first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)["Messages"]
        second = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)["Messages"]
        assert [m["Body"] for m in first] == ["g1"]
        assert [m["Body"] for m in second] == ["h1"]  # g2 waits while g1 is in flight
    finally:
        client.delete_queue(QueueUrl=url)


def test_receipt_handles_are_185_lowercase_letters_and_long_polls_still_wait(queue: tuple[Any, str]) -> None:
    import time

    client, url = queue
    send(client, url, 3)
    handles = [m["ReceiptHandle"] for m in client.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]]
    assert len(set(handles)) == 3
    assert all(len(handle) == 185 and handle.isalpha() and handle.islower() for handle in handles)
    started = time.monotonic()
    assert client.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []  # all three in flight
    assert time.monotonic() - started >= 0.9
