"""Bad ids and units through warehouse_events' real entry point on the moto stack: a control character in a retailer
id, or a level past MAX_UNITS (10^40 used to overflow DynamoDB's number and lose the rest of the event without a
reason), dead-letters that entry naming the field; the rest of the event and of the batch applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.backends import get_backend

from stocksync import clock
from stocksync.dal.codec import decode, encode
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import (
    FakeLambdaContext,
    bus_event,
    drain_queue,
    emitted_metrics,
    load_handler,
    object_created,
    sqs_event,
)

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:stocksync-local-WarehouseEventsQueue"


def levels(*entries: tuple[str, int]) -> dict[str, Any]:
    return bus_event(
        "Warehouse Stock Levels",
        {"levels": [{"retailer_id": sku, "level": units, "as_of": T0.isoformat()} for sku, units in entries]},
        source="com.example.warehouse",
    )


def stored_level(local_aws: LocalAws, sku: str) -> Any:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )
    return decode(answer.get("Item", {})).get("warehouse_level")


def test_a_level_for_an_id_with_a_control_character_is_dead_lettered_and_the_rest_applies(
    local_aws: LocalAws, aws_env: Any
) -> None:
    handler = load_handler("warehouse_events")
    event = sqs_event([levels(("SKU-A", 5), ("SKU\x00-B", 4), ("SKU-C", 7)), levels(("SKU-D", 1))], queue_arn=QUEUE_ARN)

    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}

    assert {sku: stored_level(local_aws, sku) for sku in ("SKU-A", "SKU-C", "SKU-D")} == {
        "SKU-A": 5,
        "SKU-C": 7,
        "SKU-D": 1,
    }
    scan = local_aws.client("dynamodb").scan(TableName=local_aws.function_environment()["SKU_TABLE"])
    assert not [item for item in map(decode, scan["Items"]) if "\x00" in item["retailer_id"]]  # no record for it
    (letter,) = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert letter["attributes"]["reason"] == (
        "levels[1].retailer_id: Value error, contains a control character (U+0000 at position 3)"
    )
    assert letter["attributes"]["source"] == "warehouse_events"


def test_a_level_past_the_bound_is_dead_lettered_by_name_and_the_entries_after_it_apply(
    local_aws: LocalAws, aws_env: Any
) -> None:
    handler = load_handler("warehouse_events")
    event = sqs_event([levels(("SKU-A", 5), ("SKU-B", 10**40), ("SKU-C", 7))], queue_arn=QUEUE_ARN)

    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}

    assert {sku: stored_level(local_aws, sku) for sku in ("SKU-A", "SKU-B", "SKU-C")} == {
        "SKU-A": 5,
        "SKU-B": None,
        "SKU-C": 7,
    }
    (letter,) = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert letter["attributes"]["reason"] == "levels[1].level: Input should be less than or equal to 1000000000"


def test_a_sku_listed_twice_in_one_event_is_stored_once_at_its_newest_entry(
    local_aws: LocalAws, aws_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler("warehouse_events")
    newer, older = T0.isoformat(), T0.replace(hour=7).isoformat()
    event = bus_event(
        "Warehouse Stock Levels",
        {
            "levels": [
                {"retailer_id": "SKU-A", "level": 9, "as_of": newer},
                {"retailer_id": "SKU-B", "level": 1, "as_of": newer},
                {"retailer_id": "SKU-A", "level": 3, "as_of": older},  # listed after, but older: set aside
                {"retailer_id": "SKU-B", "level": 2, "as_of": newer},  # the same as_of: the later entry wins
            ]
        },
        source="com.example.warehouse",
    )

    assert handler.lambda_handler(sqs_event([event], queue_arn=QUEUE_ARN), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert {sku: stored_level(local_aws, sku) for sku in ("SKU-A", "SKU-B")} == {"SKU-A": 9, "SKU-B": 2}
    # Reported, not silent: the two entries set aside are counted (and logged as a warning).
    assert emitted_metrics(capsys.readouterr().out)["StockSync/WarehouseLevelsDuplicated service=stocksync"] == [2.0]
    assert drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"]) == []


# ------------------------------------------------------- instants: the future refused by name, the past by its rule
ORDER_EVENTS_ARN = "arn:aws:sqs:us-east-1:123456789012:stocksync-local-OrderEventsQueue"
RECOMPUTE_ARN = "arn:aws:sqs:us-east-1:123456789012:stocksync-local-RecomputeQueue"
Y2099 = "2099-01-01T00:00:00+00:00"


def sku_state(local_aws: LocalAws, sku: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )
    return decode(answer.get("Item", {}))


def dead_letters(local_aws: LocalAws) -> list[str]:
    letters = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    return sorted(letter["attributes"]["reason"] for letter in letters)


def test_a_level_dated_2099_is_dead_lettered_by_name_and_never_freezes_the_sku(
    local_aws: LocalAws, aws_env: Any
) -> None:
    handler = load_handler("warehouse_events")
    future = bus_event(
        "Warehouse Stock Levels",
        {
            "levels": [
                {"retailer_id": "SKU-F1", "level": 5, "as_of": Y2099},
                {"retailer_id": "SKU-F2", "level": 9, "as_of": T0.isoformat()},
            ]
        },
        source="com.example.warehouse",
    )
    real = levels(("SKU-F1", 50))
    assert handler.lambda_handler(sqs_event([future, real], queue_arn=QUEUE_ARN), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert (stored_level(local_aws, "SKU-F1"), stored_level(local_aws, "SKU-F2")) == (50, 9)
    (reason,) = dead_letters(local_aws)
    assert reason.startswith("levels[0].as_of: Value error, lies ")
    assert "in the future (now is " in reason and "at most 5 minutes of clock skew is accepted" in reason


def test_a_level_stored_dated_2099_before_the_bound_gives_way_to_the_next_real_level(
    local_aws: LocalAws, aws_env: Any
) -> None:
    table = local_aws.function_environment()["SKU_TABLE"]
    local_aws.client("dynamodb").put_item(
        TableName=table,
        Item=encode(
            {
                "retailer_id": "SKU-LEGACY",
                "record": "state",
                "warehouse_level": 5,
                "warehouse_as_of_ms": int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000),
            }
        ),
    )
    handler = load_handler("warehouse_events")
    event = sqs_event([levels(("SKU-LEGACY", 50))], queue_arn=QUEUE_ARN)
    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert stored_level(local_aws, "SKU-LEGACY") == 50


def order_changed(order_id: str, sku: str, **fields: Any) -> dict[str, Any]:
    detail = {
        "order_id": order_id,
        "state": "placed",
        "channel": "web",
        "items": [{"retailer_id": sku, "quantity": 2}],
        "occurred_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    return bus_event("Order Changed", detail, source="stocksync.orders")


def test_order_events_refuse_a_future_time_by_name_count_an_open_1999_order_and_refuse_stale_content(
    local_aws: LocalAws, aws_env: Any
) -> None:
    handler = load_handler("order_events")
    long_ago = (datetime.now(UTC) - timedelta(days=120)).isoformat()
    event = sqs_event(
        [
            order_changed("web-future-1", "SKU-O1", occurred_at=Y2099),
            order_changed("web-future-2", "SKU-O1", placed_at=Y2099),
            order_changed("web-1999", "SKU-O2", placed_at="1999-06-01T00:00:00+00:00"),
            order_changed("web-stale", "SKU-O3", occurred_at=long_ago),
        ],
        queue_arn=ORDER_EVENTS_ARN,
    )
    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}

    # The order placed in 1999 and still open holds its units, as any open order does.
    assert sku_state(local_aws, "SKU-O2")["pending_created"] == 2
    assert sku_state(local_aws, "SKU-O1").get("pending_created", 0) == 0
    assert sku_state(local_aws, "SKU-O3").get("pending_created", 0) == 0
    future_occurred, stale, future_placed = dead_letters(local_aws)  # sorted by reason
    assert future_occurred.startswith("occurred_at: Value error, lies ")
    assert future_placed.startswith("placed_at: Value error, lies ")
    assert stale.startswith("occurred_at: order ")
    assert "web-stale: the sighting's content dates from " in stale and "more than 90 days ago" in stale


def test_a_settings_change_dated_2099_is_dead_lettered_by_name(local_aws: LocalAws, aws_env: Any) -> None:
    handler = load_handler("recompute_stock")
    change = bus_event(
        "SKU Settings Changed",
        {"retailer_id": "SKU-S1", "as_of": Y2099, "discontinued": True},
        source="stocksync.settings",
    )
    assert handler.lambda_handler(sqs_event([change], queue_arn=RECOMPUTE_ARN), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    (reason,) = dead_letters(local_aws)
    assert reason.startswith("as_of: Value error, lies ")
    assert sku_state(local_aws, "SKU-S1").get("discontinued") is None


# ------------------------------------------------------- order ids namespaced by source
def test_a_web_shop_order_reusing_a_polled_meta_order_id_counts_as_a_second_order(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.add_product("SKU-N", quantity=500)
    platform.place_order("10001", [("SKU-N", 2)], state="CREATED")
    assert load_handler("poll_orders").lambda_handler({"source": "aws.scheduler"}, FakeLambdaContext())["applied"] == 1
    assert sku_state(local_aws, "SKU-N")["pending_created"] == 2

    def event(order_id: str, channel: str) -> dict[str, Any]:
        return order_changed(order_id, "SKU-N", channel=channel, occurred_at=platform.now().isoformat())

    orders = load_handler("order_events")
    web, instagram = event("10001", "web"), event("10001", "instagram")
    assert orders.lambda_handler(sqs_event([web, instagram], queue_arn=ORDER_EVENTS_ARN), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    # The web shop's order 10001 is a second order (2 + 2); the Instagram one is Meta's own order 10001 again.
    assert sku_state(local_aws, "SKU-N")["pending_created"] == 4
    synced = bus_event(
        "Warehouse Orders Synced",
        {"order_ids": ["events:10001"], "as_of": platform.now().isoformat()},
        source="com.example.warehouse",
    )
    warehouse = load_handler("warehouse_events")
    assert warehouse.lambda_handler(sqs_event([synced], queue_arn=QUEUE_ARN), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert sku_state(local_aws, "SKU-N")["pending_created"] == 2  # the Meta order still counts
    assert dead_letters(local_aws) == []


# ------------------------------------------------------- SKUs the catalog lacks: counted, pushed once, reported once
def deliverable(local_aws: LocalAws, variable: str) -> list[Any]:
    """Every message body of a queue, its delays released first (as time passing would)."""
    account = local_aws.client("sts").get_caller_identity()["Account"]
    url = local_aws.function_environment()[variable]
    for message in get_backend("sqs")[account][local_aws.region].get_queue(url.rsplit("/", 1)[-1])._messages:
        message.delayed_until = 0
    return [message["body"] for message in drain_queue(local_aws.client("sqs"), url)]


def run(function: str, bodies: list[Any]) -> None:
    if bodies:
        answer = load_handler(function).lambda_handler(sqs_event(bodies), FakeLambdaContext())
        assert answer == {"batchItemFailures": []}, function


def test_a_level_for_a_sku_the_catalog_lacks_is_pushed_once_dead_lettered_once_and_resumes_when_the_item_appears(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.add_product("SKU-KNOWN", quantity=0)
    now = platform.now().isoformat()
    level = bus_event(
        "Warehouse Stock Levels",
        {"levels": [{"retailer_id": sku, "level": 20, "as_of": now} for sku in ("GHOST-1", "SKU-KNOWN")]},
        source="com.example.warehouse",
    )
    run("warehouse_events", [level])
    run("recompute_stock", deliverable(local_aws, "RECOMPUTE_QUEUE_URL"))
    run("push_batch", deliverable(local_aws, "PUSH_QUEUE_URL"))
    platform.advance(120)
    run("verify_batch", deliverable(local_aws, "VERIFY_QUEUE_URL"))
    (reason,) = dead_letters(local_aws)
    assert reason.startswith("product_not_found: ") and "GHOST-1" in reason
    assert sku_state(local_aws, "GHOST-1")["not_in_catalog_version"] == 1
    assert sku_state(local_aws, "SKU-KNOWN")["confirmed_value"] == 20

    # Hours of sweeps later (past the confirmation timeout, which re-pushed it every sweep before): no push, no letter.
    for _sweep in range(3):
        platform.advance(3600)
        bucket = sku_state(local_aws, "GHOST-1")["bucket"]
        load_handler("sweep_stock").lambda_handler({"bucket": bucket}, FakeLambdaContext())
        assert deliverable(local_aws, "PUSH_QUEUE_URL") == []
    assert dead_letters(local_aws) == []

    # The merchant adds the item: the audit finds it, unmarks the SKU, and its value goes out.
    platform.add_product("GHOST-1", quantity=0)
    load_handler("audit_catalog").lambda_handler({"dry_run": False}, FakeLambdaContext())
    assert "not_in_catalog_version" not in sku_state(local_aws, "GHOST-1")
    run("recompute_stock", deliverable(local_aws, "RECOMPUTE_QUEUE_URL"))
    (pushed,) = deliverable(local_aws, "PUSH_QUEUE_URL")
    assert (pushed["retailer_id"], pushed["value"]) == ("GHOST-1", 20)


def test_an_order_for_a_sku_nobody_knows_is_counted_but_creates_nothing_to_push(
    local_aws: LocalAws, aws_env: Any
) -> None:
    run("order_events", [order_changed("web-ghost", "NOBODY-1")])
    state = sku_state(local_aws, "NOBODY-1")
    assert state["pending_created"] == 2  # counted: the units are held if the SKU ever gets a level
    assert "bucket" not in state  # in no bucket, so no sweep ever looks at it
    run("recompute_stock", deliverable(local_aws, "RECOMPUTE_QUEUE_URL"))
    assert deliverable(local_aws, "PUSH_QUEUE_URL") == []  # no warehouse level: nothing to publish
    assert dead_letters(local_aws) == []


# ------------------------------------------------------- retailer ids within Meta's 100 characters
def test_a_retailer_id_past_metas_100_characters_is_dead_lettered_naming_the_field_and_the_rest_applies(
    local_aws: LocalAws, aws_env: Any
) -> None:
    long_id = "L" * 101
    run("warehouse_events", [levels(("SKU-LEN", 3), (long_id, 4))])
    run("order_events", [order_changed("web-long", long_id), order_changed("web-short", "SKU-LEN")])
    assert stored_level(local_aws, "SKU-LEN") == 3 and sku_state(local_aws, "SKU-LEN")["pending_created"] == 2
    assert sku_state(local_aws, long_id) == {}
    assert dead_letters(local_aws) == [
        "items.0.retailer_id: String should have at most 100 characters",
        "levels[1].retailer_id: String should have at most 100 characters",
    ]


# ------------------------------------------------------- future times from a snapshot file and from Meta's order API
def test_a_snapshot_line_dated_2099_is_dead_lettered_naming_its_line_and_field(
    local_aws: LocalAws, aws_env: Any
) -> None:
    bucket, key = local_aws.outputs["SnapshotBucketName"], "bounds/levels.csv"
    body = f"retailer_id,level,as_of\nSKU-SNAP-1,5,{Y2099}\nSKU-SNAP-2,6,{T0.isoformat()}\n".encode()
    etag = local_aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    created = object_created(bucket, key, etag, len(body))
    run("load_snapshot", [created])
    assert (stored_level(local_aws, "SKU-SNAP-1"), stored_level(local_aws, "SKU-SNAP-2")) == (None, 6)
    (reason,) = dead_letters(local_aws)
    assert reason.startswith(f"s3://{bucket}/{key} line 2: as_of: Value error, lies ")
    assert "at most 5 minutes of clock skew is accepted" in reason


def test_a_polled_meta_order_dated_ahead_of_the_products_clock_is_dead_lettered_by_name(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.add_product("SKU-M", quantity=50)
    platform.place_order("20001", [("SKU-M", 1)], state="CREATED")
    platform.advance(3600)
    platform.place_order("20002", [("SKU-M", 2)], state="CREATED")
    behind = platform.now() - timedelta(minutes=30)  # the product's clock half an hour behind Meta's
    clock.use(lambda: behind)
    summary = load_handler("poll_orders").lambda_handler({"source": "aws.scheduler"}, FakeLambdaContext())
    assert summary["applied"] == 1
    assert sku_state(local_aws, "SKU-M")["pending_created"] == 1  # order 20001; 20002 lies 30 minutes ahead
    (reason,) = dead_letters(local_aws)
    assert ".created: Value error, lies 30 minutes in the future" in reason


def test_a_settings_change_stored_dated_2099_before_the_bound_gives_way_to_the_next_real_one(
    local_aws: LocalAws, aws_env: Any
) -> None:
    local_aws.client("dynamodb").put_item(
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Item=encode(
            {
                "retailer_id": "SKU-S2",
                "record": "state",
                "discontinued": True,
                "settings_as_of_ms": int(datetime(2099, 1, 1, tzinfo=UTC).timestamp() * 1000),
            }
        ),
    )
    change = bus_event(
        "SKU Settings Changed",
        {"retailer_id": "SKU-S2", "as_of": datetime.now(UTC).isoformat(), "discontinued": False},
        source="stocksync.settings",
    )
    run("recompute_stock", [change])
    assert sku_state(local_aws, "SKU-S2")["discontinued"] is False
    assert dead_letters(local_aws) == []
