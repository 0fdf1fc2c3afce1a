"""The order API's removal, heard through the real poll_orders handler in every shape Graph may answer it with.

The simulator's clock decides (Meta blocked v26.0+ on 2026-07-29 and removed the endpoints from every version on
2026-10-27); what a removed endpoint answers is not documented, so each shape the simulator can give is played.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from stocksync_dev.simulator.order_api_removal import REMOVAL_DATE, REMOVAL_SHAPES
from tests.support import FakeLambdaContext, emitted_metrics, load_handler

TOKEN, APP_SECRET = "removal-test-token", "removal-test-app-secret"
REMOVED_METRIC = "StockSync/OrderSourceRemoved service=stocksync"
BEFORE_REMOVAL = datetime(2026, 10, 26, 23, 59, 30, tzinfo=UTC)  # v25.0 still served; v26.0 already blocked


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {
        "page_size": 5,
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "start": BEFORE_REMOVAL,
        "order_api_removed_on": REMOVAL_DATE,
    }


@pytest.fixture
def platform(platform: CommercePlatformSimulator) -> CommercePlatformSimulator:
    platform.add_product("SKU-A", quantity=50)
    return platform


def poll() -> dict[str, Any]:
    summary = load_handler("poll_orders").lambda_handler({"source": "aws.scheduler"}, FakeLambdaContext())
    json.dumps(summary)
    return summary


def control_row(local_aws: LocalAws) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["CONTROL_TABLE"], Key=encode({"name": "poll-cursor#meta_commerce"})
    )
    return decode(answer["Item"])


@pytest.mark.parametrize("shape", REMOVAL_SHAPES)
def test_the_removal_date_disables_the_source_once_whatever_shape_graph_answers_with(
    local_aws: LocalAws, platform: CommercePlatformSimulator, shape: str, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.order_api_removal_shape = shape
    platform.place_order("o-1", [("SKU-A", 2)], state="FB_PROCESSING")
    served = poll()
    assert served["completed"] and served["applied"] == 1 and not served.get("disabled")
    assert REMOVED_METRIC not in emitted_metrics(capsys.readouterr().out)

    platform.advance(60)  # 2026-10-27 00:00:30: the removal date
    first = poll()
    assert first["disabled"]
    assert emitted_metrics(capsys.readouterr().out)[REMOVED_METRIC] == [1.0]
    calls = sum(platform.calls.values())
    second = poll()
    assert second["disabled"] and sum(platform.calls.values()) == calls  # not even one more call
    assert REMOVED_METRIC not in emitted_metrics(capsys.readouterr().out)  # the alarm hears it once
    assert control_row(local_aws)["disabled_reason"].startswith("meta_commerce: ")


def test_a_resumed_listing_hears_the_removal_not_a_rejected_cursor(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    """An "Unsupported get request" (code 100, subcode 33) is code 100 like a rejected cursor; on the configured
    commerce account it is the removal, even on the first page of a resumed listing."""
    for index in range(12):
        platform.place_order(f"o-{index}", [("SKU-A", 1)], state="FB_PROCESSING")
    platform.throttle_after(1, code=80004, regain_minutes=1, endpoint="commerce_orders")
    assert not poll()["completed"]
    assert json.loads(control_row(local_aws)["cursor"])["listing_after"]  # a saved page cursor

    platform.order_api_removal_shape = "unsupported_request"
    platform.advance(120)
    summary = poll()
    assert summary["disabled"] and not summary.get("restarted_listing")
    assert "Unsupported get request" in control_row(local_aws)["disabled_reason"]


def test_a_rejected_cursor_is_still_a_rejected_cursor_before_the_removal(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    """The bad-parameter code 100 (a cursor the platform no longer accepts) is not taken for the removal."""
    platform.order_api_removed_on = None  # served all along: only the cursor is wrong
    for index in range(12):
        platform.place_order(f"o-{index}", [("SKU-A", 1)], state="FB_PROCESSING")
    platform.throttle_after(1, code=80004, regain_minutes=1, endpoint="commerce_orders")
    assert not poll()["completed"]
    row = control_row(local_aws)
    cursor = json.loads(row["cursor"])
    local_aws.client("dynamodb").put_item(
        TableName=local_aws.function_environment()["CONTROL_TABLE"],
        Item=encode({**row, "cursor": json.dumps({**cursor, "listing_after": "expired-cursor"})}),
    )
    platform.advance(120)
    summary = poll()
    assert summary["completed"] and "page cursor rejected" in summary["restarted_listing"]
    assert not summary.get("disabled")
