"""Reading the catalog back from the simulator: the products edge's retailer-id ``filter``, ``GET /{product_item_id}``,
and the read budget that is not the upload budget.

No sockets: requests go straight to the simulator's Graph front door (``GraphApi.handle``), as its HTTP server would
hand them over.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from stocksync_dev.simulator.graph_api import GraphApi
from stocksync_dev.simulator.graph_request import GraphResponse
from stocksync_dev.simulator.inventory import DeductionMode
from stocksync_dev.simulator.orders import OrderState
from stocksync_dev.simulator.platform_state import PlatformState

START = datetime(2026, 11, 1, 10, tzinfo=UTC)
CATALOG = "1001"
TOKEN, SECRET = "sim-token", "sim-app-secret"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
FIELDS = "retailer_id,quantity_to_sell_on_facebook,visibility"


class Graph:
    """Graph calls without HTTP: params are encoded as a client would, answers come back as ``GraphResponse``."""

    def __init__(self, *, catalog_reads_per_hour: int = 20_000, page_size: int = 2) -> None:
        self.state = PlatformState(START, batch_calls_per_hour=2, catalog_reads_per_hour=catalog_reads_per_hour)
        self.api = GraphApi(
            self.state,
            catalog_id=CATALOG,
            cms_id="2001",
            access_token=TOKEN,
            app_secret=SECRET,
            require_appsecret_proof=True,
            page_size=page_size,
        )

    def add(self, retailer_id: str, quantity: int, visibility: str = "published") -> str:
        fields = {"title": retailer_id, "price": "1.00 USD", "quantity_to_sell_on_facebook": quantity}
        with self.state.transaction():
            self.state.add_product(retailer_id, {**fields, "visibility": visibility})
            product = self.state.catalog.get(retailer_id)
            assert product is not None
            return product.product_id

    def call(self, method: str, path: str, **params: Any) -> GraphResponse:
        encoded = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in params.items()}
        signed = urlencode({**encoded, "access_token": TOKEN, "appsecret_proof": PROOF})
        target, body = (f"/v25.0/{path}?{signed}", b"") if method == "GET" else (f"/v25.0/{path}", signed.encode())
        return self.api.handle(
            method,
            target,
            content_type="application/x-www-form-urlencoded",
            authorization=None,
            body=body,
            base_url="http://sim.test",
        )

    def listing(self, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of the products edge, following ``paging.next`` as a client does."""
        pages = []
        while True:
            answer = self.call("GET", f"{CATALOG}/products", fields=FIELDS, **params)
            assert answer.status == 200, answer.body
            pages.append(answer.body["data"])
            next_url = answer.body.get("paging", {}).get("next")
            if next_url is None:
                return pages
            params = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items() if k != "fields"}


def error(answer: GraphResponse) -> dict[str, Any]:
    assert answer.status == 400, answer.body
    return answer.body["error"]


@pytest.fixture
def graph() -> Graph:
    graph = Graph()
    for retailer_id, quantity in (("SKU-1", 1), ("SKU-2", 2), ("SKU-3", 3), ("SKU-4", 4), ("SKU-5", 5)):
        graph.add(retailer_id, quantity)
    return graph


# -- the filter ---------------------------------------------------------------------------------------------------


def test_is_any_lists_only_those_retailer_ids_in_pages(graph: Graph) -> None:
    pages = graph.listing(filter={"retailer_id": {"is_any": ["SKU-5", "SKU-1", "SKU-4", "GHOST"]}})

    assert [[row["retailer_id"] for row in page] for page in pages] == [["SKU-1", "SKU-4"], ["SKU-5"]]
    assert pages[0][1] == {"retailer_id": "SKU-4", "quantity_to_sell_on_facebook": 4, "visibility": "published"}


def test_a_saved_after_cursor_resumes_a_filtered_listing(graph: Graph) -> None:
    rule = {"retailer_id": {"is_any": ["SKU-1", "SKU-2", "SKU-3"]}}
    first = graph.call("GET", f"{CATALOG}/products", fields=FIELDS, filter=rule)
    after = first.body["paging"]["cursors"]["after"]

    resumed = graph.call("GET", f"{CATALOG}/products", fields=FIELDS, filter=rule, after=after)

    assert [row["retailer_id"] for row in resumed.body["data"]] == ["SKU-3"]
    assert "next" not in resumed.body["paging"]


def test_eq_lists_one_product_and_a_number_is_taken_as_a_retailer_id(graph: Graph) -> None:
    graph.add("42", 7)

    assert graph.listing(filter={"retailer_id": {"eq": "SKU-2"}}) == [
        [{"retailer_id": "SKU-2", "quantity_to_sell_on_facebook": 2, "visibility": "published"}]
    ]
    assert graph.listing(filter={"retailer_id": {"eq": 42}})[0][0]["retailer_id"] == "42"
    assert graph.listing(filter={"retailer_id": {"eq": "GHOST"}}) == [[]]


