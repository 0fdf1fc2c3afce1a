"""poll_orders through its real entry point, against moto server and the Commerce Platform simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.integrations import graph_api
from stocksync.integrations.messaging import RecomputeQueue
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler

SKUS = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"]
TOKEN, APP_SECRET = "poll-test-token", "poll-test-app-secret"
STALL_METRIC = "StockSync/SecondsSinceCompleteListing service=stocksync"  # what PollStalledAlarm watches


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {"page_size": 5, "access_token": TOKEN, "app_secret": APP_SECRET}  # the product's clock follows it


@pytest.fixture
def platform(platform: CommercePlatformSimulator) -> CommercePlatformSimulator:
    for sku in SKUS:
        platform.add_product(sku, quantity=500)
    return platform


def poll() -> dict[str, Any]:
    summary = load_handler("poll_orders").lambda_handler({"source": "aws.scheduler"}, FakeLambdaContext())
    json.dumps(summary)  # Lambda serialises what a handler returns; a value it cannot fails the invocation
    return summary


def counters(local_aws: LocalAws) -> dict[str, tuple[int, int, int, int]]:
    table = local_aws.function_environment()["SKU_TABLE"]
    answer = local_aws.client("dynamodb").scan(TableName=table)
    result = {}
    for raw in answer["Items"]:
        item = decode(raw)
        if item["record"] == "state":
            result[item["retailer_id"]] = (
                item.get("pending_processing", 0),
                item.get("pending_created", 0),
                item.get("acknowledged_unsynced", 0),
                item.get("platform_units", 0),
            )
    return result


def place_orders(sim: CommercePlatformSimulator, count: int) -> dict[str, int]:
    """Place ``count`` orders round-robin over the SKUs; returns units ordered per SKU."""
    ordered = dict.fromkeys(SKUS, 0)
    for index in range(count):
        sku = SKUS[index % len(SKUS)]
        units = 1 + index % 3
        sim.place_order(f"o-{index:03d}", [(sku, units)], state="FB_PROCESSING")
        ordered[sku] += units
        sim.advance(1)
    return ordered


def test_a_poll_follows_every_page_and_counts_each_order_once(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    ordered = place_orders(platform, 23)  # five pages of five
    summary = poll()
    assert summary["completed"] and summary["pages"] == 5 and summary["applied"] == 23
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}

    recompute = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    assert sorted(message["body"]["retailer_id"] for message in recompute) == SKUS

    # A second poll re-reads the overlap window and changes nothing, so it enqueues nothing either.
    again = poll()
    assert again["applied"] == 0 and again["unchanged"] == again["sightings"] > 0 and not again["reenqueued_skus"]
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}
    assert drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"]) == []


def test_state_moves_and_cancellations_move_units_between_counters(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.place_order("o-1", [("SKU-A", 3), ("SKU-B", 2)], state="FB_PROCESSING")
    platform.place_order("o-2", [("SKU-A", 1)], state="FB_PROCESSING")
    poll()
    platform.advance(60)
    platform.move_order("o-1", "CREATED")
    platform.cancel_order("o-2", None, by="buyer")  # the platform restocks buyer cancellations itself
    platform.cancel_order("o-1", [("SKU-B", 1)], by="seller", restock_items=False)
    poll()
    assert counters(local_aws) == {
        "SKU-A": (0, 3, 0, -3),  # o-1's 3 units now in C; o-2 cancelled and restocked (-4 + 1)
        "SKU-B": (0, 1, 0, -2),  # one of two units cancelled by the seller without restock
    }


def test_throttling_in_the_middle_of_a_poll_then_the_next_poll_resumes_without_loss_or_double_count(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    ordered = place_orders(platform, 23)
    platform.throttle_after(2, code=80004, regain_minutes=5, endpoint="commerce_orders")
    first = poll()
    assert first["throttled_for"] == pytest.approx(300, abs=1)
    assert not first["completed"] and first["pages"] == 2
    assert sum(p for p, *_ in counters(local_aws).values()) < sum(ordered.values())

    platform.advance(6 * 60)
    second = poll()
    assert second["completed"] and second["throttled_for"] is None
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}


def test_polls_that_stay_throttled_report_the_time_since_the_last_complete_listing(
    local_aws: LocalAws, platform: CommercePlatformSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metric PollStalledAlarm watches: 0 after a complete listing, then growing while every poll is cut short."""
    place_orders(platform, 3)
    poll()
    completed_at = platform.now()
    assert emitted_metrics(capsys.readouterr().out)[STALL_METRIC] == [0.0]
    for index in range(12):  # three pages of new orders, listed after the watermark
        platform.place_order(f"later-{index}", [(SKUS[index % len(SKUS)], 1)], state="FB_PROCESSING")
        platform.advance(1)
    platform.throttle_after(1, code=80004, regain_minutes=60, endpoint="commerce_orders")
    platform.advance(20 * 60)
    assert poll()["throttled_for"]
    waited = (platform.now() - completed_at).total_seconds()
    assert emitted_metrics(capsys.readouterr().out)[STALL_METRIC] == [waited]
    # The platform asked for an hour: the next poll does not call it before then, and still reports the stall.
    calls = sum(platform.calls.values())
    platform.advance(30 * 60)
    skipped = poll()
    assert skipped["skipped_until"] and sum(platform.calls.values()) == calls
    assert emitted_metrics(capsys.readouterr().out)[STALL_METRIC] == [waited + 30 * 60]


