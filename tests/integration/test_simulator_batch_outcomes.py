"""The batch statuses a real catalog can answer besides dispatched/started/finished (issue 11, item 5), over HTTP
through the product's own client: ``scheduled`` before processing starts, and ``canceled``/``error`` set by the
simulator's test switches (``cancel_batch``, ``fail_batch``), which the client must read as final states.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.integrations.graph_api import GraphApiClient
from stocksync.integrations.graph_credentials import GraphCredentials, StaticCredentialsProvider
from stocksync.models.graph import BatchStatus, ItemUpdate
from stocksync_dev.simulator import CommercePlatformSimulator

pytestmark = pytest.mark.integration

TOKEN = "sim-token"
APP_SECRET = "sim-app-secret"
CATALOG = "1001"


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        catalog_id=CATALOG,
        cms_id="2001",
        access_token=TOKEN,
        app_secret=APP_SECRET,
        require_appsecret_proof=True,
        page_size=25,
        batch_calls_per_hour=100,
        start=datetime(2026, 11, 1, 10, tzinfo=UTC),
    ) as simulator:
        simulator.add_product("SKU-1", quantity=10)
        simulator.add_product("SKU-2", quantity=10)
        simulator.batch_processing_delay = timedelta(seconds=60)
        yield simulator


@pytest.fixture
def client(sim: CommercePlatformSimulator) -> GraphApiClient:
    provider = StaticCredentialsProvider(
        GraphCredentials.model_validate({"access_token": TOKEN, "app_secret": APP_SECRET})
    )
    return GraphApiClient(sim.url, "v25.0", provider, sleep=sim.advance, random=lambda: 1.0, timeout=(2, 10))


def push(client: GraphApiClient, retailer_id: str, quantity: int) -> str:
    result = client.items_batch(
        CATALOG, [ItemUpdate(retailer_id=retailer_id, fields={"quantity_to_sell_on_facebook": quantity})]
    )
    (handle,) = result.handles
    return handle


def test_a_batch_reports_scheduled_then_dispatched_started_and_finished(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    sim.batch_scheduled_fraction = 0.25
    handle = push(client, "SKU-1", 4)

    seen = []
    for _ in range(4):
        seen.append(client.check_batch_request_status(CATALOG, handle).status)
        sim.advance(15)
    seen.append(client.check_batch_request_status(CATALOG, handle).status)

    assert seen == [
        BatchStatus.SCHEDULED,
        BatchStatus.DISPATCHED,
        BatchStatus.STARTED,
        BatchStatus.STARTED,
        BatchStatus.FINISHED,
    ]
    assert sim.catalog()["SKU-1"]["quantity_to_sell_on_facebook"] == 4


def test_canceled_and_failed_batches_are_final_and_change_nothing(
    sim: CommercePlatformSimulator, client: GraphApiClient
) -> None:
    canceled, failed = push(client, "SKU-1", 1), push(client, "SKU-2", 2)

    sim.cancel_batch(canceled)
    sim.fail_batch(failed, "Batch processing failed")
    sim.advance(120)

    canceled_status = client.check_batch_request_status(CATALOG, canceled)
    failed_status = client.check_batch_request_status(CATALOG, failed)
    assert (canceled_status.status, canceled_status.status.is_final) == (BatchStatus.CANCELED, True)
    assert (failed_status.status, failed_status.status.is_final) == (BatchStatus.ERROR, True)
    assert [error.message for error in failed_status.errors] == ["Batch processing failed"]
    assert failed_status.ids_of_invalid_requests == []
    catalog = sim.catalog()
    assert (catalog["SKU-1"]["quantity_to_sell_on_facebook"], catalog["SKU-2"]["quantity_to_sell_on_facebook"]) == (
        10,
        10,
    )
    with pytest.raises(ValueError, match="already ended"):
        sim.fail_batch(canceled)
    with pytest.raises(KeyError):
        sim.cancel_batch("no-such-handle")
