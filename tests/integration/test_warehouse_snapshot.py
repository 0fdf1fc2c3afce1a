"""load_snapshot through its real entry point, and the S3 reader, against the stack deployed in moto server."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.dal.codec import decode
from stocksync.dal.snapshot_source import S3SnapshotSource
from stocksync.logic.snapshot_load import SnapshotChangedError, SnapshotPosition
from stocksync.models.inventory import WarehouseLevel
from stocksync.models.settings import get_settings
from stocksync.wiring import parts
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, drain_queue, load_handler, object_created, sqs_event

T0 = datetime(2026, 11, 23, 3, tzinfo=UTC)


class CountdownContext(FakeLambdaContext):
    """A Lambda context whose remaining time runs out after ``checks`` questions (one per line read)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks_left = checks

    def get_remaining_time_in_millis(self) -> int:
        self.checks_left -= 1
        return 60_000 if self.checks_left >= 0 else 5_000


@pytest.fixture
def bucket(local_aws: LocalAws, aws_env: Any) -> str:
    name = local_aws.outputs["SnapshotBucketName"]
    s3 = local_aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    return name


@pytest.fixture
def snapshot_queue(local_aws: LocalAws, aws_env: Any) -> tuple[str, str]:
    """(url, arn) of the snapshot queue."""
    url = local_aws.outputs["SnapshotQueueUrl"]
    arn = local_aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def put(local_aws: LocalAws, bucket: str, key: str, body: bytes) -> str:
    """Store the object; return its ETag as S3's event reports it (without quotes)."""
    return local_aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')


def csv_lines(count: int, *, bad: Iterable[int] = ()) -> list[str]:
    rows = ["retailer_id,level,as_of"]
    for index in range(count):
        level = -1 if index in set(bad) else index % 50
        rows.append(f"SKU-{index:05d},{level},{T0.isoformat()}")
    return rows


def warehouse_levels(local_aws: LocalAws) -> dict[str, int]:
    table = local_aws.function_environment()["SKU_TABLE"]
    items = local_aws.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return {
        item["retailer_id"]: item["warehouse_level"]
        for page in items
        for item in map(decode, page["Items"])
        if "warehouse_level" in item
    }


