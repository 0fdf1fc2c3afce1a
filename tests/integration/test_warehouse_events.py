"""warehouse_events through its real entry point, against the stack deployed in moto server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stocksync.dal.codec import decode, encode
from stocksync.dal.sku_table import SkuTable
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.settings import get_settings
from stocksync.wiring import parts
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, bus_event, drain_queue, load_handler, sqs_event

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:stocksync-local-WarehouseEventsQueue"


def levels(*entries: tuple[str, Any, datetime]) -> dict[str, Any]:
    return bus_event(
        "Warehouse Stock Levels",
        {"levels": [{"retailer_id": sku, "level": units, "as_of": as_of.isoformat()} for sku, units, as_of in entries]},
        source="stocksync.warehouse",
    )


def handle(*bodies: Any) -> dict[str, Any]:
    handler = load_handler("warehouse_events")
    return handler.lambda_handler(sqs_event(list(bodies), queue_arn=QUEUE_ARN), FakeLambdaContext())


def state(local_aws: LocalAws, sku: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )
    return decode(answer.get("Item", {}))


def drained(local_aws: LocalAws, variable: str) -> list[dict[str, Any]]:
    return drain_queue(local_aws.client("sqs"), local_aws.function_environment()[variable])


def test_levels_are_stored_newest_first_and_stale_ones_ignored(local_aws: LocalAws, aws_env: Any) -> None:
    assert handle(levels(("SKU-A", 12, T0), ("SKU-B", 4, T0))) == {"batchItemFailures": []}
    assert (state(local_aws, "SKU-A")["warehouse_level"], state(local_aws, "SKU-B")["warehouse_level"]) == (12, 4)
    assert state(local_aws, "SKU-A")["bucket"] == aws_env["STOCKSYNC_DEFAULT_BUCKET"]
    recompute = drained(local_aws, "RECOMPUTE_QUEUE_URL")
    assert sorted(m["body"]["retailer_id"] for m in recompute) == ["SKU-A", "SKU-B"]
    assert {m["body"]["reason"] for m in recompute} == {"warehouse_events"}

    # A redelivery, an older level and a newer one, in one batch: the redelivery is written again (an equal level;
    # its SKU is recomputed again in case the first try's enqueue was lost), the older one is stale, the newer lands.
    later = T0 + timedelta(minutes=10)
    answer = handle(
        levels(("SKU-A", 12, T0)),
        levels(("SKU-B", 40, T0 - timedelta(hours=1))),
        levels(("SKU-A", 9, later)),
    )
    assert answer == {"batchItemFailures": []}
    a, b = state(local_aws, "SKU-A"), state(local_aws, "SKU-B")
    assert (a["warehouse_level"], a["warehouse_as_of_ms"]) == (9, int(later.timestamp() * 1000))
    assert b["warehouse_level"] == 4
    assert [m["body"]["retailer_id"] for m in drained(local_aws, "RECOMPUTE_QUEUE_URL")] == ["SKU-A", "SKU-A"]
    assert drained(local_aws, "DEAD_LETTER_QUEUE_URL") == []


def test_a_batch_with_bad_records_dead_letters_them_with_reasons_and_retries_only_the_transient_failure(
    local_aws: LocalAws, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SkuTable.put_warehouse_level

    def throttled_for_sku_t(self: SkuTable, level: Any, *, default_bucket: str) -> bool:
        if level.retailer_id == "SKU-T":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem"
            )
        return original(self, level, default_bucket=default_bucket)

    monkeypatch.setattr(SkuTable, "put_warehouse_level", throttled_for_sku_t)
    throttled = levels(("SKU-T", 3, T0))
    answer = handle(
        levels(("SKU-A", 5, T0), ("SKU-B", -1, T0), ("SKU-C", 7, T0)),  # msg-0: one bad entry of three
        bus_event("Warehouse Stock Recounted", {"levels": []}),  # msg-1: unknown detail-type
        "{not json",  # msg-2
        throttled,  # msg-3: a transient failure
        {"detail-type": "Warehouse Stock Levels"},  # msg-4: no detail at all
        levels(("SKU-D", 1, T0)),  # msg-5
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-3"}]}
    assert {sku: state(local_aws, sku).get("warehouse_level") for sku in ("SKU-A", "SKU-B", "SKU-C", "SKU-D")} == {
        "SKU-A": 5,
        "SKU-B": None,
        "SKU-C": 7,
        "SKU-D": 1,
    }
    letters = drained(local_aws, "DEAD_LETTER_QUEUE_URL")
    reasons = sorted(letter["attributes"]["reason"] for letter in letters)
    assert reasons == [
        "body: Invalid JSON: key must be a string at line 1 column 2",
        "detail-type: unknown 'Warehouse Stock Recounted'; "
        "expected 'Warehouse Stock Levels' or 'Warehouse Orders Synced'",
        "detail: Field required",
        "levels[1].level: Input should be greater than or equal to 0",
    ]
    assert {letter["attributes"]["source"] for letter in letters} == {"warehouse_events"}
    entry_letter = next(letter for letter in letters if letter["attributes"]["reason"].startswith("levels[1]"))
    assert entry_letter["body"]["body"]["entry"] == {"retailer_id": "SKU-B", "level": -1, "as_of": T0.isoformat()}

    # SQS redelivers the failed record; once the table answers again, it applies.
    monkeypatch.setattr(SkuTable, "put_warehouse_level", original)
    assert handle(throttled) == {"batchItemFailures": []}
    assert state(local_aws, "SKU-T")["warehouse_level"] == 3


def test_orders_synced_take_their_units_out_of_the_pending_counts(local_aws: LocalAws, aws_env: Any) -> None:
    ingest = parts.order_ingest(get_settings(), now=T0)
    ingest.apply(
        [
            OrderObservation(
                order_id=order_id,
                source=OrderSource.EVENTS,
                state=OrderState.CREATED,
                lines=(OrderLine(retailer_id=sku, quantity=units),),
                observed_at=T0,
            )
            for order_id, sku, units in (("o-1", "SKU-A", 2), ("o-2", "SKU-A", 3), ("o-3", "SKU-B", 1))
        ]
    )
    drained(local_aws, "RECOMPUTE_QUEUE_URL")
    synced = bus_event("Warehouse Orders Synced", {"order_ids": ["o-1", "o-3", "o-404"], "as_of": T0.isoformat()})

    assert handle(synced) == {"batchItemFailures": []}
    assert (state(local_aws, "SKU-A")["pending_created"], state(local_aws, "SKU-B")["pending_created"]) == (3, 0)
    assert sorted(m["body"]["retailer_id"] for m in drained(local_aws, "RECOMPUTE_QUEUE_URL")) == ["SKU-A", "SKU-B"]

    # The notice for o-404 came before the order: when the order shows up, it never counts.
    ingest.apply(
        [
            OrderObservation(
                order_id="o-404",
                source=OrderSource.EVENTS,
                state=OrderState.CREATED,
                lines=(OrderLine(retailer_id="SKU-B", quantity=6),),
                observed_at=T0,
            )
        ]
    )
    assert state(local_aws, "SKU-B")["pending_created"] == 0
    assert handle(synced) == {"batchItemFailures": []}  # a redelivery changes nothing
    assert state(local_aws, "SKU-A")["pending_created"] == 3
