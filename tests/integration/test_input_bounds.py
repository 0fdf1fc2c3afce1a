"""Bad ids and units through warehouse_events' real entry point on the moto stack: a control character in a retailer
id, or a level past MAX_UNITS (10^40 used to overflow DynamoDB's number and lose the rest of the event without a
reason), dead-letters that entry naming the field; the rest of the event and of the batch applies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, bus_event, drain_queue, emitted_metrics, load_handler, sqs_event

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