def test_a_saved_page_cursor_the_platform_refuses_restarts_the_listing_without_loss_or_double_count(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    ordered = place_orders(platform, 23)
    platform.throttle_after(2, code=80004, regain_minutes=5, endpoint="commerce_orders")
    assert not poll()["completed"]
    control, key = local_aws.function_environment()["CONTROL_TABLE"], encode({"name": "poll-cursor#meta_commerce"})
    dynamodb = local_aws.client("dynamodb")
    saved = decode(dynamodb.get_item(TableName=control, Key=key)["Item"])
    cursor = json.loads(saved["cursor"])
    assert cursor["in_progress"] and cursor["listing_after"]
    expired = json.dumps({**cursor, "listing_after": "expired-cursor"})
    dynamodb.put_item(TableName=control, Item=encode({**saved, "cursor": expired}))

    platform.advance(6 * 60)
    resumed = poll()
    assert resumed["completed"] and "page cursor rejected" in resumed["restarted_listing"]
    assert resumed["pages"] == 5  # the whole listing again, from its first page
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}


def test_a_removed_endpoint_stops_polling_and_alarms_once(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.commerce_orders_removed = True
    first = poll()
    assert first["disabled"]
    calls = sum(platform.calls.values())
    second = poll()
    assert second["disabled"] and sum(platform.calls.values()) == calls  # not even one more call
    control = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["CONTROL_TABLE"], Key=encode({"name": "poll-cursor#meta_commerce"})
    )
    assert "deprecated" in decode(control["Item"])["disabled_reason"]


def test_an_order_line_for_a_sku_without_warehouse_level_is_still_counted(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.add_product("SKU-NEW", quantity=5)
    platform.place_order("o-new", [("SKU-NEW", 2)], state="FB_PROCESSING")
    poll()
    state = decode(
        local_aws.client("dynamodb").get_item(
            TableName=local_aws.function_environment()["SKU_TABLE"],
            Key=encode({"retailer_id": "SKU-NEW", "record": "state"}),
        )["Item"]
    )
    assert state["pending_processing"] == 2 and "warehouse_level" not in state and "bucket" not in state


def test_a_malformed_order_is_dead_lettered_with_its_field_and_the_rest_of_the_page_applied(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator only serves valid orders, so the response is corrupted on its way into the client."""
    place_orders(platform, 3)
    original_get = graph_api.GraphApiClient.get

    def corrupting_get(self: graph_api.GraphApiClient, path: str, params: Any = None) -> dict[str, Any]:
        answer = original_get(self, path, params)
        if path.endswith("commerce_orders") and answer.get("data"):
            answer["data"][1]["items"]["data"][0]["quantity"] = -2
        return answer

    monkeypatch.setattr(graph_api.GraphApiClient, "get", corrupting_get)
    summary = poll()
    assert summary["rejected"] == 1 and summary["applied"] == 2
    letters = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["DEAD_LETTER_QUEUE_URL"])
    assert len(letters) == 1
    assert "data[1].items.data[0].quantity" in letters[0]["attributes"]["reason"]
    assert json.dumps(letters[0]["body"]["body"]).count("o-001") >= 1


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the dead try emits none
def test_a_poll_that_died_before_its_enqueue_is_followed_by_one_that_enqueues_what_it_changed(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first poll applies every page and dies at its enqueue (the pages behind its last saved cursor carry
    their SKUs in that save; the last page is re-read). The next poll finds every order unchanged and still
    enqueues every SKU; the poll after it enqueues nothing."""
    sqs, recompute_url = local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"]
    ordered = place_orders(platform, 23)
    enqueue = RecomputeQueue.enqueue

    def die(self: RecomputeQueue, retailer_ids: Any, *, reason: str) -> None:
        raise RuntimeError("the Lambda died before the enqueue")

    monkeypatch.setattr(RecomputeQueue, "enqueue", die)
    with pytest.raises(RuntimeError):
        poll()
    monkeypatch.setattr(RecomputeQueue, "enqueue", enqueue)
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}
    assert drain_queue(sqs, recompute_url) == []

    platform.advance(60)
    retry = poll()
    assert retry["completed"] and retry["applied"] == 0 and sorted(retry["reenqueued_skus"]) == SKUS
    assert sorted(message["body"]["retailer_id"] for message in drain_queue(sqs, recompute_url)) == SKUS
    assert counters(local_aws) == {sku: (units, 0, 0, -units) for sku, units in ordered.items()}

    platform.advance(60)
    assert not poll()["reenqueued_skus"] and drain_queue(sqs, recompute_url) == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the dead try emits none
def test_a_poll_that_died_before_its_enqueue_after_a_complete_one_re_enqueues_only_the_orders_it_wrote(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided from the ledger rows' updated_at against the last save: the orders of the earlier, complete poll
    are re-read (the overlap) but were enqueued; the ones the dead poll wrote are enqueued again."""
    sqs, recompute_url = local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"]
    platform.place_order("o-early", [("SKU-A", 1)], state="FB_PROCESSING")
    poll()
    drain_queue(sqs, recompute_url)
    platform.advance(60)
    platform.place_order("o-late", [("SKU-B", 2), ("SKU-C", 1)], state="FB_PROCESSING")
    enqueue = RecomputeQueue.enqueue

    def die(self: RecomputeQueue, retailer_ids: Any, *, reason: str) -> None:
        raise RuntimeError("the Lambda died before the enqueue")

    monkeypatch.setattr(RecomputeQueue, "enqueue", die)
    with pytest.raises(RuntimeError):
        poll()
    monkeypatch.setattr(RecomputeQueue, "enqueue", enqueue)

    platform.advance(60)
    retry = poll()
    assert retry["unchanged"] == 2 and sorted(retry["reenqueued_skus"]) == ["SKU-B", "SKU-C"]
    assert sorted(message["body"]["retailer_id"] for message in drain_queue(sqs, recompute_url)) == ["SKU-B", "SKU-C"]