def test_a_snapshot_loads_across_a_forced_hand_over_with_bad_lines_dead_lettered(
    local_aws: LocalAws, bucket: str, snapshot_queue: tuple[str, str]
) -> None:
    queue_url, queue_arn = snapshot_queue
    sqs = local_aws.client("sqs")
    newer = WarehouseLevel(retailer_id="SKU-00007", level=99, as_of=T0 + timedelta(hours=1))
    parts.sku_table(get_settings()).put_warehouse_level(newer, default_bucket="medium")
    body = ("\n".join(csv_lines(120, bad={60, 100})) + "\n").encode()
    etag = put(local_aws, bucket, "daily/levels.csv", body)
    handler = load_handler("load_snapshot")

    # First invocation: its time runs out after 50 lines, so it hands over through the snapshot queue.
    start = sqs_event([object_created(bucket, "daily/levels.csv", etag, len(body))], queue_arn=queue_arn)
    assert handler.lambda_handler(start, CountdownContext(checks=50)) == {"batchItemFailures": []}
    (continuation,) = drain_queue(sqs, queue_url)
    position = SnapshotPosition.model_validate(continuation["body"])
    assert (position.line, position.etag, position.format) == (51, etag, "csv")
    assert body[position.offset :].startswith(b"SKU-00050,")
    assert len(warehouse_levels(local_aws)) == 50  # 49 loaded + the newer SKU-00007 kept

    # Second invocation: the continuation finishes the load; nothing is queued after it.
    resumed = sqs_event([continuation["body"]], queue_arn=queue_arn)
    assert handler.lambda_handler(resumed, CountdownContext(checks=10_000)) == {"batchItemFailures": []}
    assert drain_queue(sqs, queue_url) == []

    levels = warehouse_levels(local_aws)
    assert len(levels) == 118  # every good line once, none lost at the seam
    assert levels["SKU-00007"] == 99  # the snapshot's older level did not overwrite the newer one
    assert levels["SKU-00119"] == 119 % 50 and "SKU-00060" not in levels
    letters = drain_queue(sqs, local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert {letter["attributes"]["reason"] for letter in letters} == {
        f"s3://{bucket}/daily/levels.csv line 62: level: Input should be greater than or equal to 0",
        f"s3://{bucket}/daily/levels.csv line 102: level: Input should be greater than or equal to 0",
    }
    assert {letter["attributes"]["source"] for letter in letters} == {"load_snapshot"}
    recompute = drain_queue(sqs, local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    recomputed = [message["body"]["retailer_id"] for message in recompute]
    assert len(recomputed) == len(set(recomputed)) == 117 and "SKU-00007" not in recomputed


def test_a_json_lines_snapshot_replaced_mid_load_stops_the_old_load(
    local_aws: LocalAws, bucket: str, snapshot_queue: tuple[str, str]
) -> None:
    queue_url, queue_arn = snapshot_queue
    rows = [{"retailer_id": f"J-{index}", "level": index, "as_of": T0.isoformat()} for index in range(20)]
    body = "\n".join(json.dumps(row) for row in rows).encode()
    etag = put(local_aws, bucket, "levels.jsonl", body)
    handler = load_handler("load_snapshot")
    start = sqs_event([object_created(bucket, "levels.jsonl", etag, len(body))], queue_arn=queue_arn)
    handler.lambda_handler(start, CountdownContext(checks=5))
    (continuation,) = drain_queue(local_aws.client("sqs"), queue_url)
    assert len(warehouse_levels(local_aws)) == 6

    put(local_aws, bucket, "levels.jsonl", b'{"retailer_id": "J-0", "level": 1, "as_of": "2026-11-24T00:00:00Z"}\n')
    resumed = sqs_event([continuation["body"]], queue_arn=queue_arn)
    assert handler.lambda_handler(resumed, CountdownContext(checks=100)) == {"batchItemFailures": []}
    assert len(warehouse_levels(local_aws)) == 6  # nothing of the old object's rest, and no dead letter either
    assert drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"]) == []


def test_the_reader_fetches_ranged_chunks_and_resumes_mid_object(local_aws: LocalAws, bucket: str) -> None:
    body = ("\n".join(csv_lines(40)) + "\n").encode()
    etag = put(local_aws, bucket, "chunked.csv", body)
    source = S3SnapshotSource(local_aws.client("s3"), chunk_bytes=64)
    position = SnapshotPosition(bucket=bucket, key="chunked.csv", etag=etag)

    lines = list(source.lines(position))
    assert [line.data for line in lines] == body.rstrip(b"\n").split(b"\n")
    assert source.requests == -(-len(body) // 64)  # one ranged GET per chunk, no more
    middle = lines[17]
    rest = list(source.lines(position.model_copy(update={"offset": middle.start})))
    assert [line.data for line in rest] == [line.data for line in lines[17:]]
    assert rest[0].start == middle.start and rest[-1].end == len(body)

    exact = S3SnapshotSource(local_aws.client("s3"), chunk_bytes=len(body))  # the object fills the chunk exactly
    assert len(list(exact.lines(position))) == 41 and exact.requests == 1

    put(local_aws, bucket, "empty.csv", b"")
    empty = SnapshotPosition(bucket=bucket, key="empty.csv", etag=put(local_aws, bucket, "empty.csv", b""))
    assert list(source.lines(empty)) == []

    put(local_aws, bucket, "chunked.csv", body + b"SKU-NEW,1,2026-11-23T03:00:00Z\n")
    with pytest.raises(SnapshotChangedError):
        list(source.lines(position))
    local_aws.client("s3").delete_object(Bucket=bucket, Key="chunked.csv")
    with pytest.raises(SnapshotChangedError):
        list(source.lines(position))


def test_an_object_put_in_the_bucket_reaches_the_snapshot_queue(
    local_aws: LocalAws, bucket: str, snapshot_queue: tuple[str, str]
) -> None:
    """The template's rule routes S3's event to the snapshot queue. moto's CloudFormation does not apply a bucket's
    NotificationConfiguration, so the test turns EventBridge notifications on the way the template does."""
    s3 = local_aws.client("s3")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    put(local_aws, bucket, "daily/2026-11-23.csv", b"retailer_id,level,as_of\n")
    (message,) = drain_queue(local_aws.client("sqs"), snapshot_queue[0])
    assert message["body"]["detail-type"] == "Object Created"
    assert message["body"]["detail"]["bucket"]["name"] == bucket
    assert message["body"]["detail"]["object"]["key"] == "daily/2026-11-23.csv"