@pytest.mark.parametrize(
    "rule",
    [
        "{not json",
        "[]",
        json.dumps({"name": {"i_contains": "shoe"}}),
        json.dumps({"retailer_id": {"is_any": []}}),
        json.dumps({"retailer_id": {"is_any": "SKU-1"}}),
        json.dumps({"retailer_id": {"is_any": ["SKU-1", None]}}),
        json.dumps({"retailer_id": {"eq": ""}}),
        json.dumps({"retailer_id": {"eq": True}}),
        json.dumps({"retailer_id": {"neq": "SKU-1"}}),
        json.dumps({"retailer_id": {"eq": "SKU-1", "is_any": ["SKU-2"]}}),
        json.dumps({"retailer_id": "SKU-1"}),
        json.dumps({"retailer_id": {"eq": "SKU-1"}, "visibility": {"eq": "published"}}),
    ],
)
def test_a_malformed_or_unsupported_filter_is_error_100_naming_the_parameter(graph: Graph, rule: str) -> None:
    answer = graph.call("GET", f"{CATALOG}/products", fields=FIELDS, filter=rule)

    refused = error(answer)
    assert refused["code"] == 100
    assert "filter" in refused["message"]


def test_in_the_platform_deduction_mode_the_listing_shows_the_provided_value(graph: Graph) -> None:
    graph.state.deduction_mode = DeductionMode.PLATFORM
    with graph.state.transaction() as now:
        graph.state.place_order("o-1", [("SKU-5", 2)], OrderState.CREATED, now)
        product = graph.state.catalog.get("SKU-5")
        assert product is not None
        available = graph.state.available(product, now)

    (page,) = graph.listing(filter={"retailer_id": {"eq": "SKU-5"}})

    assert (page[0]["quantity_to_sell_on_facebook"], available) == (5, 3)


# -- GET /{product_item_id} ---------------------------------------------------------------------------------------


def test_one_product_is_read_by_its_facebook_id_with_the_fields_of_the_products_edge(graph: Graph) -> None:
    product_id = graph.add("TEAPOT", 0, visibility="staging")

    full = graph.call("GET", product_id, fields=f"id,{FIELDS},inventory")
    default = graph.call("GET", product_id)
    unknown_field = graph.call("GET", product_id, fields="colour")

    assert full.status == 200
    assert full.body == {
        "id": product_id,
        "retailer_id": "TEAPOT",
        "quantity_to_sell_on_facebook": 0,
        "visibility": "staging",
        "inventory": 0,
    }
    assert default.body == {"id": product_id}
    assert error(unknown_field)["code"] == 100
    assert "(colour)" in error(unknown_field)["message"]
    assert graph.api.calls[("GET", "product_item")] == 3


def test_an_id_that_is_no_product_is_not_served(graph: Graph) -> None:
    product_id = graph.add("GONE", 1)
    with graph.state.transaction():
        graph.state.catalog.delete("GONE")

    # Graph's answer for an id it cannot load (what Meta's SDK parses from ProductItem.api_get of a deleted item).
    for unknown in (product_id, "7999999999999999"):
        answer = error(graph.call("GET", unknown))
        assert (answer["code"], answer["error_subcode"], answer["type"]) == (100, 33, "GraphMethodException")


# -- the read budget ----------------------------------------------------------------------------------------------


def test_reads_spend_their_own_budget_with_code_80009_and_never_the_upload_budget() -> None:
    graph = Graph(catalog_reads_per_hour=3)
    product_id = graph.add("SKU-1", 1)
    upload = {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": "GHOST"}}]}

    reads = [graph.call("GET", f"{CATALOG}/products"), graph.call("GET", product_id), graph.call("GET", product_id)]
    refused = graph.call("GET", f"{CATALOG}/products")
    uploaded = graph.call("POST", f"{CATALOG}/items_batch", **upload)
    graph.state.clock.advance(3600)
    regained = graph.call("GET", product_id)

    assert [answer.status for answer in reads] == [200, 200, 200]
    read_usage = json.loads(reads[0].headers["X-Business-Use-Case-Usage"])[CATALOG][0]
    assert (read_usage["type"], read_usage["call_count"]) == ("catalog_management", 34)
    assert (error(refused)["code"], error(refused)["is_transient"]) == (80009, True)
    refused_usage = json.loads(refused.headers["X-Business-Use-Case-Usage"])[CATALOG][0]
    assert (refused_usage["type"], refused_usage["estimated_time_to_regain_access"]) == ("catalog_management", 60)
    assert uploaded.status == 200
    upload_usage = json.loads(uploaded.headers["X-Business-Use-Case-Usage"])[CATALOG][0]
    assert (upload_usage["type"], upload_usage["call_count"]) == ("catalog_batch", 50)
    assert regained.status == 200
