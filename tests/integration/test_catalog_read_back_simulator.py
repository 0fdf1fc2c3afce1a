"""Reading the catalog back, and the platform's timing, over real HTTP: GraphApiClient against the simulator.

What the product's catalog model and audit rely on, end to end through the wire: a batch lands inside its processing
delay (orders before it erased, after it kept) while the status stays unfinished; the filtered products listing
reads that result back in pages and resumes from a saved cursor after throttling; reads spend their own budget; the
platform deduction mode deducts unconfirmed orders and forgets acknowledged ones 30 minutes after the
acknowledgement. Waits are injected: the client's ``sleep`` moves the simulator's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.integrations.graph_api import GraphApiClient
from stocksync.integrations.graph_credentials import GraphCredentials, StaticCredentialsProvider
from stocksync.models.graph import BatchStatus, CatalogProduct, ItemUpdate, OrderAcknowledgement
from stocksync.models.graph_errors import GraphThrottledError
from stocksync_dev.simulator import CommercePlatformSimulator, OrderRefused

pytestmark = pytest.mark.integration

TOKEN, APP_SECRET = "sim-token", "sim-app-secret"
START = datetime(2026, 11, 23, 9, tzinfo=UTC)
FIELD = "quantity_to_sell_on_facebook"


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        access_token=TOKEN, app_secret=APP_SECRET, page_size=25, catalog_reads_per_hour=50, start=START
    ) as simulator:
        for n in range(1, 8):
            simulator.add_product(f"SKU-{n}", quantity=10 * n, name=f"SKU-{n}", price="1.00 USD")
        yield simulator


@pytest.fixture
def client(sim: CommercePlatformSimulator) -> GraphApiClient:
    credentials = GraphCredentials.model_validate({"access_token": TOKEN, "app_secret": APP_SECRET})
    return GraphApiClient(
        sim.url, "v25.0", StaticCredentialsProvider(credentials), sleep=sim.advance, random=lambda: 1.0
    )


def read_back(client: GraphApiClient, *retailer_ids: str) -> dict[str, int | None]:
    pages = client.list_products("1001", retailer_ids=list(retailer_ids), limit=2)
    return {product.retailer_id: product.quantity_to_sell_on_facebook for page in pages for product in page.products}


def test_a_batch_erases_orders_placed_before_it_lands_and_keeps_later_ones_while_it_reports_unfinished(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.batch_processing_delay = timedelta(seconds=60)
    (handle,) = client.items_batch(
        "1001",
        [ItemUpdate(retailer_id="SKU-1", fields={FIELD: 10}), ItemUpdate(retailer_id="SKU-2", fields={FIELD: 20})],
    ).handles

    sim.advance(10)
    sim.place_order("before", [("SKU-1", 3)])
    assert read_back(client, "SKU-1") == {"SKU-1": 7}
    sim.advance(20)  # halfway: the batch lands
    assert read_back(client, "SKU-1", "SKU-2") == {"SKU-1": 10, "SKU-2": 20}
    sim.advance(10)
    sim.place_order("after", [("SKU-2", 5)])
    statuses = [client.check_batch_request_status("1001", handle).status]
    sim.advance(19)
    statuses.append(client.check_batch_request_status("1001", handle).status)
    sim.advance(1)
    statuses.append(client.check_batch_request_status("1001", handle).status)

    assert statuses == [BatchStatus.STARTED, BatchStatus.STARTED, BatchStatus.FINISHED]
    assert read_back(client, "SKU-1", "SKU-2") == {"SKU-1": 10, "SKU-2": 15}
    timeline = sim.batches()[handle]
    assert timeline["applied_at"] == START + timedelta(seconds=30)
    assert timeline["ready_at"] == START + timedelta(seconds=60)
    raw = client.get("1001/check_batch_request_status", {"handle": handle})["data"][0]
    assert set(raw) == {
        "handle",
        "status",
        "errors",
        "errors_total_count",
        "warnings",
        "warnings_total_count",
        "ids_of_invalid_requests",
    }


def test_a_filtered_listing_cut_short_by_throttling_resumes_from_the_saved_cursor(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    wanted = ["SKU-7", "SKU-2", "SKU-5", "SKU-3", "GHOST"]
    seen: list[str] = []
    saved: str | None = None
    sim.throttle_after(2, code=80009, regain_minutes=15, endpoint="products")

    with pytest.raises(GraphThrottledError) as throttled:
        for page in client.list_products("1001", retailer_ids=wanted, limit=1):
            seen.extend(product.retailer_id for product in page.products)
            saved = page.after  # applied: the next run starts after it
    sim.advance(throttled.value.retry_after_seconds)
    pages = list(client.list_products("1001", retailer_ids=wanted, limit=1, after=saved))
    seen.extend(product.retailer_id for page in pages for product in page.products)

    assert throttled.value.code == 80009 and throttled.value.retry_after_seconds == 15 * 60
    assert seen == ["SKU-2", "SKU-3", "SKU-5", "SKU-7"]
    assert pages[-1].has_next is False


def test_reads_have_their_own_budget_so_a_read_storm_never_throttles_pushes(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    for _ in range(50):
        client.get("1001/products", {"limit": 1})

    with pytest.raises(GraphThrottledError) as throttled:
        next(client.list_products("1001"))
    usage = throttled.value.usage
    assert throttled.value.code == 80009
    assert usage is not None and usage.business_use_cases["1001"][0].type == "catalog_management"
    assert client.items_batch("1001", [ItemUpdate(retailer_id="SKU-1", fields={FIELD: 1})]).handles


def test_one_product_is_read_by_its_facebook_id(sim: CommercePlatformSimulator, client: GraphApiClient) -> None:
    (page,) = client.list_products("1001", retailer_ids=["SKU-4"])
    product_id = page.products[0].id

    item = CatalogProduct.model_validate(
        client.get(product_id, {"fields": "id,retailer_id,quantity_to_sell_on_facebook,visibility"})
    )

    assert (item.id, item.retailer_id, item.quantity_to_sell_on_facebook, item.visibility) == (
        product_id,
        "SKU-4",
        40,
        "published",
    )
    assert sim.calls[("GET", "product_item")] == 1


def test_the_platform_mode_deducts_unconfirmed_orders_and_forgets_acknowledged_ones_after_30_minutes(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.deduction_mode = "platform"
    sim.place_order("o-1", [("SKU-1", 6)], state="CREATED")
    sim.place_order("o-2", [("SKU-1", 3)])
    with pytest.raises(OrderRefused):
        sim.place_order("o-3", [("SKU-1", 2)])
    assert (read_back(client, "SKU-1"), sim.available("SKU-1")) == ({"SKU-1": 10}, 1)

    sim.advance(60)
    result = client.acknowledge_orders(
        "2001", [OrderAcknowledgement(id="o-1", merchant_order_reference="WH-1")], idempotency_key="ack-1"
    )
    assert result.failed == []
    assert sim.orders()["o-1"]["confirmed_at"] == START + timedelta(seconds=60)
    sim.advance(30 * 60 - 1)
    assert sim.available("SKU-1") == 1
    sim.advance(1)
    assert sim.available("SKU-1") == 7  # the acknowledged order left the count; o-2 is still unconfirmed
    sim.place_order("o-3", [("SKU-1", 2)])

    assert read_back(client, "SKU-1") == {"SKU-1": 10}  # the provided value, as uploaded
    assert sim.available("SKU-1") == 5
