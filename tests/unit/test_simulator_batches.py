"""items_batch processing on the simulated platform: envelope checks, per-row rules, order and timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stocksync_dev.simulator.batches import BatchQueue, BatchRow, BatchStatus, apply_row, split_requests
from stocksync_dev.simulator.catalog import Catalog
from stocksync_dev.simulator.orders import OrderState
from stocksync_dev.simulator.platform_state import PlatformState

NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)


def catalog_with(**quantities: int) -> Catalog:
    catalog = Catalog()
    for retailer_id, quantity in quantities.items():
        catalog.create(
            retailer_id, {"title": retailer_id, "price": "1.00 USD", "quantity_to_sell_on_facebook": quantity}
        )
    return catalog


def update(retailer_id: str, line: int = 0, **fields: object) -> BatchRow:
    return BatchRow(line, "UPDATE", retailer_id, {"id": retailer_id, **fields})


def test_envelope_errors_are_split_off_with_their_retailer_id() -> None:
    rows, rejected = split_requests(
        [
            {"method": "UPDATE", "data": {"id": "A", "quantity_to_sell_on_facebook": 1}},
            {"method": "UPDATE", "data": {"quantity_to_sell_on_facebook": 1}},
            {"method": "UPSERT", "data": {"id": "B"}},
            {"method": "UPDATE", "retailer_id": "C", "data": "C"},
            "not an object",
            {"method": "DELETE", "data": {"id": 42}},
        ]
    )

    assert [(row.line, row.method, row.retailer_id) for row in rows] == [(0, "UPDATE", "A"), (5, "DELETE", "42")]
    assert [error.retailer_id for error in rejected] == [None, "B", None, None]
    assert "data.id" in rejected[0].message
    assert "method" in rejected[1].message


def test_an_update_overwrites_the_quantity_and_either_field_name_sets_it() -> None:
    catalog = catalog_with(A=5, B=5)

    assert apply_row(catalog, update("A", quantity_to_sell_on_facebook=2), allow_upsert=True) == []
    assert apply_row(catalog, update("B", inventory="7"), allow_upsert=True) == []

    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 2
    assert catalog.snapshot()["B"]["inventory"] == 7
    assert catalog.snapshot()["B"]["quantity_to_sell_on_facebook"] == 7


def test_invalid_values_name_the_field_and_change_nothing() -> None:
    catalog = catalog_with(A=5)

    for fields in ({"quantity_to_sell_on_facebook": -1}, {"inventory": "3.5"}, {"quantity_to_sell_on_facebook": True}):
        messages = apply_row(catalog, update("A", **fields), allow_upsert=True)
        assert len(messages) == 1
        assert next(iter(fields)) in messages[0]
    messages = apply_row(catalog, update("A", visibility="hidden", quantity_to_sell_on_facebook=1), allow_upsert=True)

    assert messages == ["Invalid value for field visibility: 'hidden' is not one of published, staging"]
    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 5


def test_an_update_of_an_unknown_product_is_not_found_unless_it_can_create_it() -> None:
    catalog = catalog_with()

    assert apply_row(catalog, update("NEW", quantity_to_sell_on_facebook=1), allow_upsert=True) == [
        "Product not found: NEW"
    ]
    assert apply_row(catalog, update("NEW", title="New", price="2.00 USD"), allow_upsert=False) == [
        "Product not found: NEW"
    ]
    assert apply_row(catalog, update("NEW", title="New", price="2.00 USD", quantity_to_sell_on_facebook=4), True) == []
    assert catalog.snapshot()["NEW"]["quantity_to_sell_on_facebook"] == 4


def test_create_needs_the_required_fields_and_delete_needs_the_product() -> None:
    catalog = catalog_with(A=1)

    assert apply_row(catalog, BatchRow(0, "CREATE", "NEW", {"id": "NEW", "title": "x"}), True) == [
        "Missing required field(s) for a new product: price"
    ]
    assert apply_row(catalog, BatchRow(1, "DELETE", "GHOST", {"id": "GHOST"}), True) == ["Product not found: GHOST"]
    assert apply_row(catalog, BatchRow(2, "DELETE", "A", {"id": "A"}), True) == []
    assert catalog.snapshot() == {}


def test_a_batch_is_applied_halfway_in_request_order_and_finishes_at_the_end_of_the_delay() -> None:
    catalog = catalog_with(A=5)
    queue = BatchQueue()
    queue.processing_delay = timedelta(seconds=30)
    handle = queue.accept(
        [
            update("A", 0, quantity_to_sell_on_facebook=1),
            update("GHOST", 1),
            update("A", 2, quantity_to_sell_on_facebook=3),
        ],
        allow_upsert=False,
        now=NOW,
    )
    job = queue.get(handle)
    assert job is not None

    queue.settle(NOW + timedelta(seconds=14), catalog)
    assert job.status(NOW + timedelta(seconds=14)) is BatchStatus.DISPATCHED
    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 5
    queue.settle(NOW + timedelta(seconds=15), catalog)
    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 3
    assert job.applied_at == NOW + timedelta(seconds=15)
    queue.settle(NOW + timedelta(seconds=29), catalog)
    assert job.status(NOW + timedelta(seconds=29)) is BatchStatus.STARTED

    queue.settle(NOW + timedelta(seconds=30), catalog)

    assert job.status(NOW + timedelta(seconds=30)) is BatchStatus.FINISHED
    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 3
    report = job.status_report(NOW, load_ids_of_invalid_requests=True)
    assert report["errors"] == [{"line": 1, "id": "GHOST", "message": "Product not found: GHOST"}]
    assert report["errors_total_count"] == 1
    assert report["ids_of_invalid_requests"] == ["GHOST"]
    assert job.status_report(NOW, load_ids_of_invalid_requests=False)["ids_of_invalid_requests"] == []


def test_a_later_batch_never_overtakes_an_earlier_one() -> None:
    catalog = catalog_with(A=5)
    queue = BatchQueue()
    queue.processing_delay = timedelta(minutes=5)
    slow = queue.accept([update("A", quantity_to_sell_on_facebook=1)], allow_upsert=True, now=NOW)
    queue.processing_delay = timedelta(0)
    fast = queue.accept(
        [update("A", quantity_to_sell_on_facebook=2)], allow_upsert=True, now=NOW + timedelta(seconds=1)
    )

    queue.settle(NOW + timedelta(seconds=2), catalog)
    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 5
    queue.settle(NOW + timedelta(minutes=5), catalog)

    assert catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 2
    assert all(queue.get(handle).finished for handle in (slow, fast))  # type: ignore[union-attr]


def test_the_error_sample_is_capped_but_the_count_and_ids_are_complete() -> None:
    catalog = catalog_with()
    queue = BatchQueue()
    handle = queue.accept([update(f"GHOST-{n}", n) for n in range(250)], allow_upsert=False, now=NOW)
    queue.settle(NOW, catalog)

    report = queue.get(handle).status_report(NOW, load_ids_of_invalid_requests=True)  # type: ignore[union-attr]

    assert len(report["errors"]) == 100
    assert report["errors_total_count"] == 250
    assert len(report["ids_of_invalid_requests"]) == 250


def test_an_upload_overwrites_sales_made_between_upload_and_processing() -> None:
    state = PlatformState(NOW, batch_calls_per_hour=100)
    state.catalog.create("A", {"title": "A", "price": "1.00 USD", "quantity_to_sell_on_facebook": 10})
    state.batches.processing_delay = timedelta(seconds=60)
    with state.transaction() as now:
        state.batches.accept([update("A", quantity_to_sell_on_facebook=10)], allow_upsert=True, now=now)
        state.place_order("o-1", [("A", 4)], OrderState.FB_PROCESSING, now)
        assert state.catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 6

    state.clock.advance(60)
    with state.transaction():
        assert state.catalog.snapshot()["A"]["quantity_to_sell_on_facebook"] == 10
