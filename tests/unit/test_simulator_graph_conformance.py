"""Issue 11, items 1, 2 and 5: the simulator's single-object calls, its refusal of parameters an endpoint does not
take, and the smaller conformance points (item_id cancellations, the missing-proof message, one invalid id per
error, ISO dates for ``updated_after``, the ``scheduled``/``canceled``/``error`` batch statuses).

No sockets: requests go straight to the simulator's Graph front door (``GraphApi.handle``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from stocksync_dev.simulator.graph_api import GraphApi
from stocksync_dev.simulator.graph_request import GraphResponse
from stocksync_dev.simulator.orders import OrderState
from stocksync_dev.simulator.platform_state import PlatformState

START = datetime(2026, 11, 1, 10, tzinfo=UTC)
CATALOG, CMS = "1001", "2001"
TOKEN, SECRET = "sim-token", "sim-app-secret"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()


class Graph:
    def __init__(self) -> None:
        self.state = PlatformState(START, batch_calls_per_hour=100)
        self.api = GraphApi(
            self.state,
            catalog_id=CATALOG,
            cms_id=CMS,
            access_token=TOKEN,
            app_secret=SECRET,
            require_appsecret_proof=True,
            page_size=25,
        )

    def add(self, retailer_id: str, quantity: int) -> str:
        fields = {"title": retailer_id, "price": "1.00 USD", "quantity_to_sell_on_facebook": quantity}
        with self.state.transaction():
            self.state.add_product(retailer_id, fields)
            product = self.state.catalog.get(retailer_id)
            assert product is not None
            return product.product_id

    def order(self, order_id: str, *lines: tuple[str, int], state: OrderState = OrderState.CREATED) -> None:
        with self.state.transaction() as now:
            self.state.place_order(order_id, lines, state, now)

    def advance(self, seconds: float) -> None:
        with self.state.lock:
            self.state.clock.advance(seconds)

    def call(self, method: str, path: str, *, signed: bool = True, **params: Any) -> GraphResponse:
        encoded = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in params.items()}
        if signed:
            encoded = {**encoded, "access_token": TOKEN, "appsecret_proof": PROOF}
        query = urlencode(encoded)
        target, body = (f"/v25.0/{path}?{query}", b"") if method == "GET" else (f"/v25.0/{path}", query.encode())
        return self.api.handle(
            method,
            target,
            content_type="application/x-www-form-urlencoded",
            authorization=None,
            body=body,
            base_url="http://sim.test",
        )

    def ok(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        answer = self.call(method, path, **params)
        assert answer.status == 200, answer.body
        return answer.body


def error(answer: GraphResponse) -> dict[str, Any]:
    assert answer.status == 400, answer.body
    return answer.body["error"]


@pytest.fixture
def graph() -> Graph:
    graph = Graph()
    graph.add("MUG", 10)
    graph.add("CUP", 5)
    return graph


def batch(graph: Graph, *rows: tuple[str, Any]) -> str:
    requests = [
        {"method": "UPDATE", "data": {"id": retailer_id, "quantity_to_sell_on_facebook": quantity}}
        for retailer_id, quantity in rows
    ]
    body = graph.ok("POST", f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=requests)
    return body["handles"][0]


def status(graph: Graph, handle: str, **params: Any) -> dict[str, Any]:
    return graph.ok("GET", f"{CATALOG}/check_batch_request_status", handle=handle, **params)["data"][0]


# -- item 1: single-object calls ----------------------------------------------------------------------------------


def test_post_product_item_updates_its_fields_like_the_sdks_api_update(graph: Graph) -> None:
    product_id = graph.add("BOWL", 3)

    assert graph.ok("POST", product_id, quantity_to_sell_on_facebook=7, name="Big bowl", color="blue") == {
        "success": True
    }
    assert graph.ok("GET", product_id, fields="retailer_id,name,quantity_to_sell_on_facebook") == {
        "retailer_id": "BOWL",
        "name": "Big bowl",
        "quantity_to_sell_on_facebook": 7,
    }
    with graph.state.transaction():
        assert graph.state.catalog.snapshot()["BOWL"]["color"] == "blue"


def test_post_product_item_refuses_bad_values_and_unknown_fields(graph: Graph) -> None:
    product_id = graph.add("BOWL", 3)

    assert (
        "quantity_to_sell_on_facebook"
        in error(graph.call("POST", product_id, quantity_to_sell_on_facebook=-1))["message"]
    )
    unknown = error(graph.call("POST", product_id, quantity_to_sel_on_facebook=1))
    assert unknown["code"] == 100
    assert "quantity_to_sel_on_facebook" in unknown["message"]
    with graph.state.transaction():
        assert graph.state.catalog.snapshot()["BOWL"]["quantity_to_sell_on_facebook"] == 3


def test_get_catalog_answers_its_fields(graph: Graph) -> None:
    assert graph.ok("GET", CATALOG, fields="id,name,product_count,vertical") == {
        "id": CATALOG,
        "name": f"stocksync simulator catalog {CATALOG}",
        "product_count": 2,
        "vertical": "commerce",
    }
    assert set(graph.ok("GET", CATALOG)) == {"id", "name"}
    nonexisting = error(graph.call("GET", CATALOG, fields="id,owner"))
    assert nonexisting["code"] == 100
    assert "nonexisting field (owner)" in nonexisting["message"]


def test_get_order_answers_what_the_listing_answers(graph: Graph) -> None:
    graph.order("ORD-1", ("MUG", 2), ("CUP", 1))
    fields = "id,order_status,created,items{id,retailer_id,quantity}"

    listed = graph.ok("GET", f"{CMS}/commerce_orders", fields=fields)["data"]
    one = graph.ok("GET", "ORD-1", fields=fields)

    assert listed == [one]
    assert one["items"]["data"][0] == {"id": "ORD-1-1", "retailer_id": "MUG", "quantity": 2}
    assert set(graph.ok("GET", "ORD-1")) == {"id", "order_status", "created", "last_updated"}


def test_get_order_is_gone_with_the_order_api(graph: Graph) -> None:
    graph.order("ORD-1", ("MUG", 1))
    graph.api.commerce_orders_removed = True

    gone = error(graph.call("GET", "ORD-1"))

    assert (gone["code"], gone.get("error_subcode")) == (100, 33)


# -- item 2: parameters an endpoint does not take ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "refused"),
    [
        ("GET", f"{CATALOG}/products", {"fields": "id", "bulk_pagination": "true"}, "bulk_pagination"),
        ("GET", f"{CATALOG}/products", {"before": "abc"}, "before"),
        ("GET", f"{CATALOG}/check_batch_request_status", {"handle": "x", "error_priority": "HIGH"}, "error_priority"),
        ("POST", f"{CATALOG}/items_batch", {"item_type": "PRODUCT_ITEM", "requests": [], "version": 2}, "version"),
        ("GET", f"{CMS}/commerce_orders", {"updated_afterr": "1"}, "updated_afterr"),
        ("POST", f"{CMS}/acknowledge_orders", {"idempotency_key": "k", "orders": [], "force": "1"}, "force"),
        ("GET", "ORD-1/items", {"filter": "x"}, "filter"),
        ("POST", "ORD-1/cancellations", {"idempotency_key": "k", "restock": "true"}, "restock"),
        ("GET", CATALOG, {"segment_use_cases": "[]"}, "segment_use_cases"),
        ("GET", "ORD-1", {"limit": "1"}, "limit"),
    ],
)
def test_a_parameter_the_endpoint_does_not_take_is_refused_by_name(
    graph: Graph, method: str, path: str, params: dict[str, Any], refused: str
) -> None:
    graph.order("ORD-1", ("MUG", 1))

    refusal = error(graph.call(method, path, **params))

    assert refusal["code"] == 100
    assert f"Param {refused} " in refusal["message"]


def test_the_parameters_clients_send_still_work(graph: Graph) -> None:
    """What integrations/graph_api.py and the SDK's declared params send (fields, filter, limit, after, state,
    updated_after, load_ids_of_invalid_requests, allow_upsert) is taken."""
    graph.order("ORD-1", ("MUG", 1))
    graph.ok(
        "GET",
        f"{CATALOG}/products",
        fields="id,retailer_id",
        limit=1,
        filter={"retailer_id": {"is_any": ["MUG"]}},
    )
    graph.ok("GET", f"{CMS}/commerce_orders", fields="id", state="CREATED", updated_after=0, limit=5)
    handle = graph.ok(
        "POST",
        f"{CATALOG}/items_batch",
        item_type="PRODUCT_ITEM",
        allow_upsert="false",
        requests=[{"method": "UPDATE", "data": {"id": "MUG", "quantity_to_sell_on_facebook": 4}}],
    )["handles"][0]
    assert status(graph, handle, load_ids_of_invalid_requests="true")["status"] == "finished"


def test_check_batch_request_status_honours_fields(graph: Graph) -> None:
    handle = batch(graph, ("MUG", 4))

    assert status(graph, handle, fields="handle,status") == {"handle": handle, "status": "finished"}
    assert set(status(graph, handle)) == {
        "handle",
        "status",
        "errors",
        "errors_total_count",
        "warnings",
        "warnings_total_count",
        "ids_of_invalid_requests",
    }
    assert (
        "nonexisting field (line)"
        in error(graph.call("GET", f"{CATALOG}/check_batch_request_status", handle=handle, fields="line"))["message"]
    )


# -- item 5 -------------------------------------------------------------------------------------------------------


def test_a_cancellation_may_name_items_by_item_id(graph: Graph) -> None:
    graph.order("ORD-1", ("MUG", 3), ("CUP", 2))
    items = [{"item_id": "ORD-1-1", "quantity": 2}, {"retailer_id": "CUP", "quantity": 1}]

    assert graph.ok("POST", "ORD-1/cancellations", idempotency_key="k1", items=items, restock_items="true") == {
        "success": True
    }
    cancelled = graph.ok("GET", "ORD-1/cancellations", fields="items{retailer_id,quantity}")["data"][0]
    assert sorted((i["retailer_id"], i["quantity"]) for i in cancelled["items"]["data"]) == [("CUP", 1), ("MUG", 2)]

    unknown = error(graph.call("POST", "ORD-1/cancellations", idempotency_key="k2", items=[{"item_id": "NOPE"}]))
    assert (unknown["code"], "NOPE" in unknown["message"]) == (100, True)
    both = [{"item_id": "ORD-1-2", "retailer_id": "CUP", "quantity": 1}]  # "retailer_id or item_id, but not both"
    refused = error(graph.call("POST", "ORD-1/cancellations", idempotency_key="k3", items=both))
    assert (refused["code"], "not both" in refused["message"]) == (100, True)


def test_a_missing_proof_gets_graphs_own_message_and_a_wrong_one_its_own(graph: Graph) -> None:
    missing = error(graph.call("GET", CATALOG, signed=False, access_token=TOKEN))
    wrong = error(graph.call("GET", CATALOG, signed=False, access_token=TOKEN, appsecret_proof="ab" * 32))

    assert (missing["code"], missing["type"], missing["message"]) == (
        100,
        "GraphMethodException",
        "API calls from the server require an appsecret_proof argument",
    )
    assert (wrong["code"], wrong["type"], wrong["message"]) == (
        100,
        "GraphMethodException",
        "Invalid appsecret_proof provided in the API argument",
    )


def test_ids_of_invalid_requests_lists_one_id_per_error(graph: Graph) -> None:
    requests = [
        {"method": "UPDATE", "data": {"id": "GHOST", "quantity_to_sell_on_facebook": 1}},
        {"method": "UPDATE", "data": {"id": "CUP", "quantity_to_sell_on_facebook": -1, "visibility": "nope"}},
    ]
    handle = graph.ok("POST", f"{CATALOG}/items_batch", item_type="PRODUCT_ITEM", requests=requests)["handles"][0]

    report = status(graph, handle, load_ids_of_invalid_requests="true")

    assert report["errors_total_count"] == 3
    assert report["ids_of_invalid_requests"] == ["GHOST", "CUP", "CUP"]


@pytest.mark.parametrize(
    "updated_after",
    ["2026-11-01T10:30:00+0000", "2026-11-01 10:30:00+00:00", "2026-11-01T10:30:00Z", "2026-11-01T10:30:00"],
)
def test_updated_after_takes_an_iso_datetime_as_the_sdk_sends_it(graph: Graph, updated_after: str) -> None:
    graph.order("EARLY", ("MUG", 1))
    graph.advance(3600)
    graph.order("LATE", ("CUP", 1))
    as_unix = int((START + timedelta(minutes=30)).timestamp())

    by_date = graph.ok("GET", f"{CMS}/commerce_orders", fields="id", updated_after=updated_after)["data"]
    by_unix = graph.ok("GET", f"{CMS}/commerce_orders", fields="id", updated_after=as_unix)["data"]

    assert by_date == by_unix == [{"id": "LATE"}]
    assert error(graph.call("GET", f"{CMS}/commerce_orders", updated_after="yesterday"))["code"] == 100


def test_a_batch_is_scheduled_before_it_is_dispatched(graph: Graph) -> None:
    with graph.state.lock:
        graph.state.batches.processing_delay = timedelta(seconds=40)
        graph.state.batches.scheduled_fraction = 0.25
    handle = batch(graph, ("MUG", 4))

    seen = []
    for _ in range(4):
        seen.append(status(graph, handle)["status"])
        graph.advance(10)
    seen.append(status(graph, handle)["status"])

    assert seen == ["scheduled", "dispatched", "started", "started", "finished"]


def test_a_batch_canceled_or_failed_by_the_test_switch_never_lands(graph: Graph) -> None:
    with graph.state.lock:
        graph.state.batches.processing_delay = timedelta(seconds=40)
    canceled = batch(graph, ("MUG", 1))
    failed = batch(graph, ("CUP", 1))
    with graph.state.transaction() as now:
        graph.state.batches.cancel(canceled, now)
        graph.state.batches.fail(failed, now, "Batch processing failed")
    graph.advance(60)

    assert status(graph, canceled)["status"] == "canceled"
    failed_report = status(graph, failed)
    assert failed_report["status"] == "error"
    assert failed_report["errors"] == [{"message": "Batch processing failed"}]
    assert failed_report["errors_total_count"] == 1
    with graph.state.transaction() as now:
        snapshot = graph.state.catalog.snapshot()
        assert (snapshot["MUG"]["quantity_to_sell_on_facebook"], snapshot["CUP"]["quantity_to_sell_on_facebook"]) == (
            10,
            5,
        )
        with pytest.raises(ValueError, match="already ended"):
            graph.state.batches.cancel(canceled, now)
