"""Reconciliation through the scheduled function and the CLI, against the stack deployed in moto server."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.settings import get_settings
from stocksync.wiring import parts
from stocksync_dev.cli import reconcile as reconcile_command
from stocksync_dev.local.aws import LocalAws
from tests.support import FakeLambdaContext, drain_queue, load_handler

# Orders changed two hours ago: well outside the settle time of a run starting now.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def sighting(order_id: str, state: OrderState, *lines: tuple[str, int], synced: bool = False) -> OrderObservation:
    return OrderObservation(
        order_id=order_id,
        source=OrderSource.META_COMMERCE,
        state=state,
        lines=tuple(OrderLine(retailer_id=sku, quantity=units) for sku, units in lines),
        synced=synced,
        observed_at=T0,
    )


@pytest.fixture
def orders(aws_env: Any) -> None:
    """Orders in every state, one of them split over two ledger rows, ingested the way the pollers do."""
    many_lines = [(f"SKU-M{index:02d}", 1) for index in range(60)]  # more SKUs than one transaction holds
    receipt = parts.order_ingest(get_settings(), now=T0).apply(
        [
            sighting("o-1", OrderState.FB_PROCESSING, ("SKU-A", 2), ("SKU-B", 1)),
            sighting("o-2", OrderState.CREATED, ("SKU-A", 3)),
            sighting("o-3", OrderState.IN_PROGRESS, ("SKU-B", 4)),
            sighting("o-4", OrderState.CREATED, ("SKU-C", 5)),
            sighting("o-5", OrderState.COMPLETED, ("SKU-C", 1)),
            sighting("o-6", OrderState.CREATED, *many_lines),
        ]
    )
    assert not receipt.rejected
    parts.order_ingest(get_settings(), now=T0).apply([sighting("o-4", OrderState.CREATED, synced=True)])


def run_function(dry_run: bool = False) -> dict[str, Any]:
    handler = load_handler("reconcile")
    return handler.lambda_handler({"dry_run": dry_run, "scheduled_time": "2026-11-23T03:30:00Z"}, FakeLambdaContext())


def sku_state(local_aws: LocalAws, sku: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
    )
    return decode(answer["Item"])


def corrupt(local_aws: LocalAws, sku: str, counter: str, value: int) -> None:
    """A fault from outside the ledger: a manual edit, a bug, a restore."""
    local_aws.client("dynamodb").update_item(
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Key=encode({"retailer_id": sku, "record": "state"}),
        UpdateExpression="SET #counter = :value",
        ExpressionAttributeNames={"#counter": counter},
        ExpressionAttributeValues=encode({":value": value}),
    )


def test_with_no_fault_injected_nothing_is_repaired(local_aws: LocalAws, orders: None) -> None:
    summary = run_function()
    assert summary["repairs"] == [] and summary["skipped_moved"] == [] and summary["skipped_recent"] == []
    assert summary["skus_checked"] == 62  # SKU-A, SKU-B and the split order's 60 SKUs
    assert summary["open_rows"] == 5  # o-1, o-2, o-3 and o-6's two parts


def test_a_corrupted_counter_is_repaired_exactly_once_and_logged(
    local_aws: LocalAws, orders: None, caplog: pytest.LogCaptureFixture
) -> None:
    drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    corrupt(local_aws, "SKU-M07", "pending_created", 4)

    with caplog.at_level(logging.WARNING):
        summary = run_function()

    assert summary["repairs"] == [{"retailer_id": "SKU-M07", "counter": "pending_created", "was": 4, "now": 1}]
    assert sku_state(local_aws, "SKU-M07")["pending_created"] == 1
    logged = [record for record in caplog.records if record.getMessage() == "counter repaired"]
    assert [(r.retailer_id, r.counter, r.was, r.now) for r in logged] == [("SKU-M07", "pending_created", 4, 1)]  # type: ignore[attr-defined]
    recompute = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    assert [message["body"] for message in recompute] == [{"retailer_id": "SKU-M07", "reason": "reconciliation"}]

    assert run_function()["repairs"] == []  # and it stays repaired


def test_counters_of_a_sku_without_open_orders_are_found_by_the_scan(local_aws: LocalAws, orders: None) -> None:
    corrupt(local_aws, "SKU-C", "acknowledged_unsynced", 2)  # SKU-C's orders are synced or completed
    local_aws.client("dynamodb").put_item(  # a SKU the ledger never heard of
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Item=encode({"retailer_id": "SKU-Z", "record": "state", "pending_processing": 3, "warehouse_level": 10}),
    )
    summary = run_function()
    assert sorted((r["retailer_id"], r["counter"], r["was"], r["now"]) for r in summary["repairs"]) == [
        ("SKU-C", "acknowledged_unsynced", 2, 0),
        ("SKU-Z", "pending_processing", 3, 0),
    ]
    assert sku_state(local_aws, "SKU-Z")["pending_processing"] == 0
    assert sku_state(local_aws, "SKU-Z")["warehouse_level"] == 10  # nothing but the counters is touched


def test_the_command_reports_in_a_dry_run_and_repairs_without_one(
    local_aws: LocalAws, orders: None, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt(local_aws, "SKU-A", "pending_processing", 0)

    assert reconcile_command.main(["--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "would repair 1 counters" in out and "SKU-A pending_processing: 0 -> 2" in out
    assert sku_state(local_aws, "SKU-A")["pending_processing"] == 0

    assert reconcile_command.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["repairs"] == [{"retailer_id": "SKU-A", "counter": "pending_processing", "was": 0, "now": 2}]
    assert sku_state(local_aws, "SKU-A")["pending_processing"] == 2
    assert reconcile_command.main([]) == 0
    assert "repaired 0 counters" in capsys.readouterr().out


def test_a_counter_changed_within_the_settle_time_waits_for_the_next_run(local_aws: LocalAws, orders: None) -> None:
    parts.order_ingest(get_settings()).apply([sighting("o-9", OrderState.CREATED, ("SKU-A", 1))])  # now
    corrupt(local_aws, "SKU-A", "pending_created", 99)
    summary = run_function()
    assert summary["repairs"] == [] and summary["skipped_recent"] == ["SKU-A"]
    assert sku_state(local_aws, "SKU-A")["pending_created"] == 99


def test_the_command_names_a_missing_setting(
    aws_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SKU_TABLE")
    get_settings.cache_clear()
    try:
        assert reconcile_command.main([]) == 2
    finally:
        get_settings.cache_clear()
    assert "SKU_TABLE" in capsys.readouterr().err


def test_an_invalid_schedule_input_is_dead_lettered_naming_the_field_not_retried(
    local_aws: LocalAws, orders: None, caplog: pytest.LogCaptureFixture
) -> None:
    handler = load_handler("reconcile")
    with caplog.at_level(logging.ERROR):
        answer = handler.lambda_handler({"dry_run": "maybe"}, FakeLambdaContext())
    assert answer["rejected"].startswith("dry_run:")
    letters = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert [(letter["attributes"]["source"], letter["body"]["body"]) for letter in letters] == [
        ("reconcile", {"dry_run": "maybe"})
    ]
    assert letters[0]["attributes"]["reason"] == answer["rejected"]
    assert any(getattr(record, "reason", "").startswith("dry_run:") for record in caplog.records)
    assert run_function(dry_run=True)["repairs"] == []  # nothing was repaired by the rejected run
