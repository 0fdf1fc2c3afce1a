"""Calls answered in process (stocksync_dev.local.in_process, `stocksync replay --in-process`) get what the wire gets.

Each call is made twice against the session's moto server: over HTTP, then with the endpoint routed in process.
The answers must be equal but for what differs between any two calls (request ids, dates, new ids), including
errors, binary and streaming bodies, and the services the stack uses.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stocksync_dev.local import in_process
from stocksync_dev.local.aws import LocalAws

VOLATILE = {"ResponseMetadata", "MessageId", "ReceiptHandle", "MD5OfBody", "SentTimestamp", "Date", "EventId"}


@contextmanager
def routed(local_aws: LocalAws) -> Iterator[None]:
    in_process.route(local_aws.endpoint_url, local_aws._server._server)  # type: ignore[union-attr]
    try:
        yield
    finally:
        in_process.unroute(local_aws.endpoint_url)


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def both_ways(local_aws: LocalAws, call: Callable[[], Any]) -> tuple[Any, Any]:
    """(over the wire, in process): the call's answer, or its ClientError's code, message and status."""

    def outcome() -> Any:
        try:
            return stable(call())
        except ClientError as error:
            return ("error", error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"])

    wire = outcome()
    with routed(local_aws):
        local = outcome()
    return wire, local


@pytest.fixture
def table(local_aws: LocalAws) -> Iterator[Any]:
    client = local_aws.client("dynamodb")
    client.create_table(
        TableName="in-process",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    client.put_item(
        TableName="in-process",
        Item={
            "pk": {"S": "a"},
            "n": {"N": "1.50"},
            "blob": {"B": b"\x00\xffbytes"},
            "tags": {"SS": ["x", "y"]},
            "nested": {"M": {"list": {"L": [{"N": "1"}, {"NULL": True}, {"BOOL": False}, {"S": ""}]}}},
        },
    )
    yield client
    client.delete_table(TableName="in-process")


def test_dynamodb_reads_writes_and_refusals_answer_the_same(local_aws: LocalAws, table: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: table.get_item(TableName="in-process", Key={"pk": {"S": "a"}}),
        lambda: table.update_item(
            TableName="in-process",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET seen = :yes",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
            ReturnValues="ALL_NEW",
        ),
        lambda: table.update_item(
            TableName="in-process",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":n": {"N": "2"}},
        ),
        lambda: table.batch_get_item(RequestItems={"in-process": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "z"}}]}}),
        lambda: table.scan(TableName="in-process"),
        lambda: table.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}}),
        lambda: table.describe_table(TableName="in-process")["Table"]["KeySchema"],
    ]
    for call in calls:
        wire, local = both_ways(local_aws, call)
        assert wire == local


def test_sqs_send_receive_attributes_and_errors_answer_the_same(local_aws: LocalAws) -> None:
    client = local_aws.client("sqs")
    url = client.create_queue(QueueName="in-process-queue")["QueueUrl"]
    try:

        def round_trip() -> Any:
            client.send_message(
                QueueUrl=url,
                MessageBody='{"retailer_id": "SKU-1"}',
                MessageAttributes={"reason": {"DataType": "String", "StringValue": "because"}},
            )
            received = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
            )
            for message in received["Messages"]:
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return received

        for call in (
            round_trip,
            lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]),
            lambda: client.delete_message(QueueUrl=url, ReceiptHandle="x" * 185),
            lambda: client.get_queue_url(QueueName="no-such-queue"),
        ):
            wire, local = both_ways(local_aws, call)
            assert wire == local
    finally:
        client.delete_queue(QueueUrl=url)


def test_s3_bodies_and_the_stacks_other_services_answer_the_same(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="in-process-bucket")
    body = bytes(range(256)) * 300  # binary, past one read's size
    try:
        calls: list[Callable[[], Any]] = [
            lambda: s3.put_object(Bucket="in-process-bucket", Key="k", Body=body)["ETag"],
            lambda: s3.get_object(Bucket="in-process-bucket", Key="k")["Body"].read() == body,
            lambda: {
                k: v for k, v in s3.head_object(Bucket="in-process-bucket", Key="k").items() if k != "LastModified"
            },
            lambda: s3.get_object(Bucket="in-process-bucket", Key="missing"),
            lambda: local_aws.client("sts").get_caller_identity(),
            lambda: local_aws.client("events").put_events(  # moto fails on a rule of the default bus: the same 500
                Entries=[{"EventBusName": "default", "Source": "t", "DetailType": "d", "Detail": "{}"}]
            ),
            lambda: local_aws.client("secretsmanager").get_secret_value(SecretId="no-such-secret"),
        ]
        for call in calls:
            wire, local = both_ways(local_aws, call)
            assert wire == local
    finally:
        s3.delete_object(Bucket="in-process-bucket", Key="k")
        s3.delete_bucket(Bucket="in-process-bucket")


def test_a_routed_endpoint_opens_no_socket_and_others_still_do(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real_connect = socket.socket.connect

    def counting_connect(sock: socket.socket, address: Any) -> Any:
        opened.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    sqs = local_aws.client("sqs")
    with routed(local_aws):
        sqs.list_queues()
        local_aws.client("sts").get_caller_identity()
    assert opened == []
    sqs.list_queues()  # unrouted again: over the wire
    assert opened
