"""Each rate limit the product meets, over real HTTP, as the product's own client parses it (issue 11, item 4).

The limits, their codes and usage-header types are described (with sources) in ``stocksync_dev.simulator.rate_limits``:
catalog_batch (80014), catalog_management (80009), pages (80001) in ``X-Business-Use-Case-Usage``, and the app's
code 4 in ``X-App-Usage``. Every throttle must reach the product as ``GraphThrottledError`` with the wait the answer
announced (or, for the app limit, which announces none, the client's backoff).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from stocksync.integrations.graph_api import GraphApiClient
from stocksync.integrations.graph_credentials import GraphCredentials, StaticCredentialsProvider
from stocksync.models.graph import ItemUpdate
from stocksync.models.graph_errors import GraphThrottledError
from stocksync.models.orders import OrderState
from stocksync_dev.simulator import CommercePlatformSimulator

pytestmark = pytest.mark.integration

TOKEN = "sim-token"
APP_SECRET = "sim-app-secret"
CATALOG = "1001"
CMS = "2001"
UPDATE = [ItemUpdate(retailer_id="SKU-1", fields={"quantity_to_sell_on_facebook": 2})]


def credentials() -> GraphCredentials:
    return GraphCredentials.model_validate({"access_token": TOKEN, "app_secret": APP_SECRET})


def simulator(**knobs: Any) -> CommercePlatformSimulator:
    sim = CommercePlatformSimulator(catalog_id=CATALOG, cms_id=CMS, access_token=TOKEN, app_secret=APP_SECRET, **knobs)
    sim.add_product("SKU-1", quantity=1)
    return sim


def client_for(sim: CommercePlatformSimulator) -> GraphApiClient:
    """One attempt, so each throttle is raised with the wait the client computed from the answer."""
    return GraphApiClient(
        sim.url,
        "v25.0",
        StaticCredentialsProvider(credentials()),
        max_attempts=1,
        sleep=sim.advance,
        random=lambda: 1.0,
    )


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with simulator() as started:
        yield started


def list_orders(client: GraphApiClient) -> None:
    list(client.list_commerce_orders(CMS, states=[OrderState.CREATED]))


def poll_status(client: GraphApiClient) -> None:
    handle = client.items_batch(CATALOG, UPDATE).handles[0]
    client.check_batch_request_status(CATALOG, handle)


# (code, endpoint the switch targets, the call, the usage type the answer must report, the business object)
SWITCHED: list[tuple[int, str, Callable[[GraphApiClient], Any], str, str]] = [
    (80014, "items_batch", lambda client: client.items_batch(CATALOG, UPDATE), "catalog_batch", CATALOG),
    (80009, "products", lambda client: client.get(f"{CATALOG}/products"), "catalog_management", CATALOG),
    (80009, "check_batch_request_status", poll_status, "catalog_management", CATALOG),
    (80001, "commerce_orders", list_orders, "pages", CMS),
    # The order listing throttled with the ad-account code, as older scenarios arm it: the header says so.
    (80004, "commerce_orders", list_orders, "ads_management", CMS),
    # A catalog code armed on an order endpoint still reports the catalog use case: the code decides, not the path.
    (80014, "commerce_orders", list_orders, "catalog_batch", CMS),
]


@pytest.mark.parametrize("case", SWITCHED, ids=lambda case: f"{case[0]}-{case[1]}")
def test_a_throttle_switch_reports_the_usage_header_of_its_code_and_the_client_waits_as_announced(
    sim: CommercePlatformSimulator, case: tuple[int, str, Callable[[GraphApiClient], Any], str, str]
) -> None:
    code, endpoint, call, usage_type, business_id = case
    client = client_for(sim)
    sim.throttle_after(0, code=code, regain_minutes=5, endpoint=endpoint)

    with pytest.raises(GraphThrottledError) as caught:
        call(client)

    error = caught.value
    assert (error.code, error.retry_after_seconds) == (code, 300)
    assert error.usage is not None
    (entry,) = error.usage.business_use_cases[business_id]
    assert (entry.type, entry.call_count, entry.estimated_time_to_regain_access) == (usage_type, 100, 5)
    assert error.usage.app is not None and error.usage.app.call_count < 100  # a BUC throttle leaves the app alone


def test_the_app_limit_fills_x_app_usage_and_announces_no_wait_so_the_client_backs_off(
    sim: CommercePlatformSimulator,
) -> None:
    client = client_for(sim)
    sim.throttle_after(0, code=4, regain_minutes=5)

    with pytest.raises(GraphThrottledError) as caught:
        client.get(f"{CATALOG}/products")

    error = caught.value
    assert error.code == 4
    assert error.retry_after_seconds == 0.5  # the client's first backoff: X-App-Usage has no time to regain access
    assert error.usage is not None and error.usage.app is not None
    assert (error.usage.app.call_count, error.usage.app.total_time) == (100, 100)
    (entry,) = error.usage.business_use_cases[CATALOG]
    assert (entry.type, entry.estimated_time_to_regain_access) == ("catalog_management", 0)


@pytest.mark.parametrize("code", [17, 32, 613])
def test_codes_without_a_usage_header_of_their_own_are_throttles_the_client_backs_off_from(
    sim: CommercePlatformSimulator, code: int
) -> None:
    client = client_for(sim)
    sim.throttle_after(0, code=code, regain_minutes=5, endpoint="products")

    with pytest.raises(GraphThrottledError) as caught:
        client.get(f"{CATALOG}/products")

    assert (caught.value.code, caught.value.retry_after_seconds) == (code, 0.5)


def test_status_polling_spends_the_catalog_management_budget_and_not_the_upload_one() -> None:
    with simulator(catalog_reads_per_hour=3, batch_calls_per_hour=100) as sim:
        client = client_for(sim)
        handle = client.items_batch(CATALOG, UPDATE).handles[0]
        for _ in range(3):
            client.check_batch_request_status(CATALOG, handle)

        with pytest.raises(GraphThrottledError) as polled:
            client.check_batch_request_status(CATALOG, handle)
        with pytest.raises(GraphThrottledError) as read:
            client.get(f"{CATALOG}/products")  # the reads share the budget
        assert client.items_batch(CATALOG, UPDATE).handles  # uploads have their own

        for caught in (polled, read):
            assert (caught.value.code, caught.value.retry_after_seconds) == (80009, 3600)
            assert caught.value.usage is not None
            (entry,) = caught.value.usage.business_use_cases[CATALOG]
            assert (entry.type, entry.estimated_time_to_regain_access) == ("catalog_management", 60)
        sim.advance(3600)
        assert client.check_batch_request_status(CATALOG, handle).handle == handle


def test_the_upload_budget_throttles_items_batch_with_80014_and_leaves_status_polling_alone() -> None:
    with simulator(batch_calls_per_hour=1) as sim:
        client = client_for(sim)
        handle = client.items_batch(CATALOG, UPDATE).handles[0]
        sim.advance(600)

        with pytest.raises(GraphThrottledError) as caught:
            client.items_batch(CATALOG, UPDATE)

        assert (caught.value.code, caught.value.retry_after_seconds) == (80014, 50 * 60)
        assert caught.value.usage is not None
        (entry,) = caught.value.usage.business_use_cases[CATALOG]
        assert (entry.type, entry.estimated_time_to_regain_access) == ("catalog_batch", 50)
        assert client.check_batch_request_status(CATALOG, handle).handle == handle


def test_ordinary_answers_report_the_use_case_of_their_endpoint(sim: CommercePlatformSimulator) -> None:
    client = client_for(sim)

    client.items_batch(CATALOG, UPDATE)
    upload_usage = client.last_usage
    client.get(f"{CATALOG}/products")
    read_usage = client.last_usage
    list_orders(client)
    order_usage = client.last_usage

    assert upload_usage is not None and read_usage is not None and order_usage is not None
    assert [u.type for u in upload_usage.business_use_cases[CATALOG]] == ["catalog_batch"]
    assert [u.type for u in read_usage.business_use_cases[CATALOG]] == ["catalog_management"]
    assert [u.type for u in order_usage.business_use_cases[CMS]] == ["pages"]


def test_the_catalog_node_spends_the_catalog_management_budget_and_the_order_node_reports_pages() -> None:
    with simulator(catalog_reads_per_hour=2) as sim:
        client = client_for(sim)
        sim.place_order("o-1", [("SKU-1", 1)], state="CREATED")
        client.get(CATALOG)
        client.get(f"{CATALOG}/products")

        with pytest.raises(GraphThrottledError) as caught:
            client.get(CATALOG)
        client.get("o-1")

        assert (caught.value.code, caught.value.retry_after_seconds) == (80009, 3600)
        assert client.last_usage is not None
        assert [u.type for u in client.last_usage.business_use_cases[CMS]] == ["pages"]


def test_every_status_answer_reports_the_catalog_management_usage_not_only_the_throttled_one(
    sim: CommercePlatformSimulator,
) -> None:
    handle = client_for(sim).items_batch(CATALOG, UPDATE).handles[0]
    proof = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    answer = requests.get(
        f"{sim.url}/v25.0/{CATALOG}/check_batch_request_status",
        params={"handle": handle, "access_token": TOKEN, "appsecret_proof": proof},
        timeout=10,
    )
    assert answer.status_code == 200
    (entry,) = json.loads(answer.headers["X-Business-Use-Case-Usage"])[CATALOG]
    assert entry["type"] == "catalog_management"
