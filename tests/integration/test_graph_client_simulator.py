"""GraphApiClient over real HTTP against the Commerce Platform simulator (127.0.0.1 only).

Waits are injected: the client's ``sleep`` moves the simulator's clock instead of the test's, so throttling and
batch processing play out in simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from stocksync.integrations.graph_api import GraphApiClient
from stocksync.integrations.graph_credentials import GraphCredentials, StaticCredentialsProvider
from stocksync.models.graph import BatchStatus, CancelLine, CancelReasonCode, ItemUpdate, OrderAcknowledgement
from stocksync.models.graph_errors import (
    GraphAuthError,
    GraphEndpointRemovedError,
    GraphThrottledError,
    GraphTransientError,
    GraphValidationError,
)
from stocksync.models.orders import OrderState
from stocksync_dev.simulator import CommercePlatformSimulator

pytestmark = pytest.mark.integration

TOKEN = "sim-token"
APP_SECRET = "sim-app-secret"
OPEN_STATES = [OrderState.FB_PROCESSING, OrderState.CREATED, OrderState.IN_PROGRESS]


def credentials(token: str = TOKEN, app_secret: str = APP_SECRET) -> GraphCredentials:
    return GraphCredentials.model_validate({"access_token": token, "app_secret": app_secret})


class RotatedToken:
    """Hands out a stale token until a forced fetch, as a secret store does after the token was rotated."""

    def __init__(self) -> None:
        self.forced_fetches = 0

    def get(self, *, force_fetch: bool = False) -> GraphCredentials:
        self.forced_fetches += int(force_fetch)
        return credentials() if self.forced_fetches else credentials("stale-token")


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        catalog_id="1001",
        cms_id="2001",
        access_token=TOKEN,
        app_secret=APP_SECRET,
        require_appsecret_proof=True,
        page_size=25,
        batch_calls_per_hour=100,
    ) as simulator:
        yield simulator


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(sim: CommercePlatformSimulator, sleeps: list[float]) -> Callable[..., GraphApiClient]:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        sim.advance(seconds)

    def build(version: str = "v25.0", provider: Any = None, **options: Any) -> GraphApiClient:
        defaults: dict[str, Any] = {"sleep": sleep, "random": lambda: 1.0, "timeout": (2, 10)}
        return GraphApiClient(
            sim.url, version, provider or StaticCredentialsProvider(credentials()), **{**defaults, **options}
        )

    return build


@pytest.fixture
def client(make_client: Callable[..., GraphApiClient]) -> GraphApiClient:
    return make_client()


def test_orders_are_listed_over_several_pages_and_a_listing_resumes_from_a_cursor(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.add_product("SKU-1", quantity=1000)
    sim.add_product("SKU-2", quantity=1000)
    for n in range(60):
        sim.place_order(
            f"o-{n:02d}", [("SKU-1", 1 + n % 3), ("SKU-2", 1)], state="CREATED" if n % 2 else "FB_PROCESSING"
        )
        sim.advance(1)
    sim.place_order("done", [("SKU-1", 1)], state="CREATED")
    sim.move_order("done", "COMPLETED")

    pages = list(client.list_commerce_orders("2001", states=OPEN_STATES))

    assert [len(page.orders) for page in pages] == [25, 25, 10]
    assert [page.has_next for page in pages] == [True, True, False]
    assert all(page.rejected == [] for page in pages)
    orders = [order for page in pages for order in page.orders]
    assert [order.id for order in orders] == [f"o-{n:02d}" for n in range(60)]  # oldest change first
    assert orders[4].items.data[0].quantity == 2 and orders[4].state is OrderState.FB_PROCESSING
    assert orders[5].state is OrderState.CREATED
    assert orders[0].created.utcoffset() == timedelta(0)
    assert sim.calls[("GET", "commerce_orders")] == 3

    resumed = list(client.list_commerce_orders("2001", states=OPEN_STATES, after=pages[0].after))
    assert [order.id for page in resumed for order in page.orders] == [f"o-{n:02d}" for n in range(25, 60)]


def test_updated_after_limits_the_listing_to_recent_changes(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.add_product("SKU-1", quantity=10)
    sim.place_order("old", [("SKU-1", 1)], state="CREATED")
    sim.advance(60)
    since = sim.now()
    sim.advance(60)
    sim.place_order("new", [("SKU-1", 1)], state="CREATED")
    pages = list(client.list_commerce_orders("2001", states=[OrderState.CREATED], updated_after=since))
    assert [order.id for page in pages for order in page.orders] == ["new"]


def test_acknowledge_then_cancel_round_trip(sim: CommercePlatformSimulator, client: GraphApiClient) -> None:
    sim.add_product("SKU-1", quantity=10)
    sim.place_order("o-1", [("SKU-1", 3)], state="CREATED")
    sim.place_order("o-2", [("SKU-1", 1)], state="FB_PROCESSING")

    result = client.acknowledge_orders(
        "2001",
        [
            OrderAcknowledgement(id="o-1", merchant_order_reference="WH-1"),
            OrderAcknowledgement(id="o-2", merchant_order_reference="WH-2"),
        ],
        idempotency_key="ack-1",
    )
    assert [(o.id, o.state) for o in result.orders if o.error is None] == [("o-1", OrderState.IN_PROGRESS)]
    assert [o.id for o in result.failed] == ["o-2"]
    assert sim.orders()["o-1"]["state"] == "IN_PROGRESS"

    for _ in range(2):  # the retry of a lost answer: same key, no second cancellation
        client.cancel_order(
            "o-1",
            [CancelLine(retailer_id="SKU-1", quantity=1)],
            reason_code=CancelReasonCode.OUT_OF_STOCK,
            reason_description="sold in the shop",
            restock_items=True,
            idempotency_key="cancel-o-1",
        )
    assert len(sim.orders()["o-1"]["cancellations"]) == 1

    (page,) = client.list_commerce_orders("2001", states=[OrderState.IN_PROGRESS])
    (order,) = page.orders
    (cancellation,) = order.cancellations.data
    assert cancellation.restock_items is True
    assert cancellation.items.data[0].retailer_id == "SKU-1" and cancellation.items.data[0].quantity == 1
    assert cancellation.cancel_reason is not None and cancellation.cancel_reason.reason_code == "OUT_OF_STOCK"


def test_items_batch_is_processed_asynchronously_and_reports_row_errors(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.add_product("SKU-1", quantity=10)
    sim.add_product("SKU-2", quantity=10)
    sim.batch_processing_delay = timedelta(seconds=60)

    result = client.items_batch(
        "1001",
        [
            ItemUpdate(retailer_id="SKU-1", fields={"quantity_to_sell_on_facebook": 4}),
            ItemUpdate(retailer_id="SKU-2", fields={"quantity_to_sell_on_facebook": 0, "visibility": "staging"}),
            ItemUpdate(retailer_id="SKU-404", fields={"quantity_to_sell_on_facebook": 1}),
        ],
    )
    (handle,) = result.handles
    assert client.check_batch_request_status("1001", handle).status is BatchStatus.DISPATCHED
    assert sim.catalog()["SKU-1"]["quantity_to_sell_on_facebook"] == 10

    sim.advance(61)
    status = client.check_batch_request_status("1001", handle)
    assert status.status is BatchStatus.FINISHED and status.status.is_final
    assert status.errors_total_count == 1 and status.ids_of_invalid_requests == ["SKU-404"]
    assert status.errors[0].id == "SKU-404"
    catalog = sim.catalog()
    assert catalog["SKU-1"]["quantity_to_sell_on_facebook"] == 4
    assert catalog["SKU-2"]["quantity_to_sell_on_facebook"] == 0 and catalog["SKU-2"]["visibility"] == "staging"
    assert "SKU-404" not in catalog  # allow_upsert is off by default


def test_real_time_product_update_and_product_listing(sim: CommercePlatformSimulator, client: GraphApiClient) -> None:
    for n in range(30):
        sim.add_product(f"SKU/{n:02d}+ü", quantity=n)
    client.update_product("1001", "SKU/07+ü", {"quantity_to_sell_on_facebook": 99})
    assert sim.catalog()["SKU/07+ü"]["quantity_to_sell_on_facebook"] == 99
    assert sim.calls[("POST", "catalog_item")] == 1

    pages = list(client.list_products("1001"))
    assert [len(page.products) for page in pages] == [25, 5]
    quantities = {p.retailer_id: p.quantity_to_sell_on_facebook for page in pages for p in page.products}
    assert quantities["SKU/07+ü"] == 99 and quantities["SKU/29+ü"] == 29
    assert client.usage_percent >= 1  # the simulator sends usage headers on every answer


def test_appsecret_proof_and_token_are_checked(make_client: Callable[..., GraphApiClient]) -> None:
    wrong_secret = make_client(provider=StaticCredentialsProvider(credentials(app_secret="not-the-secret")))
    with pytest.raises(GraphAuthError, match="appsecret_proof") as caught:
        wrong_secret.get("1001/products")
    assert caught.value.code == 100
    wrong_token = make_client(provider=StaticCredentialsProvider(credentials(token="bad-token")))
    with pytest.raises(GraphAuthError) as caught:
        wrong_token.get("1001/products")
    assert caught.value.code == 190 and "bad-token" not in str(caught.value)


def test_rotated_token_is_fetched_again_and_the_call_succeeds(
    sim: CommercePlatformSimulator, make_client: Callable[..., GraphApiClient]
) -> None:
    provider = RotatedToken()
    client = make_client(provider=provider)
    assert client.get("1001/products") == {"data": []}
    assert provider.forced_fetches == 1 and sim.calls[("GET", "products")] == 2


def test_transient_failures_are_retried_then_given_up(
    sim: CommercePlatformSimulator, make_client: Callable[..., GraphApiClient], sleeps: list[float]
) -> None:
    client = make_client(max_attempts=3)
    sim.fail_next(2, status=500, code=2, endpoint="products")
    assert client.get("1001/products") == {"data": []}
    assert sleeps == [0.5, 1.0]  # random() = 1.0: the full backoff ceiling

    sim.fail_next(3, status=503, code=1)
    with pytest.raises(GraphTransientError) as caught:
        client.get("1001/products")
    assert caught.value.code == 1 and caught.value.http_status == 503
    assert sim.calls[("GET", "products")] == 6


def test_short_throttle_is_waited_out_inline_until_access_is_regained(
    sim: CommercePlatformSimulator, make_client: Callable[..., GraphApiClient], sleeps: list[float]
) -> None:
    client = make_client(max_inline_wait=90)
    sim.throttle_after(1, code=80009, regain_minutes=1)  # the products listing's own limit, catalog management
    client.get("1001/products")
    assert client.get("1001/products") == {"data": []}
    assert sleeps == [60.0]  # one minute announced in X-Business-Use-Case-Usage
    assert sim.calls[("GET", "products")] == 3


def test_long_throttle_is_raised_at_once_and_clears_after_the_announced_time(
    sim: CommercePlatformSimulator, client: GraphApiClient, sleeps: list[float]
) -> None:
    sim.throttle_after(0, code=80004, regain_minutes=5)
    with pytest.raises(GraphThrottledError) as caught:
        client.get("1001/products")
    assert caught.value.retry_after_seconds == 300 and caught.value.code == 80004
    assert sleeps == [] and client.usage_percent == 100
    sim.advance(caught.value.retry_after_seconds)
    assert client.get("1001/products") == {"data": []}


def test_batch_call_budget_throttles_items_batch_until_the_hour_rolls() -> None:
    with CommercePlatformSimulator(access_token=TOKEN, app_secret=APP_SECRET, batch_calls_per_hour=2) as sim:
        sim.add_product("SKU-1", quantity=1)
        client = GraphApiClient(sim.url, "v25.0", StaticCredentialsProvider(credentials()), sleep=sim.advance)
        update = [ItemUpdate(retailer_id="SKU-1", fields={"quantity_to_sell_on_facebook": 2})]
        client.items_batch("1001", update)
        client.items_batch("1001", update)
        with pytest.raises(GraphThrottledError) as caught:
            client.items_batch("1001", update)
        assert caught.value.code == 80014 and caught.value.retry_after_seconds == 3600
        assert client.usage_percent == 100
        sim.advance(3600)
        assert client.items_batch("1001", update).handles


def test_commerce_orders_removed_from_v26(
    sim: CommercePlatformSimulator, make_client: Callable[..., GraphApiClient]
) -> None:
    with pytest.raises(GraphEndpointRemovedError) as caught:
        next(make_client("v26.0").list_commerce_orders("2001", states=OPEN_STATES))
    assert caught.value.code == 12
    current = make_client("v25.0")
    assert next(current.list_commerce_orders("2001", states=OPEN_STATES)).orders == []
    sim.commerce_orders_removed = True
    with pytest.raises(GraphEndpointRemovedError):
        next(current.list_commerce_orders("2001", states=OPEN_STATES))
    assert current.items_batch(
        "1001", [ItemUpdate(retailer_id="X", fields={"quantity_to_sell_on_facebook": 1})]
    ).handles


def test_unknown_object_is_a_validation_error(client: GraphApiClient) -> None:
    with pytest.raises(GraphValidationError) as caught:
        client.get("9999/products")
    assert caught.value.code == 100 and caught.value.subcode == 33
