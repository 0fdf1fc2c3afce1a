"""Closing the loop with the catalog, through the real handlers against moto server and the simulator.

The platform's overwrite erases the orders placed before a batch is applied and keeps the ones after; the product
places each order against the push's window, reads back the SKUs it cannot place, and audits the whole catalog.
Every test ends by reading the simulator's catalog, not the product's records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.models.settings import get_settings
from stocksync_dev.cli.main import main
from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler, sqs_event

TOKEN, APP_SECRET = "loop-test-token", "loop-test-app-secret"
T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
FIELD = "quantity_to_sell_on_facebook"
PROCESSING = 60  # seconds the simulator takes to process a batch; it is applied halfway


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "start": T0,
        "batch_processing_delay": timedelta(seconds=PROCESSING),
        "batch_apply_fraction": 0.5,
    }


@pytest.fixture
def pipeline(local_aws: LocalAws, platform: CommercePlatformSimulator) -> LocalPipeline:
    return LocalPipeline(local_aws, advance_clock=platform.advance)


def env(local_aws: LocalAws, name: str) -> str:
    return local_aws.function_environment()[name]


def put_state(local_aws: LocalAws, retailer_id: str, **fields: Any) -> None:
    local_aws.client("dynamodb").put_item(
        TableName=env(local_aws, "SKU_TABLE"),
        Item=encode({"retailer_id": retailer_id, "record": "state", "bucket": "slow", **fields}),
    )


def put_states(local_aws: LocalAws, retailer_ids: list[str], **fields: Any) -> None:
    """``put_state`` for many SKUs, 25 a BatchWriteItem call (the API's limit) instead of a PutItem each."""
    client, table = local_aws.client("dynamodb"), env(local_aws, "SKU_TABLE")
    for start in range(0, len(retailer_ids), 25):
        pending: dict[str, Any] = {
            table: [
                {"PutRequest": {"Item": encode({"retailer_id": rid, "record": "state", "bucket": "slow", **fields})}}
                for rid in retailer_ids[start : start + 25]
            ]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def state(local_aws: LocalAws, retailer_id: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=env(local_aws, "SKU_TABLE"), Key=encode({"retailer_id": retailer_id, "record": "state"})
    )
    return decode(answer.get("Item", {}))


def recompute(local_aws: LocalAws, *retailer_ids: str) -> None:
    sqs = local_aws.client("sqs")
    for rid in retailer_ids:
        sqs.send_message(QueueUrl=env(local_aws, "RECOMPUTE_QUEUE_URL"), MessageBody=f'{{"retailer_id": "{rid}"}}')


def consume(pipeline: LocalPipeline, queue_logical_id: str) -> None:
    """Deliver what one queue holds now to its consumer (one step of the pipeline, not the whole drain)."""
    consumer = next(c for c in pipeline.consumers if c.queue_logical_id == queue_logical_id)
    while pipeline._deliver(consumer):
        pass


def poll(pipeline: LocalPipeline) -> Any:
    return pipeline.run_schedule("poll_orders")


def start_with(
    local_aws: LocalAws, pipeline: LocalPipeline, sim: CommercePlatformSimulator, *, level: int, shows: int
) -> None:
    """SKU-A with a warehouse level, published and confirmed at ``shows`` (the catalog agrees)."""
    sim.add_product("SKU-A", quantity=shows)
    put_state(local_aws, "SKU-A", warehouse_level=shows, warehouse_as_of_ms=0)
    recompute(local_aws, "SKU-A")
    pipeline.drain()
    assert sim.catalog()["SKU-A"][FIELD] == shows
    local_aws.client("dynamodb").update_item(
        TableName=env(local_aws, "SKU_TABLE"),
        Key=encode({"retailer_id": "SKU-A", "record": "state"}),
        UpdateExpression="SET warehouse_level = :level",
        ExpressionAttributeValues=encode({":level": level}),
    )


@pytest.mark.parametrize(
    ("placed_after_send", "erased"),
    [(10, True), (45, False)],  # before / after the platform applies the batch (halfway through processing)
)
def test_an_order_placed_while_a_batch_is_processing_is_read_back_and_the_catalog_ends_at_a(
    local_aws: LocalAws,
    pipeline: LocalPipeline,
    platform: CommercePlatformSimulator,
    placed_after_send: int,
    erased: bool,
) -> None:
    start_with(local_aws, pipeline, platform, level=12, shows=10)
    poll(pipeline)  # the poller's watermark starts here
    recompute(local_aws, "SKU-A")
    consume(pipeline, "RecomputeQueue")
    consume(pipeline, "PushQueue")  # items_batch with 12 is accepted now and applied 30 s later
    platform.advance(placed_after_send)
    platform.place_order("o-1", [("SKU-A", 2)])
    # The catalog: the order took 2 from 10 (before the batch) or from 12 (after it).
    pipeline.drain()  # verify confirms 12; nothing is known of the order yet
    poll(pipeline)  # sees o-1, placed inside the push's window: ambiguous
    pipeline.drain()  # read back, then recompute; a push only if the catalog differs

    assert platform.catalog()["SKU-A"][FIELD] == 10  # A = 12 - 2 either way
    stored = state(local_aws, "SKU-A")
    assert stored["catalog_basis"] == ("push" if erased else "read")
    assert pipeline.invocations.get("read_back") == 1
    # Only the erased order needed a second push.
    assert platform.calls[("POST", "items_batch")] == (3 if erased else 2)


def test_an_order_placed_before_the_push_was_sent_is_known_erased_without_a_read(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator
) -> None:
    start_with(local_aws, pipeline, platform, level=12, shows=10)
    poll(pipeline)
    platform.advance(5)
    platform.place_order("o-1", [("SKU-A", 2)])  # the catalog shows 8
    platform.advance(5)
    recompute(local_aws, "SKU-A")  # the warehouse level changed; the order is not polled yet
    pipeline.drain()  # pushes 12, which overwrites the platform's decrement
    assert platform.catalog()["SKU-A"][FIELD] == 12
    poll(pipeline)
    pipeline.drain()
    assert platform.catalog()["SKU-A"][FIELD] == 10
    assert "read_back" not in pipeline.invocations  # the order was before the call: certain, no read needed


def test_an_order_polled_while_the_push_that_erased_it_is_in_flight_is_pushed_after_the_confirmation(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator
) -> None:
    """While a push is in flight, recompute assumes an order it sees comes after the overwrite and waits; when the
    push is confirmed, the order turns out to precede it (erased): verify_batch must ask for the recompute."""
    start_with(local_aws, pipeline, platform, level=12, shows=10)
    poll(pipeline)
    platform.advance(5)
    platform.place_order("o-1", [("SKU-A", 2)])  # before the push is sent: the overwrite will erase it
    platform.advance(5)
    recompute(local_aws, "SKU-A")
    consume(pipeline, "RecomputeQueue")
    consume(pipeline, "PushQueue")  # 12 is sent
    poll(pipeline)  # sees o-1 while 12 is in flight
    consume(pipeline, "RecomputeQueue")  # 12 - 2 expected once 12 lands: nothing to push yet
    pipeline.drain()  # verify confirms 12 and asks for the recompute
    assert platform.catalog()["SKU-A"][FIELD] == 10


def test_with_reads_off_an_ambiguous_sku_is_pushed_again(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKSYNC_CATALOG_READS_PER_HOUR", "0")
    get_settings.cache_clear()
    start_with(local_aws, pipeline, platform, level=12, shows=10)
    poll(pipeline)
    recompute(local_aws, "SKU-A")
    consume(pipeline, "RecomputeQueue")
    consume(pipeline, "PushQueue")
    platform.advance(45)  # after the application: the catalog already shows 10
    platform.place_order("o-1", [("SKU-A", 2)])
    pipeline.drain()
    poll(pipeline)
    pipeline.drain()
    assert platform.catalog()["SKU-A"][FIELD] == 10
    assert "read_back" not in pipeline.invocations
    assert platform.calls[("POST", "items_batch")] == 3  # the absolute value again, never a guess


# ------------------------------------------------------------------------------------------------- the audit


def audit(dry_run: bool = False) -> dict[str, Any]:
    return load_handler("audit_catalog").lambda_handler({"dry_run": dry_run}, FakeLambdaContext())


def test_the_audit_repairs_drift_reports_unknown_items_and_skips_unreadable_values(
    local_aws: LocalAws,
    pipeline: LocalPipeline,
    platform: CommercePlatformSimulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_with(local_aws, pipeline, platform, level=10, shows=10)
    platform.add_product("NOT-OURS", quantity=4)
    platform.edit_product("SKU-A", **{FIELD: 7})  # an edit in Commerce Manager
    capsys.readouterr()

    report = audit(dry_run=True)
    assert (report["drifted"], report["unknown"], report["recomputed"]) == (1, 1, 1)
    assert report["differences"][0] == {
        "retailer_id": "SKU-A",
        "bucket": "slow",
        "expected": 10,
        "catalog": 7,
        "catalog_visibility": "published",
        "ambiguous": False,
    }
    assert platform.catalog()["SKU-A"][FIELD] == 7  # a dry run changes nothing
    assert drain_queue(local_aws.client("sqs"), env(local_aws, "RECOMPUTE_QUEUE_URL")) == []

    report = audit()
    captured = capsys.readouterr()
    assert emitted_metrics(captured.out)["StockSync/CatalogDrift bucket=slow trigger=audit service=stocksync"] == [1.0]
    drift = [r for r in caplog.records if r.getMessage() == "the catalog differs from what the product expects"]
    logged = [(r.retailer_id, r.expected["value"], r.catalog["value"]) for r in drift]  # type: ignore[attr-defined]
    assert logged == [("SKU-A", 10, 7), ("SKU-A", 10, 7)]  # the dry run and the real run: both values each time
    pipeline.drain()
    assert platform.catalog()["SKU-A"][FIELD] == 10
    assert state(local_aws, "NOT-OURS") == {}  # reported, never created
    assert audit()["drifted"] == 0


@pytest.mark.slow  # 1,200 SKUs, a write each; the rule at unit scale: tests/unit/test_catalog_reads.py
def test_an_audit_cut_short_by_throttling_resumes_where_it_stopped(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator
) -> None:
    skus = [f"SKU-{i:04d}" for i in range(1200)]
    for rid in skus:
        platform.add_product(rid, quantity=1)
    put_states(local_aws, skus, warehouse_level=1, catalog_value=2, catalog_from_ms=0, catalog_to_ms=1)
    platform.throttle_after(1, code=80009, regain_minutes=5, endpoint="products")
    first = audit()
    assert (first["finished"], first["stopped_by"], first["read"]) == (False, "throttled", 500)
    platform.advance(6 * 60)
    second = audit()
    assert (second["finished"], second["read"]) == (True, 700)  # the rest, not the whole catalog again
    assert first["drifted"] + second["drifted"] == 1200


def test_stocksync_audit_from_a_shell_reports_then_repairs(
    local_aws: LocalAws,
    pipeline: LocalPipeline,
    platform: CommercePlatformSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start_with(local_aws, pipeline, platform, level=10, shows=10)
    platform.edit_product("SKU-A", visibility="staging")  # hidden by someone in Commerce Manager
    capsys.readouterr()
    assert main(["audit", "--dry-run"]) == 1  # a dry run that finds a difference
    printed = capsys.readouterr().out
    assert "SKU-A [slow]: catalog 10 staging, expected 10" in printed and "would repair 1" in printed
    assert main(["audit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drifted"] == 1
    pipeline.drain()
    assert platform.catalog()["SKU-A"]["visibility"] == "published"
    assert main(["audit", "--dry-run"]) == 0


def test_a_version_pushed_twice_is_anchored_at_its_later_overwrite(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator
) -> None:
    """A redelivery sends the same version in a second batch. An order placed between the first batch's
    confirmation and the second batch's application is erased by the second: its confirmation must move the
    anchor there, or the product believes the catalog shows A while it shows the order's units more."""
    start_with(local_aws, pipeline, platform, level=12, shows=10)
    # The interleaving needs batch 1 checked at +60 (VerifyDelaySeconds), before batch 2 is applied at +80: forget
    # the processing time start_with's batch let verify observe, which would put the first check later.
    local_aws.client("dynamodb").delete_item(
        TableName=env(local_aws, "CONTROL_TABLE"),
        Key=encode({"name": "batch-processing#" + env(local_aws, "STOCKSYNC_CATALOG_ID")}),
    )
    poll(pipeline)
    recompute(local_aws, "SKU-A")
    consume(pipeline, "RecomputeQueue")
    claimed = state(local_aws, "SKU-A")
    push = {
        "retailer_id": "SKU-A",
        "value": claimed["published_value"],
        "version": claimed["published_version"],
        "visibility": "published",
        "computed_at": claimed["published_at"],
    }
    consume(pipeline, "PushQueue")  # batch 1: sent now, applied at +30, finished at +60
    pipeline.fast_forward(50)
    local_aws.client("sqs").send_message(QueueUrl=env(local_aws, "PUSH_QUEUE_URL"), MessageBody=json.dumps(push))
    consume(pipeline, "PushQueue")  # the same version again: sent at +50, applied at +80, finished at +110
    pipeline.fast_forward(10)
    consume(pipeline, "VerifyQueue")  # batch 1 confirmed at +60
    assert state(local_aws, "SKU-A")["confirmed_version"] == claimed["published_version"]
    pipeline.fast_forward(5)
    platform.place_order("o-1", [("SKU-A", 2)])  # +65: erased by batch 2 at +80
    pipeline.drain()
    poll(pipeline)
    pipeline.drain()
    assert platform.catalog()["SKU-A"][FIELD] == 10  # A = 12 - 2


def reasoned_dead_letters(local_aws: LocalAws) -> list[tuple[str, str]]:
    letters = drain_queue(local_aws.client("sqs"), env(local_aws, "DEAD_LETTER_QUEUE_URL"))
    return [(letter["attributes"]["source"], letter["attributes"]["reason"]) for letter in letters]


def test_bad_read_back_messages_are_dead_lettered_naming_the_field_and_the_rest_is_read(
    local_aws: LocalAws, pipeline: LocalPipeline, platform: CommercePlatformSimulator
) -> None:
    start_with(local_aws, pipeline, platform, level=10, shows=10)
    platform.edit_product("SKU-A", **{FIELD: 6})
    event = sqs_event([{"retailer_id": "SKU-A"}, {"retailer": "SKU-B"}, "{oops"])
    answer = load_handler("read_back").lambda_handler(event, FakeLambdaContext())
    assert answer == {"batchItemFailures": []}
    reasons = [reason for source, reason in reasoned_dead_letters(local_aws) if source == "read_back"]
    assert len(reasons) == 2 and "retailer_id: Field required" in reasons[0]
    assert reasons[1].startswith("body: Invalid JSON")
    pipeline.drain()
    assert platform.catalog()["SKU-A"][FIELD] == 10  # the good message was read back and repaired


def test_a_bad_audit_input_is_dead_lettered_naming_the_field(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    answer = load_handler("audit_catalog").lambda_handler({"dry_run": "yes"}, FakeLambdaContext())
    assert answer["rejected"].startswith("dry_run:")
    assert [source for source, _ in reasoned_dead_letters(local_aws)] == ["audit_catalog"]
