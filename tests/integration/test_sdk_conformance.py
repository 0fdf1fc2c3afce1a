"""Meta's own Python SDK (facebook-business, pinned in constraints.txt) against the running simulator (issue 11).

The product's client is the lean ``requests`` one; this module keeps the simulator honest with a client we did not
write: every call goes through the SDK's objects (``ProductCatalog``, ``ProductItem``, ``CommerceMerchantSettings``,
``CommerceOrder``), and errors are parsed by the SDK into ``FacebookRequestError``. The SDK is a test dependency only
(the ``dev`` extra), never in the Lambda layer.

Pointing the SDK at the simulator: ``FacebookAdsApi`` builds every URL from its session's ``GRAPH`` attribute
(``facebook_business/api.py``, ``FacebookAdsApi.call``: ``url_override or self._session.GRAPH``), and its constructor
takes the session (its docstring: "FacebookSession object that contains a requests interface and attribute GRAPH").
So the tests build a ``FacebookSession`` with the simulator's credentials, set ``GRAPH`` on that instance only (no
class or module is patched), and hand it to ``FacebookAdsApi(session, api_version=...)``. ``FacebookAdsApi.init``
does the same plus installing the SDK's crash reporter (an excepthook that posts tracebacks to Meta), which a test
must not do, and it offers no way to pass the URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from facebook_business.adobjects.checkbatchrequeststatus import CheckBatchRequestStatus
from facebook_business.adobjects.commercemerchantsettings import CommerceMerchantSettings
from facebook_business.adobjects.commerceorder import CommerceOrder
from facebook_business.adobjects.productcatalog import ProductCatalog
from facebook_business.adobjects.productitem import ProductItem
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from stocksync_dev.simulator import CommercePlatformSimulator

pytestmark = [
    pytest.mark.integration,
    # The SDK declares items_batch's ``requests`` as a map while the reference documents an array of requests
    # (https://developers.facebook.com/docs/marketing-api/reference/product-catalog/items_batch/); it warns, then
    # sends the list JSON-encoded unchanged, which is what Graph takes.
    pytest.mark.filterwarnings("ignore:value of requests might not be compatible:UserWarning"),
]

TOKEN = "sim-token"
APP_SECRET = "sim-app-secret"
CATALOG = "1001"
CMS = "2001"
# Before Meta blocked the order endpoints on v26.0+ (2026-07-29, Graph API v26.0 changelog), so that the order
# calls are served on v25.0 whatever the simulator's removal date does.
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
# The order API is served up to v25.0; the catalog calls are made with the SDK's own default version.
ORDER_API_VERSION = "v25.0"


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        catalog_id=CATALOG,
        cms_id=CMS,
        access_token=TOKEN,
        app_secret=APP_SECRET,
        require_appsecret_proof=True,
        page_size=2,
        start=START,
    ) as simulator:
        simulator.add_product("SKU-1", quantity=5, name="Mug", price="9.00 EUR")
        simulator.add_product("SKU-2", quantity=3, name="Cup", price="7.00 EUR")
        simulator.add_product("SKU-3", quantity=0, name="Jug", price="12.00 EUR")
        yield simulator


def sdk_api(sim: CommercePlatformSimulator, api_version: str | None = None) -> FacebookAdsApi:
    """The SDK's API object pointed at the simulator: appsecret_proof is computed by the SDK's own session."""
    session = FacebookSession(access_token=TOKEN, app_secret=APP_SECRET)
    session.GRAPH = sim.url
    return FacebookAdsApi(session, api_version=api_version)


@pytest.fixture
def api(sim: CommercePlatformSimulator) -> FacebookAdsApi:
    return sdk_api(sim)


def product_id(catalog: ProductCatalog, retailer_id: str) -> str:
    rule = {"retailer_id": {"eq": retailer_id}}
    (product,) = catalog.get_products(fields=["id", "retailer_id"], params={"filter": rule})
    return str(product["id"])


def test_the_sdk_speaks_to_the_simulator_with_its_default_version_and_appsecret_proof(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    assert api.API_VERSION == "v26.0"  # facebook-business 26.0.3; the catalog calls below use it
    ProductCatalog(CATALOG, api=api).get_products(fields=["retailer_id"])
    method, path, params = sim.requests_log[-1]
    assert (method, path) == ("GET", f"/v26.0/{CATALOG}/products")
    assert "appsecret_proof" not in params  # the simulator logs no secrets, but it checked the proof


def test_create_items_batch_then_check_batch_request_status_through_the_sdk(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    catalog = ProductCatalog(CATALOG, api=api)
    requests = [
        {"method": "UPDATE", "data": {"id": "SKU-1", "quantity_to_sell_on_facebook": 7}},
        {"method": "UPDATE", "data": {"id": "GHOST", "quantity_to_sell_on_facebook": 1}},
    ]

    answer = catalog.create_items_batch(params={"item_type": "PRODUCT_ITEM", "requests": requests})
    (handle,) = answer["handles"]
    statuses = list(
        catalog.get_check_batch_request_status(params={"handle": handle, "load_ids_of_invalid_requests": True})
    )

    (status,) = statuses
    assert isinstance(status, CheckBatchRequestStatus)
    assert status[CheckBatchRequestStatus.Field.handle] == handle
    assert status[CheckBatchRequestStatus.Field.status] == "finished"
    assert status[CheckBatchRequestStatus.Field.errors_total_count] == 1
    assert status[CheckBatchRequestStatus.Field.ids_of_invalid_requests] == ["GHOST"]
    assert sim.catalog()["SKU-1"]["quantity_to_sell_on_facebook"] == 7


def test_get_products_honours_filter_and_pages_through_the_sdk_cursor(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    catalog = ProductCatalog(CATALOG, api=api)
    fields = [ProductItem.Field.retailer_id, "quantity_to_sell_on_facebook"]

    everything = list(catalog.get_products(fields=fields))  # page_size 2: the cursor follows paging.next
    picked = list(
        catalog.get_products(fields=fields, params={"filter": {"retailer_id": {"is_any": ["SKU-3", "SKU-1"]}}})
    )

    assert [p[ProductItem.Field.retailer_id] for p in everything] == ["SKU-1", "SKU-2", "SKU-3"]
    assert all(isinstance(p, ProductItem) for p in everything)
    assert [(p["retailer_id"], p["quantity_to_sell_on_facebook"]) for p in picked] == [("SKU-1", 5), ("SKU-3", 0)]


def test_product_item_api_get_reads_one_product_by_its_facebook_id(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    catalog = ProductCatalog(CATALOG, api=api)
    item_id = product_id(catalog, "SKU-2")

    item = ProductItem(item_id, api=api).api_get(fields=[ProductItem.Field.retailer_id, ProductItem.Field.name])

    assert (item["id"], item["retailer_id"], item["name"]) == (item_id, "SKU-2", "Cup")


def test_get_commerce_orders_lists_orders_as_commerce_order_objects(sim: CommercePlatformSimulator) -> None:
    api = sdk_api(sim, ORDER_API_VERSION)
    sim.place_order("o-1", [("SKU-1", 2)], state="CREATED")
    sim.advance(1)
    sim.place_order("o-2", [("SKU-2", 1)], state="CREATED")
    sim.advance(1)
    sim.place_order("o-3", [("SKU-2", 1)], state="FB_PROCESSING")

    orders = list(
        CommerceMerchantSettings(CMS, api=api).get_commerce_orders(
            fields=[CommerceOrder.Field.id, CommerceOrder.Field.order_status],
            params={"state": [CommerceOrder.State.created]},
        )
    )

    assert all(isinstance(order, CommerceOrder) for order in orders)
    assert [order["id"] for order in orders] == ["o-1", "o-2"]  # over two pages of the SDK's cursor
    assert orders[0]["order_status"]["state"] == "CREATED"


def test_get_commerce_orders_takes_updated_after_as_the_sdk_sends_a_datetime(sim: CommercePlatformSimulator) -> None:
    api = sdk_api(sim, ORDER_API_VERSION)
    sim.place_order("old", [("SKU-1", 1)], state="CREATED")
    sim.advance(60)
    since = sim.now()
    sim.advance(60)
    sim.place_order("new", [("SKU-1", 1)], state="CREATED")

    orders = CommerceMerchantSettings(CMS, api=api).get_commerce_orders(
        params={"state": [CommerceOrder.State.created], "updated_after": since}
    )

    assert [order["id"] for order in orders] == ["new"]


# (code, endpoint, the call through the SDK, the usage type in X-Business-Use-Case-Usage, its business object)
SDK_THROTTLES = [
    (80009, "check_batch_request_status", "status", "catalog_management", CATALOG),
    (80009, "products", "products", "catalog_management", CATALOG),
    (80001, "commerce_orders", "orders", "pages", CMS),
]


@pytest.mark.parametrize("case", SDK_THROTTLES, ids=lambda case: f"{case[0]}-{case[1]}")
def test_each_limit_reaches_the_sdk_with_its_own_code_and_usage_type(
    sim: CommercePlatformSimulator, case: tuple[int, str, str, str, str]
) -> None:
    code, endpoint, call, usage_type, business_id = case
    api = sdk_api(sim, ORDER_API_VERSION)
    catalog = ProductCatalog(CATALOG, api=api)
    sim.throttle_after(0, code=code, regain_minutes=7, endpoint=endpoint)
    calls = {
        "status": lambda: list(catalog.get_check_batch_request_status(params={"handle": "any"})),
        "products": lambda: list(catalog.get_products()),
        "orders": lambda: list(CommerceMerchantSettings(CMS, api=api).get_commerce_orders()),
    }

    with pytest.raises(FacebookRequestError) as caught:
        calls[call]()

    error = caught.value
    assert (error.api_error_code(), error.api_transient_error()) == (code, True)
    (usage,) = json.loads(error.http_headers()["X-Business-Use-Case-Usage"])[business_id]
    assert (usage["type"], usage["estimated_time_to_regain_access"]) == (usage_type, 7)


def test_the_app_limit_reaches_the_sdk_in_x_app_usage(sim: CommercePlatformSimulator, api: FacebookAdsApi) -> None:
    sim.throttle_after(0, code=4, regain_minutes=7)

    with pytest.raises(FacebookRequestError) as caught:
        list(ProductCatalog(CATALOG, api=api).get_products())

    error = caught.value
    assert (error.api_error_code(), error.api_error_message()) == (4, "(#4) Application request limit reached")
    assert json.loads(error.http_headers()["X-App-Usage"])["call_count"] == 100


def test_a_throttle_parses_into_facebook_request_error_with_code_type_transient_flag_trace_and_usage(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    sim.throttle_after(0, code=80014, regain_minutes=5, endpoint="items_batch")
    requests = [{"method": "UPDATE", "data": {"id": "SKU-1", "quantity_to_sell_on_facebook": 1}}]

    with pytest.raises(FacebookRequestError) as caught:
        ProductCatalog(CATALOG, api=api).create_items_batch(params={"item_type": "PRODUCT_ITEM", "requests": requests})

    error = caught.value
    assert error.http_status() == 400
    assert (error.api_error_code(), error.api_error_subcode(), error.api_error_type()) == (
        80014,
        None,
        "OAuthException",
    )
    assert error.api_transient_error() is True
    assert "too many calls for the batch uploads" in error.api_error_message()
    assert error.body()["error"]["fbtrace_id"]
    headers = error.http_headers()
    assert '"type": "catalog_batch"' in headers["X-Business-Use-Case-Usage"]
    assert '"estimated_time_to_regain_access": 5' in headers["X-Business-Use-Case-Usage"]
    assert "call_count" in headers["X-App-Usage"]


def test_an_invalid_parameter_parses_into_facebook_request_error_code_100(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    with pytest.raises(FacebookRequestError) as caught:
        list(ProductCatalog(CATALOG, api=api).get_products(params={"filter": {"name": {"i_contains": "mug"}}}))

    error = caught.value
    assert error.http_status() == 400
    assert (error.api_error_code(), error.api_error_type()) == (100, "OAuthException")
    assert not error.api_transient_error()
    assert "filter" in error.api_error_message()
    assert error.body()["error"]["fbtrace_id"]
    assert "X-App-Usage" in error.http_headers()


def test_an_unknown_object_parses_into_facebook_request_error_code_100_subcode_33(
    sim: CommercePlatformSimulator, api: FacebookAdsApi
) -> None:
    with pytest.raises(FacebookRequestError) as caught:
        ProductItem("999999999", api=api).api_get(fields=["retailer_id"])

    error = caught.value
    assert (error.api_error_code(), error.api_error_subcode(), error.api_error_type()) == (
        100,
        33,
        "GraphMethodException",
    )


# -- single-object calls (issue 11, item 1) ------------------------------------------------------------------------


def test_product_item_api_update_changes_the_product(sim: CommercePlatformSimulator, api: FacebookAdsApi) -> None:
    item_id = product_id(ProductCatalog(CATALOG, api=api), "SKU-1")

    ProductItem(item_id, api=api).api_update(params={"quantity_to_sell_on_facebook": 4})

    assert sim.catalog()["SKU-1"]["quantity_to_sell_on_facebook"] == 4


def test_product_catalog_api_get_reads_the_catalog_node(sim: CommercePlatformSimulator, api: FacebookAdsApi) -> None:
    catalog = ProductCatalog(CATALOG, api=api).api_get(fields=[ProductCatalog.Field.id, ProductCatalog.Field.name])

    assert catalog["id"] == CATALOG


def test_commerce_order_api_get_reads_one_order(sim: CommercePlatformSimulator) -> None:
    api = sdk_api(sim, ORDER_API_VERSION)
    sim.place_order("o-1", [("SKU-1", 1)], state="CREATED")

    order = CommerceOrder("o-1", api=api).api_get(fields=[CommerceOrder.Field.id, CommerceOrder.Field.order_status])

    assert order["id"] == "o-1"
    assert order["order_status"]["state"] == "CREATED"
