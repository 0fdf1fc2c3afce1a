"""The total order of warehouse levels on DynamoDB itself (moto server): ``as_of``, then the sender's ``sequence``,
then arrival; and a retry after a crash between the level write and the recompute enqueue enqueues again.

The rule lives in a DynamoDB condition expression, so it is proven against the table, not against a fake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from stocksync.dal.codec import decode, encode
from stocksync.dal.sku_table import SkuTable
from stocksync.integrations.warehouse_outputs import WarehouseSinks
from stocksync.models.inventory import MAX_SEQUENCE, WarehouseLevel
from stocksync.models.settings import get_settings
from stocksync.wiring import parts
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, bus_event, drain_queue, load_handler, sqs_event

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:stocksync-local-WarehouseEventsQueue"
SKU = "SKU-ORDER"


def level(units: int, as_of: datetime = T0, sequence: int | None = None) -> WarehouseLevel:
    return WarehouseLevel(retailer_id=SKU, level=units, as_of=as_of, sequence=sequence)


def table() -> SkuTable:
    return parts.sku_table(get_settings())


def stored(local_aws: LocalAws) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": SKU, "record": "state"})
    )
    return decode(answer.get("Item", {}))


LATER = T0 + timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("levels", "written", "final"),
    [
        # Equal as_of, no sequence: the later arrival wins (steps happen in order).
        ([level(10), level(8), level(6)], [True, True, True], 6),
        # Equal as_of, the sender's sequence decides, whatever the arrival order.
        ([level(10, sequence=2), level(8, sequence=1)], [True, False], 10),
        ([level(10, sequence=1), level(8, sequence=2)], [True, True], 8),
        # Equal as_of and equal sequence: arrival again.
        ([level(10, sequence=5), level(8, sequence=5)], [True, True], 8),
        # An absent sequence counts as 0: below any given one, equal to 0.
        ([level(10, sequence=1), level(8)], [True, False], 10),
        ([level(10), level(8, sequence=0)], [True, True], 8),
        ([level(10, sequence=0), level(8)], [True, True], 8),
        # as_of comes first: a later millisecond wins over any sequence, an earlier one never does.
        ([level(10, sequence=MAX_SEQUENCE), level(8, LATER)], [True, True], 8),
        ([level(10, LATER), level(8, T0, sequence=MAX_SEQUENCE)], [True, False], 10),
        # After a later as_of the stored sequence is the new level's (0 here), not the previous one's.
        ([level(10, sequence=7), level(8, LATER), level(6, LATER)], [True, True, True], 6),
        # The largest sequence is held and compared exactly (no float rounding in DynamoDB).
        ([level(10, sequence=MAX_SEQUENCE), level(8, sequence=MAX_SEQUENCE - 1)], [True, False], 10),
        ([level(10, sequence=MAX_SEQUENCE - 1), level(8, sequence=MAX_SEQUENCE)], [True, True], 8),
    ],
    ids=[
        "equal-as_of-later-arrival-wins",
        "greater-sequence-first-stays",
        "greater-sequence-later-wins",
        "equal-sequence-later-arrival-wins",
        "absent-below-given",
        "zero-equals-absent",
        "absent-equals-zero",
        "later-as_of-beats-sequence",
        "earlier-as_of-never-wins",
        "sequence-resets-with-as_of",
        "max-sequence-exact-stale",
        "max-sequence-exact-wins",
    ],
)
def test_levels_follow_as_of_then_sequence_then_arrival(
    local_aws: LocalAws, aws_env: Any, levels: list[WarehouseLevel], written: list[bool], final: int
) -> None:
    skus = table()
    assert [skus.put_warehouse_level(entry, default_bucket="medium") for entry in levels] == written
    assert stored(local_aws)["warehouse_level"] == final


def test_a_repeat_of_the_stored_level_reports_stored_so_its_sku_is_recomputed_again(
    local_aws: LocalAws, aws_env: Any
) -> None:
    skus = table()
    assert skus.put_warehouse_level(level(10, sequence=3), default_bucket="medium")
    assert skus.put_warehouse_level(level(10, sequence=3), default_bucket="medium")
    assert (stored(local_aws)["warehouse_level"], stored(local_aws)["warehouse_sequence"]) == (10, 3)


def test_a_record_written_before_sequences_existed_counts_as_sequence_0(local_aws: LocalAws, aws_env: Any) -> None:
    local_aws.client("dynamodb").put_item(
        TableName=aws_env["SKU_TABLE"],
        Item=encode(
            {
                "retailer_id": SKU,
                "record": "state",
                "warehouse_level": 10,
                "warehouse_as_of_ms": int(T0.timestamp() * 1000),
                "bucket": "fast",
            }
        ),
    )
    skus = table()
    assert skus.put_warehouse_level(level(8), default_bucket="medium")  # equal: the later arrival
    assert skus.put_warehouse_level(level(6, sequence=1), default_bucket="medium")
    assert not skus.put_warehouse_level(level(4), default_bucket="medium")  # 0 < 1
    record = stored(local_aws)
    assert (record["warehouse_level"], record["warehouse_sequence"], record["bucket"]) == (6, 1, "fast")


def levels_event(units: int, sequence: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"retailer_id": SKU, "level": units, "as_of": T0.isoformat()}
    if sequence is not None:
        entry["sequence"] = sequence
    return bus_event("Warehouse Stock Levels", {"levels": [entry]}, source="stocksync.warehouse")


def handle(*bodies: Any) -> dict[str, Any]:
    handler = load_handler("warehouse_events")
    return handler.lambda_handler(sqs_event(list(bodies), queue_arn=QUEUE_ARN), FakeLambdaContext())


def recompute_requests(local_aws: LocalAws) -> list[str]:
    queue = local_aws.function_environment()["RECOMPUTE_QUEUE_URL"]
    return [message["body"]["retailer_id"] for message in drain_queue(local_aws.client("sqs"), queue)]


def test_a_retry_after_a_crash_between_the_write_and_the_enqueue_enqueues_the_sku_again(
    local_aws: LocalAws, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try stores the level and dies before its recompute request leaves; SQS redelivers the message,
    and the retry, finding its own level stored, must still send the SKU to be recomputed."""

    def crash(self: WarehouseSinks, retailer_ids: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "lost"}}, "SendMessageBatch")

    event = levels_event(7, sequence=1)
    with monkeypatch.context() as patched:
        patched.setattr(WarehouseSinks, "enqueue_recompute", crash)
        with pytest.raises(BatchProcessingError):  # every record failed: Lambda fails and SQS redelivers
            handle(event)
    assert stored(local_aws)["warehouse_level"] == 7
    assert recompute_requests(local_aws) == []

    assert handle(event) == {"batchItemFailures": []}
    assert recompute_requests(local_aws) == [SKU]
    assert stored(local_aws)["warehouse_level"] == 7


def test_a_redelivered_older_level_of_the_same_millisecond_reapplies_without_a_sequence_and_not_with_one(
    local_aws: LocalAws, aws_env: Any
) -> None:
    """The documented price of "arrival wins a tie": a sender who cares gives a sequence."""
    first, second = levels_event(10), levels_event(8)
    handle(first, second)
    handle(first)  # redelivery of the older event
    assert stored(local_aws)["warehouse_level"] == 10

    first, second = levels_event(10, sequence=1), levels_event(8, sequence=2)
    handle(first, second)
    handle(first)
    assert stored(local_aws)["warehouse_level"] == 8
    assert recompute_requests(local_aws) == [SKU] * 5  # every write but the stale redelivery asked for a recompute
