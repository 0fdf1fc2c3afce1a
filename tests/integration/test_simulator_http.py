"""The Commerce Platform simulator through real HTTP, the way the product's Graph client will meet it.

Every later test and benchmark trusts the simulator, so this pins its Graph behaviour: paging, nested edges,
authentication, acknowledgement and cancellation semantics, asynchronous batches, limits, faults, the v26.0
removal, and the platform's own stock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from stocksync_dev.simulator import CommercePlatformSimulator, OrderRefused

pytestmark = pytest.mark.integration

TOKEN = "sim-token"
SECRET = "sim-app-secret"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
START = datetime(2026, 11, 1, 10, tzinfo=UTC)
CATALOG = "1001"
CMS = "2001"
ORDER_FIELDS = (
    "id,order_status,last_updated,items{id,retailer_id,quantity,price_per_unit},"
    "cancellations{id,items{retailer_id,quantity},restock_items,cancel_reason}"
)


class Graph:
    """A bare Graph caller for tests: adds the credentials, form-encodes JSON-valued parameters."""

    def __init__(self, sim: CommercePlatformSimulator, session: requests.Session) -> None:
        self.sim = sim
        self.session = session

    def get(self, path: str, version: str = "v25.0", **params: Any) -> requests.Response:
        return self.session.get(f"{self.sim.url}/{version}/{path}", params={**self.auth(), **params}, timeout=10)

    def post(self, path: str, version: str = "v25.0", **params: Any) -> requests.Response:
        form = {name: encode(value) for name, value in {**self.auth(), **params}.items()}
        return self.session.post(f"{self.sim.url}/{version}/{path}", data=form, timeout=10)

    def follow(self, url: str) -> requests.Response:
        return self.session.get(url, timeout=10)

    @staticmethod
    def auth() -> dict[str, str]:
        return {"access_token": TOKEN, "appsecret_proof": PROOF}


def encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.status_code >= 400, response.text
    return response.json()["error"]


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        catalog_id=CATALOG,
        cms_id=CMS,
        access_token=TOKEN,
        app_secret=SECRET,
        require_appsecret_proof=True,
        page_size=25,
        batch_calls_per_hour=100,
        start=START,
    ) as sim:
        sim.add_product("MUG", quantity=50, name="Mug", price="9.99 USD")
        sim.add_product("CUP", quantity=5, name="Cup", price="4.50 USD")
        yield sim


@pytest.fixture
def graph(sim: CommercePlatformSimulator) -> Iterator[Graph]:
    with requests.Session() as session:
        yield Graph(sim, session)


def all_pages(graph: Graph, first: requests.Response) -> list[list[dict[str, Any]]]:
    pages = []
    response = first
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["data"])
        next_url = body.get("paging", {}).get("next")
        if next_url is None:
            return pages
        response = graph.follow(next_url)


def product_quantity(graph: Graph, retailer_id: str) -> int:
    response = graph.get(f"{CATALOG}/products", fields="retailer_id,quantity_to_sell_on_facebook", limit=100)
    return {p["retailer_id"]: p["quantity_to_sell_on_facebook"] for p in response.json()["data"]}[retailer_id]


# -- commerce_orders listing ---------------------------------------------------------------------------------


def test_orders_page_across_several_pages_in_last_updated_order(sim: CommercePlatformSimulator, graph: Graph) -> None:
    for n in range(30):
        sim.place_order(f"old-{n:02d}", [("MUG", 1)], state="CREATED")
    sim.advance(100)
    for n in range(12):
        sim.place_order(f"new-{n:02d}", [("MUG", 1)])
    sim.advance(100)
    for n in range(5):
        sim.move_order(f"old-{n:02d}", "IN_PROGRESS")

    created = all_pages(graph, graph.get(f"{CMS}/commerce_orders", state="CREATED", limit=10))
    recent = all_pages(
        graph,
        graph.get(f"{CMS}/commerce_orders", state="FB_PROCESSING,CREATED,IN_PROGRESS", updated_after=unix(START) + 50),
    )
    default_state = graph.get(f"{CMS}/commerce_orders").json()
    capped = graph.get(f"{CMS}/commerce_orders", state="CREATED,IN_PROGRESS", limit=100).json()

    assert [len(page) for page in created] == [10, 10, 5]
    assert [o["id"] for page in created for o in page] == [f"old-{n:02d}" for n in range(5, 30)]
    recent_ids = [o["id"] for page in recent for o in page]
    assert [len(page) for page in recent] == [17]  # default limit is the page size (25)
    assert recent_ids == [f"new-{n:02d}" for n in range(12)] + [f"old-{n:02d}" for n in range(5)]
    assert {o["order_status"]["state"] for o in default_state["data"]} == {"CREATED"}  # the default state
    assert (len(default_state["data"]), "next" in default_state["paging"]) == (25, False)
    assert (len(capped["data"]), "next" in capped["paging"]) == (25, True)  # limit capped at the page size


def test_updated_before_and_empty_results(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("early", [("MUG", 1)], state="CREATED")
    sim.advance(60)
    sim.place_order("late", [("MUG", 1)], state="CREATED")

    before = graph.get(f"{CMS}/commerce_orders", updated_before=unix(START) + 30).json()
    none = graph.get(f"{CMS}/commerce_orders", updated_after=unix(START) + 60).json()

    assert [o["id"] for o in before["data"]] == ["early"]
    assert none == {"data": []}


def test_orders_have_graph_shapes_and_nested_edges(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 2), ("CUP", 1)], state="CREATED")
    sim.advance(30)
    sim.cancel_order("o-1", [("CUP", 1)], by="buyer")

    plain = graph.get(f"{CMS}/commerce_orders").json()["data"][0]
    nested = graph.get(f"{CMS}/commerce_orders", fields=ORDER_FIELDS).json()["data"][0]

    assert plain == {
        "id": "o-1",
        "order_status": {"state": "CREATED"},
        "created": "2026-11-01T10:00:00+0000",
        "last_updated": "2026-11-01T10:00:30+0000",
    }
    assert [(i["retailer_id"], i["quantity"], i["price_per_unit"]) for i in nested["items"]["data"]] == [
        ("MUG", 2, {"amount": "9.99", "currency": "USD"}),
        ("CUP", 1, {"amount": "4.50", "currency": "USD"}),
    ]
    (cancellation,) = nested["cancellations"]["data"]
    assert cancellation["items"] == {"data": [{"retailer_id": "CUP", "quantity": 1}]}
    assert cancellation["restock_items"] is True
    assert cancellation["cancel_reason"] == {"reason_code": "CUSTOMER_REQUESTED"}


def test_state_and_filters_select_orders(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("kept", [("MUG", 1)], state="IN_PROGRESS")
    sim.place_order("cancelled", [("MUG", 1)], state="CREATED")
    sim.cancel_order("cancelled", by="seller", reason_code="OUT_OF_STOCK")
    sim.place_order("partly", [("MUG", 2)], state="IN_PROGRESS")
    sim.cancel_order("partly", [("MUG", 1)], by="seller")

    def ids(**params: str) -> list[str]:
        return [o["id"] for o in graph.get(f"{CMS}/commerce_orders", **params).json()["data"]]

    assert ids(state="COMPLETED", filters="HAS_CANCELLATIONS") == ["cancelled"]
    assert ids(state="IN_PROGRESS,COMPLETED", filters="has_cancellations") == ["cancelled", "partly"]
    assert ids(state="IN_PROGRESS", filters="NO_CANCELLATIONS,NO_REFUNDS") == ["kept"]
    assert ids(state="IN_PROGRESS", filters="HAS_CANCELLATIONS,HAS_REFUNDS") == []
    assert error_of(graph.get(f"{CMS}/commerce_orders", state="SHIPPED"))["code"] == 100
    assert error_of(graph.get(f"{CMS}/commerce_orders", filters="HAS_MAGIC"))["code"] == 100
    bad_field = error_of(graph.get(f"{CMS}/commerce_orders", fields="id,colour"))
    assert bad_field["code"] == 100
    assert "colour" in bad_field["message"]
    assert error_of(graph.get(f"{CMS}/commerce_orders", after="garbage"))["code"] == 100


def test_an_order_updated_while_paging_is_not_lost(sim: CommercePlatformSimulator, graph: Graph) -> None:
    for n in range(4):
        sim.place_order(f"o-{n}", [("MUG", 1)])
    first = graph.get(f"{CMS}/commerce_orders", state="FB_PROCESSING,CREATED", limit=2).json()
    sim.advance(5)
    sim.move_order("o-0", "CREATED")  # already seen: moves to the end of the listing

    rest = all_pages(graph, graph.follow(first["paging"]["next"]))

    assert [o["id"] for o in first["data"]] == ["o-0", "o-1"]
    assert [o["id"] for page in rest for o in page] == ["o-2", "o-3", "o-0"]


def test_items_and_cancellations_edges_are_paged(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.add_product("PLATE", quantity=5, price="3.00 USD")
    sim.place_order("o-1", [("MUG", 1), ("CUP", 1), ("PLATE", 1)], state="CREATED")
    sim.cancel_order("o-1", [("MUG", 1)], by="buyer")
    sim.cancel_order("o-1", [("CUP", 1)], by="seller", restock_items=True, reason_code="OUT_OF_STOCK")

    items = all_pages(graph, graph.get("o-1/items", fields="retailer_id,quantity", limit=2))
    cancellations = all_pages(graph, graph.get("o-1/cancellations", fields="restock_items,cancel_reason", limit=1))

    assert items == [
        [{"retailer_id": "MUG", "quantity": 1}, {"retailer_id": "CUP", "quantity": 1}],
        [{"retailer_id": "PLATE", "quantity": 1}],
    ]
    assert [c["restock_items"] for page in cancellations for c in page] == [True, True]
    assert cancellations[1][0]["cancel_reason"]["reason_code"] == "OUT_OF_STOCK"
    unknown = error_of(graph.get("o-404/items"))
    assert (unknown["code"], unknown["error_subcode"], unknown["type"]) == (100, 33, "GraphMethodException")


# -- authentication -------------------------------------------------------------------------------------------


def test_authentication_failures(sim: CommercePlatformSimulator) -> None:
    url = f"{sim.url}/v25.0/{CMS}/commerce_orders"

    bad_token = requests.get(url, params={"access_token": "nope", "appsecret_proof": PROOF}, timeout=10)
    no_token = requests.get(url, params={"appsecret_proof": PROOF}, timeout=10)
    no_proof = requests.get(url, params={"access_token": TOKEN}, timeout=10)
    wrong_proof = requests.get(url, params={"access_token": TOKEN, "appsecret_proof": "ab" * 32}, timeout=10)
    bearer = requests.get(
        url, params={"appsecret_proof": PROOF}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    form = requests.post(f"{sim.url}/v25.0/{CATALOG}/products", data={"access_token": TOKEN}, timeout=10)

    for response in (bad_token, no_token):
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["type"], error["message"]) == (
            190,
            "OAuthException",
            "Invalid OAuth access token.",
        )
        assert error["fbtrace_id"]
    for response in (no_proof, wrong_proof, form):
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["type"]) == (100, "GraphMethodException")
    # Graph's own wording for a proof left out, and the one for a wrong proof.
    assert no_proof.json()["error"]["message"] == "API calls from the server require an appsecret_proof argument"
    assert form.json()["error"]["message"] == "API calls from the server require an appsecret_proof argument"
    assert wrong_proof.json()["error"]["message"] == "Invalid appsecret_proof provided in the API argument"
    assert bearer.status_code == 200


def test_the_proof_is_optional_when_not_required() -> None:
    with CommercePlatformSimulator(require_appsecret_proof=False, access_token=TOKEN, start=START) as sim:
        response = requests.get(
            f"{sim.url}/v25.0/{sim.cms_id}/commerce_orders", params={"access_token": TOKEN}, timeout=10
        )

    assert response.status_code == 200


# -- acknowledgement ------------------------------------------------------------------------------------------


def test_acknowledge_moves_created_to_in_progress_and_replays_by_idempotency_key(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.place_order("o-1", [("MUG", 1)], state="CREATED")
    sim.advance(10)

    first = graph.post("o-1/acknowledge_order", merchant_order_reference="WH-1", idempotency_key="k-1")
    sim.advance(10)
    replay = graph.post("o-1/acknowledge_order", merchant_order_reference="WH-1", idempotency_key="k-1")
    again = graph.post("o-1/acknowledge_order", merchant_order_reference="WH-1", idempotency_key="k-2")

    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json() == {"id": "o-1", "state": "IN_PROGRESS"}
    error = error_of(again)
    assert error["code"] == 100
    assert "IN_PROGRESS" in error["message"]
    assert "CREATED" in error["message"]
    order = graph.get(f"{CMS}/commerce_orders", state="IN_PROGRESS", fields="id,merchant_order_id,last_updated")
    assert order.json()["data"] == [
        {"id": "o-1", "merchant_order_id": "WH-1", "last_updated": "2026-11-01T10:00:10+0000"}
    ]


def test_acknowledge_needs_its_parameters_and_a_created_order(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 1)])

    no_key = graph.post("o-1/acknowledge_order", merchant_order_reference="WH-1")
    no_reference = graph.post("o-1/acknowledge_order", idempotency_key="k")
    too_early = graph.post("o-1/acknowledge_order", merchant_order_reference="WH-1", idempotency_key="k")

    assert "idempotency_key" in error_of(no_key)["message"]
    assert "merchant_order_reference" in error_of(no_reference)["message"]
    assert error_of(too_early)["code"] == 100
    assert sim.orders()["o-1"]["state"] == "FB_PROCESSING"


def test_bulk_acknowledge_answers_per_order(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 1)], state="CREATED")
    sim.place_order("o-2", [("MUG", 1)])
    orders = [
        {"id": "o-1", "merchant_order_reference": "WH-1"},
        {"id": "o-2", "merchant_order_reference": "WH-2"},
        {"id": "o-404", "merchant_order_reference": "WH-3"},
    ]

    first = graph.post(f"{CMS}/acknowledge_orders", idempotency_key="bulk-1", orders=orders)
    replay = graph.post(f"{CMS}/acknowledge_orders", idempotency_key="bulk-1", orders=orders)

    assert first.status_code == 200
    results = first.json()["orders"]
    assert results[0] == {"id": "o-1", "state": "IN_PROGRESS"}
    assert [r["id"] for r in results] == ["o-1", "o-2", "o-404"]
    assert (results[1]["error"]["code"], results[1]["error"]["type"]) == (100, "OAuthException")
    assert "FB_PROCESSING" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == 100
    assert replay.json() == first.json()
    assert sim.orders()["o-1"]["merchant_order_reference"] == "WH-1"


# -- seller cancellations -------------------------------------------------------------------------------------


def test_seller_cancellation_restocks_only_with_restock_items(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 4)], state="CREATED")
    reason = {"reason_code": "OUT_OF_STOCK", "reason_description": "warehouse ran out"}

    kept = graph.post(
        "o-1/cancellations", idempotency_key="c-1", cancel_reason=reason, items=[{"retailer_id": "MUG", "quantity": 1}]
    )
    assert kept.json() == {"success": True}
    assert product_quantity(graph, "MUG") == 46

    restocked = graph.post(
        "o-1/cancellations",
        idempotency_key="c-2",
        cancel_reason=reason,
        restock_items=True,
        items=[{"retailer_id": "MUG", "quantity": 2}],
    )
    assert restocked.json() == {"success": True}
    assert product_quantity(graph, "MUG") == 48

    cancellations = graph.get("o-1/cancellations", fields="restock_items,cancel_reason").json()["data"]
    assert [c["restock_items"] for c in cancellations] == [False, True]
    assert cancellations[0]["cancel_reason"] == reason
    assert sim.orders()["o-1"]["state"] == "CREATED"


def test_cancelling_more_than_remains_is_refused_without_effect(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 2)], state="IN_PROGRESS")

    response = graph.post(
        "o-1/cancellations", idempotency_key="c-1", restock_items=True, items=[{"retailer_id": "MUG", "quantity": 3}]
    )

    assert error_of(response)["code"] == 100
    assert sim.orders()["o-1"]["cancellations"] == []
    assert product_quantity(graph, "MUG") == 48


def test_a_cancellation_replayed_by_key_has_no_second_effect(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 3)], state="CREATED")
    params = {"idempotency_key": "c-1", "restock_items": True, "items": [{"retailer_id": "MUG", "quantity": 1}]}

    answers = [graph.post("o-1/cancellations", **params).json() for _ in range(3)]

    assert answers == [{"success": True}] * 3
    assert len(sim.orders()["o-1"]["cancellations"]) == 1
    assert product_quantity(graph, "MUG") == 48


def test_cancelling_the_whole_order_completes_it(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("o-1", [("MUG", 2), ("CUP", 1)], state="CREATED")

    response = graph.post("o-1/cancellations", idempotency_key="c-1", cancel_reason={"reason_code": "SUSPICIOUS_ORDER"})

    assert response.json() == {"success": True}
    completed = graph.get(f"{CMS}/commerce_orders", state="COMPLETED", filters="HAS_CANCELLATIONS", fields=ORDER_FIELDS)
    (order,) = completed.json()["data"]
    assert order["cancellations"]["data"][0]["items"]["data"] == [
        {"retailer_id": "MUG", "quantity": 2},
        {"retailer_id": "CUP", "quantity": 1},
    ]
    assert order["cancellations"]["data"][0]["restock_items"] is False
    assert product_quantity(graph, "MUG") == 48


def test_cancellation_rules(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.place_order("fresh", [("MUG", 1)])

    in_risk_check = graph.post("fresh/cancellations", idempotency_key="c-1")
    bad_reason = graph.post("fresh/cancellations", idempotency_key="c-2", cancel_reason={"reason_code": "BORED"})
    no_key = graph.post("fresh/cancellations")
    sim.advance(24 * 3600)
    stuck_for_a_day = graph.post("fresh/cancellations", idempotency_key="c-3")

    assert "FB_PROCESSING" in error_of(in_risk_check)["message"]
    assert error_of(bad_reason)["code"] == 100
    assert "idempotency_key" in error_of(no_key)["message"]
    assert stuck_for_a_day.json() == {"success": True}


# -- items_batch and check_batch_request_status ---------------------------------------------------------------


def test_items_batch_is_processed_asynchronously_with_per_item_errors(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.batch_processing_delay = timedelta(seconds=30)
    requests_ = [
        {"method": "UPDATE", "data": {"id": "MUG", "quantity_to_sell_on_facebook": 7}},
        {"method": "UPDATE", "data": {"id": "GHOST", "quantity_to_sell_on_facebook": 1}},
        {"method": "UPDATE", "data": {"id": "CUP", "quantity_to_sell_on_facebook": -2}},
        {"method": "UPDATE", "data": {"id": "CUP", "visibility": "hidden"}},
        {"method": "UPDATE", "data": {"quantity_to_sell_on_facebook": 1}},
        {"method": "UPDATE", "data": {"id": "CUP", "inventory": 3, "visibility": "staging"}},
    ]

    upload = graph.post(f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=requests_)
    (handle,) = upload.json()["handles"]

    def status(**params: Any) -> dict[str, Any]:
        response = graph.get(f"{CATALOG}/check_batch_request_status", handle=handle, **params)
        assert response.status_code == 200, response.text
        (report,) = response.json()["data"]
        return report

    assert upload.json()["validation_status"] == [
        {"retailer_id": None, "errors": [{"message": "Request 4: data.id (the retailer id) is required"}]}
    ]
    assert status()["status"] == "dispatched"
    sim.advance(14)
    assert (status()["status"], sim.catalog()["MUG"]["quantity_to_sell_on_facebook"]) == ("dispatched", 50)
    sim.advance(6)  # applied halfway through the delay, finished only at its end
    assert (status()["status"], sim.catalog()["MUG"]["quantity_to_sell_on_facebook"]) == ("started", 7)
    sim.advance(10)

    finished = status()
    with_ids = status(load_ids_of_invalid_requests="true")

    assert finished["status"] == "finished"
    assert finished["handle"] == handle
    assert [(e["line"], e["id"]) for e in finished["errors"]] == [(1, "GHOST"), (2, "CUP"), (3, "CUP")]
    assert finished["errors"][0]["message"] == "Product not found: GHOST"
    assert "quantity_to_sell_on_facebook" in finished["errors"][1]["message"]
    assert "visibility" in finished["errors"][2]["message"]
    assert finished["errors_total_count"] == 3
    assert (finished["warnings"], finished["warnings_total_count"]) == ([], 0)
    assert finished["ids_of_invalid_requests"] == []
    assert with_ids["ids_of_invalid_requests"] == ["GHOST", "CUP", "CUP"]  # one per error, as Meta's sample
    catalog = sim.catalog()
    assert catalog["MUG"]["quantity_to_sell_on_facebook"] == 7
    assert (catalog["CUP"]["quantity_to_sell_on_facebook"], catalog["CUP"]["visibility"]) == (3, "staging")
    assert "GHOST" not in catalog


def test_with_no_delay_a_batch_is_finished_at_the_first_check(sim: CommercePlatformSimulator, graph: Graph) -> None:
    upload = graph.post(
        f"{CATALOG}/items_batch",
        item_type="PRODUCT_ITEM",
        allow_upsert=False,
        requests=[{"method": "UPDATE", "data": {"id": "NEW", "title": "New", "price": "1.00 USD"}}],
    )
    (handle,) = upload.json()["handles"]

    report = graph.get(f"{CATALOG}/check_batch_request_status", handle=handle).json()["data"][0]

    assert report["status"] == "finished"
    assert report["errors"][0]["message"] == "Product not found: NEW"
    assert error_of(graph.get(f"{CATALOG}/check_batch_request_status", handle="nope"))["code"] == 100


def test_an_upload_overwrites_orders_placed_before_it_is_processed(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.batch_processing_delay = timedelta(minutes=1)
    graph.post(
        f"{CATALOG}/items_batch",
        item_type="PRODUCT_ITEM",
        requests=[{"method": "UPDATE", "data": {"id": "CUP", "quantity_to_sell_on_facebook": 5}}],
    )
    sim.place_order("o-1", [("CUP", 2)])
    assert product_quantity(graph, "CUP") == 3

    sim.advance(60)

    assert product_quantity(graph, "CUP") == 5


def test_items_batch_limits(sim: CommercePlatformSimulator, graph: Graph) -> None:
    too_many = [
        {"method": "UPDATE", "data": {"id": f"SKU-{n}", "quantity_to_sell_on_facebook": 1}} for n in range(5001)
    ]
    row = {"method": "UPDATE", "data": {"id": "MUG", "description": "x" * 1_000_000}}
    huge = f"item_type=PRODUCT_ITEM&access_token={TOKEN}&appsecret_proof={PROOF}&requests=" + json.dumps([row] * 29)

    over_count = graph.post(f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=too_many)
    over_size = graph.session.post(
        f"{sim.url}/v25.0/{CATALOG}/items_batch",
        data=huge.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    no_type = graph.post(f"{CATALOG}/items_batch", requests=too_many[:1])
    wrong_type = graph.post(f"{CATALOG}/items_batch", item_type="VEHICLE", requests=too_many[:1])
    not_json = graph.post(f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests="[{")

    assert error_of(over_count)["code"] == 100
    assert "5000" in error_of(over_count)["message"]
    assert error_of(over_size)["code"] == 1
    assert "reduce the amount of data" in error_of(over_size)["message"]
    assert "item_type" in error_of(no_type)["message"]
    assert error_of(wrong_type)["code"] == 100
    assert error_of(not_json)["code"] == 100
    assert sim.catalog()["MUG"]["quantity_to_sell_on_facebook"] == 50


def test_a_batch_of_5000_round_trips_quickly(sim: CommercePlatformSimulator, graph: Graph) -> None:
    for n in range(5000):
        sim.add_product(f"SKU-{n:05d}", quantity=1)
    rows = [
        {"method": "UPDATE", "data": {"id": f"SKU-{n:05d}", "quantity_to_sell_on_facebook": n}} for n in range(5000)
    ]

    started = time.perf_counter()
    upload = graph.post(f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=rows)
    (handle,) = upload.json()["handles"]
    report = graph.get(f"{CATALOG}/check_batch_request_status", handle=handle).json()["data"][0]
    elapsed = time.perf_counter() - started

    assert (report["status"], report["errors_total_count"]) == ("finished", 0)
    assert sim.catalog()["SKU-04999"]["quantity_to_sell_on_facebook"] == 4999
    assert elapsed < 2.0, f"items_batch of 5000 + status took {elapsed:.2f}s"


def test_the_batch_call_budget_answers_80014_until_the_oldest_call_leaves_the_hour() -> None:
    with CommercePlatformSimulator(batch_calls_per_hour=3, access_token=TOKEN, app_secret=SECRET, start=START) as sim:
        graph = Graph(sim, requests.Session())
        upload = {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": "GHOST"}}]}
        for _ in range(3):
            assert graph.post(f"{sim.catalog_id}/items_batch", **upload).status_code == 200
            sim.advance(600)
        sim.advance(300)  # calls went out at minutes 0, 10 and 20; it is now minute 35

        refused = graph.post(f"{sim.catalog_id}/items_batch", **upload)
        status_still_works = graph.get(f"{sim.catalog_id}/products")
        sim.advance(24 * 60 + 59)
        refused_a_second_early = graph.post(f"{sim.catalog_id}/items_batch", **upload)
        sim.advance(1)
        accepted = graph.post(f"{sim.catalog_id}/items_batch", **upload)

    error = error_of(refused)
    assert (refused.status_code, error["code"]) == (400, 80014)
    usage = json.loads(refused.headers["X-Business-Use-Case-Usage"])[sim.catalog_id][0]
    assert usage["type"] == "catalog_batch"
    assert usage["estimated_time_to_regain_access"] == 25
    assert status_still_works.status_code == 200
    assert error_of(refused_a_second_early)["code"] == 80014
    regain = json.loads(refused_a_second_early.headers["X-Business-Use-Case-Usage"])[sim.catalog_id][0]
    assert regain["estimated_time_to_regain_access"] == 1
    assert accepted.status_code == 200


# -- faults ---------------------------------------------------------------------------------------------------


def test_throttle_after_n_calls_until_the_clock_passes_the_regain_time(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.throttle_after(2, code=4, regain_minutes=2)

    answers = [graph.get(f"{CMS}/commerce_orders") for _ in range(3)]
    sim.advance(60)
    still = graph.get(f"{CMS}/commerce_orders")
    sim.advance(60)
    regained = graph.get(f"{CMS}/commerce_orders")

    assert [a.status_code for a in answers] == [200, 200, 400]
    error = answers[2].json()["error"]
    assert (error["code"], error["message"], error["is_transient"]) == (
        4,
        "(#4) Application request limit reached",
        True,
    )
    assert json.loads(answers[2].headers["X-App-Usage"])["call_count"] == 100
    # Code 4 is the app's limit: X-App-Usage is full, the endpoint's use case is not spent and announces no wait.
    usage = json.loads(answers[2].headers["X-Business-Use-Case-Usage"])[CMS][0]
    assert (usage["type"], usage["estimated_time_to_regain_access"]) == ("pages", 0)
    assert still.status_code == 400
    assert regained.status_code == 200


def test_a_throttle_can_target_one_endpoint(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.throttle_after(0, code=80009, regain_minutes=5, endpoint="check_batch_request_status")

    throttled = graph.get(f"{CATALOG}/check_batch_request_status", handle="any")
    other = graph.get(f"{CATALOG}/products")
    sim.reset_faults()
    after_reset = graph.get(f"{CATALOG}/check_batch_request_status", handle="any")

    assert error_of(throttled)["code"] == 80009
    assert CATALOG in json.loads(throttled.headers["X-Business-Use-Case-Usage"])
    assert other.status_code == 200
    assert error_of(after_reset)["code"] == 100  # unknown handle: the throttle is gone


def test_fail_next_answers_transient_500s(sim: CommercePlatformSimulator, graph: Graph) -> None:
    sim.fail_next(2, endpoint="items_batch")
    upload = {"item_type": "PRODUCT_ITEM", "requests": [{"method": "UPDATE", "data": {"id": "MUG", "inventory": 9}}]}

    unaffected = graph.get(f"{CATALOG}/products")
    answers = [graph.post(f"{CATALOG}/items_batch", **upload) for _ in range(3)]

    assert unaffected.status_code == 200
    assert [a.status_code for a in answers] == [500, 500, 200]
    error = answers[0].json()["error"]
    assert error["code"] == 2
    assert error["message"] == "An unexpected error has occurred. Please retry your request later."
    assert (error["type"], error["is_transient"]) == ("OAuthException", True)
    assert sim.catalog()["MUG"]["quantity_to_sell_on_facebook"] == 9
    assert sim.calls[("POST", "items_batch")] == 3


# -- versions -------------------------------------------------------------------------------------------------


def test_v26_and_the_removal_knob_answer_the_commerce_order_endpoints_with_error_12(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.place_order("o-1", [("MUG", 1)], state="CREATED")

    v26 = graph.get(f"{CMS}/commerce_orders", version="v26.0")
    v26_catalog = graph.get(f"{CATALOG}/products", version="v26.0")
    v25 = graph.get(f"{CMS}/commerce_orders")
    sim.commerce_orders_removed = True
    removed = [
        graph.get(f"{CMS}/commerce_orders"),
        graph.get("o-1/items", version="v21.0"),
        graph.get("o-1/cancellations"),
        graph.post("o-1/acknowledge_order", merchant_order_reference="r", idempotency_key="k"),
        graph.post("o-1/cancellations", idempotency_key="k"),
        graph.post(
            f"{CMS}/acknowledge_orders", idempotency_key="k", orders=[{"id": "o-1", "merchant_order_reference": "r"}]
        ),
    ]

    for response in [v26, *removed]:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == 12
        assert error["type"] == "OAuthException"
        assert error["message"] == "(#12) commerce_orders is deprecated for versions v26.0 and higher"
    assert v26_catalog.status_code == 200
    assert v25.status_code == 200
    assert sim.orders()["o-1"]["state"] == "CREATED"


# -- catalog reads and single-product updates -----------------------------------------------------------------


def test_single_product_update_applies_at_once(sim: CommercePlatformSimulator, graph: Graph) -> None:
    def path(retailer_id: str, catalog_id: str = CATALOG) -> str:
        encoded = base64.urlsafe_b64encode(retailer_id.encode()).decode().rstrip("=")
        return f"catalog:{catalog_id}:{encoded}"

    sim.batch_processing_delay = timedelta(hours=1)  # the real-time update does not wait for batches
    ok = graph.post(path("MUG"), quantity_to_sell_on_facebook=3, visibility="staging")
    unknown = graph.post(path("GHOST"), quantity_to_sell_on_facebook=3)
    invalid = graph.post(path("MUG"), quantity_to_sell_on_facebook="lots")
    other_catalog = graph.post(path("MUG", "9999"), quantity_to_sell_on_facebook=1)

    assert ok.json() == {"success": True}
    assert (sim.catalog()["MUG"]["quantity_to_sell_on_facebook"], sim.catalog()["MUG"]["visibility"]) == (3, "staging")
    assert error_of(unknown)["code"] == 100
    assert "quantity_to_sell_on_facebook" in error_of(invalid)["message"]
    assert error_of(other_catalog)["code"] == 100
    assert sim.calls[("POST", "catalog_item")] == 4


def test_products_listing_pages_with_fields(sim: CommercePlatformSimulator, graph: Graph) -> None:
    for n in range(7):
        sim.add_product(f"SKU-{n}", quantity=n, visibility="staging" if n % 2 else "published")

    pages = all_pages(
        graph, graph.get(f"{CATALOG}/products", fields="retailer_id,quantity_to_sell_on_facebook,visibility", limit=4)
    )
    default_fields = graph.get(f"{CATALOG}/products", limit=1).json()["data"][0]

    assert [len(page) for page in pages] == [4, 4, 1]
    rows = [row for page in pages for row in page]
    assert [row["retailer_id"] for row in rows] == ["CUP", "MUG", *[f"SKU-{n}" for n in range(7)]]
    assert rows[3] == {"retailer_id": "SKU-1", "quantity_to_sell_on_facebook": 1, "visibility": "staging"}
    assert list(default_fields) == ["id"]


# -- the platform's stock through the API ---------------------------------------------------------------------


def test_the_platform_sells_from_its_stock_and_buyers_cancellations_restock(
    sim: CommercePlatformSimulator, graph: Graph
) -> None:
    sim.place_order("o-1", [("CUP", 4)])
    assert product_quantity(graph, "CUP") == 1

    with pytest.raises(OrderRefused):
        sim.place_order("o-2", [("MUG", 1), ("CUP", 2)])
    assert (product_quantity(graph, "MUG"), product_quantity(graph, "CUP")) == (50, 1)

    sim.cancel_order("o-1", [("CUP", 3)], by="buyer")
    assert product_quantity(graph, "CUP") == 4
    sim.place_order("o-3", [("CUP", 4)])
    assert product_quantity(graph, "CUP") == 0


# -- transport, observation, the CLI --------------------------------------------------------------------------


def test_calls_and_the_request_log_never_hold_secrets(sim: CommercePlatformSimulator, graph: Graph) -> None:
    graph.get(f"{CMS}/commerce_orders", state="CREATED")
    graph.post(f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=[{"method": "DELETE", "data": {"id": "X"}}])

    assert sim.calls == {("GET", "commerce_orders"): 1, ("POST", "items_batch"): 1}
    (get, post) = sim.requests_log
    assert get == ("GET", f"/v25.0/{CMS}/commerce_orders", {"state": "CREATED"})
    assert post[:2] == ("POST", f"/v25.0/{CATALOG}/items_batch")
    assert "access_token" not in post[2]
    assert TOKEN not in repr(sim.requests_log)
    assert PROOF not in repr(sim.requests_log)


def test_normal_answers_carry_low_usage_headers(graph: Graph) -> None:
    response = graph.get(f"{CATALOG}/products")

    assert json.loads(response.headers["X-App-Usage"])["call_count"] < 10
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])[CATALOG][0]
    assert usage["call_count"] < 10
    assert usage["estimated_time_to_regain_access"] == 0


def test_a_json_body_is_accepted(sim: CommercePlatformSimulator) -> None:
    body = {
        **Graph.auth(),
        "item_type": "PRODUCT_ITEM",
        "requests": [{"method": "UPDATE", "data": {"id": "MUG", "quantity_to_sell_on_facebook": 11}}],
    }

    response = requests.post(f"{sim.url}/v25.0/{CATALOG}/items_batch", json=body, timeout=10)

    assert response.status_code == 200, response.text
    assert sim.catalog()["MUG"]["quantity_to_sell_on_facebook"] == 11


def test_one_keep_alive_connection_serves_many_requests(sim: CommercePlatformSimulator) -> None:
    parts = urlsplit(sim.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    query = f"access_token={TOKEN}&appsecret_proof={PROOF}"
    try:
        for _ in range(3):
            connection.request("GET", f"/v25.0/{CMS}/commerce_orders?{query}")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(body)
            assert response.headers.get("Connection", "").lower() != "close"
    finally:
        connection.close()


def test_request_logging_is_off_by_default(graph: Graph, capfd: pytest.CaptureFixture[str]) -> None:
    graph.get(f"{CMS}/commerce_orders")

    assert capfd.readouterr().err == ""


def test_request_logging_can_be_switched_on(capfd: pytest.CaptureFixture[str]) -> None:
    with CommercePlatformSimulator(log_requests=True, access_token=TOKEN, app_secret=SECRET, start=START) as sim:
        requests.get(f"{sim.url}/v25.0/{sim.cms_id}/commerce_orders", params=Graph.auth(), timeout=10)

    assert "commerce_orders" in capfd.readouterr().err


def test_the_command_line_entry_point_serves_a_seeded_shop() -> None:
    process = subprocess.Popen(
        # The standalone simulator plays today's Graph (orders removed since 2026-10-27): this shop keeps them.
        [sys.executable, "-m", "stocksync_dev.simulator", "--port", "0", "--order-api-removed-on", "never"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = lines[0].split()[-1]
        token = lines[1].split()[-1]
        proof = lines[2].split()[-1]
        response = requests.get(
            f"{url}/v25.0/2001/commerce_orders",
            params={"access_token": token, "appsecret_proof": proof, "state": "FB_PROCESSING,CREATED"},
            timeout=10,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert proof == PROOF
    assert response.status_code == 200
    assert len(response.json()["data"]) == 2
