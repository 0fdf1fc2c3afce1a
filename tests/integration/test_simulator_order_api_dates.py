"""The order API's end on the simulator's clock, over HTTP: blocked on v26.0+ from 2026-07-29, removed from every
version (and unversioned paths) on the removal date, answered in the selected shape (Graph API v26.0 changelog)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from stocksync_dev.simulator import CommercePlatformSimulator
from stocksync_dev.simulator.order_api_removal import REMOVAL_DATE, REMOVAL_SHAPES, V26_BLOCK_DATE

TOKEN = "dates-token"
ORDER_PATHS = [("GET", "{cms}/commerce_orders"), ("GET", "o-1/items"), ("GET", "o-1/cancellations")]


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        access_token=TOKEN,
        require_appsecret_proof=False,
        start=datetime(2026, 7, 28, 12, tzinfo=UTC),
        order_api_removed_on=REMOVAL_DATE,
    ) as sim:
        sim.add_product("MUG", quantity=5)
        sim.place_order("o-1", [("MUG", 1)], state="CREATED")
        yield sim


def call(sim: CommercePlatformSimulator, version: str | None, path: str) -> requests.Response:
    prefix = f"/{version}" if version else ""
    url = f"{sim.url}{prefix}/{path.format(cms=sim.cms_id)}"
    return requests.get(url, params={"access_token": TOKEN}, timeout=10)


def served(sim: CommercePlatformSimulator, version: str | None) -> bool:
    answers = [call(sim, version, path).status_code for _, path in ORDER_PATHS]
    assert len(set(answers)) == 1, answers
    return answers[0] == 200


def test_the_api_is_served_then_blocked_on_v26_then_removed_everywhere(sim: CommercePlatformSimulator) -> None:
    assert sim.order_api_blocked_from_v26_on == V26_BLOCK_DATE
    assert [served(sim, v) for v in ("v26.0", "v27.0", "v25.0", "v21.0", None)] == [True] * 5

    sim.set_clock(datetime(2026, 7, 29, tzinfo=UTC))
    assert [served(sim, v) for v in ("v26.0", "v27.0", "v25.0", "v21.0", None)] == [False, False, True, True, True]
    assert call(sim, None, f"{sim.catalog_id}/products").status_code == 200

    sim.set_clock(datetime(2026, 10, 26, 23, 59, 59, tzinfo=UTC))
    assert served(sim, "v25.0")
    sim.advance(1)
    assert [served(sim, v) for v in ("v26.0", "v25.0", "v21.0", None)] == [False] * 4
    assert call(sim, "v25.0", f"{sim.catalog_id}/products").status_code == 200  # the catalog stays
    assert sim.orders()["o-1"]["state"] == "CREATED"


def test_no_removal_date_keeps_the_api_below_v26(sim: CommercePlatformSimulator) -> None:
    sim.order_api_removed_on = None
    sim.set_clock(datetime(2026, 12, 4, tzinfo=UTC))
    assert served(sim, "v25.0") and served(sim, None) and not served(sim, "v26.0")
    sim.order_api_blocked_from_v26_on = None
    assert served(sim, "v26.0")


EXPECTED: dict[str, dict[str, Any]] = {
    "deprecated": {
        "code": 12,
        "type": "OAuthException",
        "message": "(#12) commerce_orders is deprecated for versions v26.0 and higher",
    },
    "nonexisting_field": {
        "code": 100,
        "type": "OAuthException",
        "message": "(#100) Tried accessing nonexisting field (commerce_orders) on node type (CommerceMerchantSettings)",
    },
    "unsupported_request": {"code": 100, "error_subcode": 33, "type": "GraphMethodException"},
    "unknown_path": {"code": 2500, "type": "OAuthException", "message": "Unknown path components: /commerce_orders"},
}


@pytest.mark.parametrize("shape", REMOVAL_SHAPES)
def test_each_removal_shape_has_graphs_body(sim: CommercePlatformSimulator, shape: str) -> None:
    sim.order_api_removal_shape = shape
    sim.set_clock(datetime.combine(REMOVAL_DATE, datetime.min.time(), tzinfo=UTC))
    response = call(sim, "v25.0", "{cms}/commerce_orders")
    assert response.status_code == 400
    error = response.json()["error"]
    assert {name: error.get(name) for name in EXPECTED[shape]} == EXPECTED[shape]
    assert error["fbtrace_id"]
    if shape == "unsupported_request":
        assert error["message"].startswith(f"Unsupported get request. Object with ID '{sim.cms_id}' does not exist")
    if shape == "nonexisting_field":
        order_error = call(sim, None, "o-1/items").json()["error"]
        assert order_error["message"] == "(#100) Tried accessing nonexisting field (items) on node type (CommerceOrder)"


def test_an_unknown_shape_is_refused() -> None:
    sim = CommercePlatformSimulator(start=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="removal shape"):
        sim.order_api_removal_shape = "gone"
    assert sim.order_api_removed_on is None and date(2026, 7, 29) == sim.order_api_blocked_from_v26_on
