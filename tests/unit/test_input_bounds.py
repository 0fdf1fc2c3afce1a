"""Ids and units at the edges: a control character in a retailer id, or units past MAX_UNITS, refused by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from stocksync.logic.order_ingest import LEDGER_RETENTION, OrderIngest
from stocksync.models.inventory import WarehouseLevel
from stocksync.models.orders import MAX_UNITS, OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.recompute import CatalogReadRequest, RecomputeRequest
from stocksync.models.sku import PushMessage, SkuSettingsChange, SkuState
from tests.fakes.ledger import InMemoryLedger
from tests.support import emitted_metrics, stepped_clock

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
EDGES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (OrderLine, {"quantity": 1}),
    (PushMessage, {"value": 1, "version": 1, "visibility": "published", "computed_at": T0}),
    (WarehouseLevel, {"level": 3, "as_of": T0}),
    (RecomputeRequest, {}),
    (CatalogReadRequest, {}),
    (SkuSettingsChange, {"as_of": T0, "bucket": "fast"}),
]


@pytest.mark.parametrize(("model", "rest"), EDGES, ids=lambda value: getattr(value, "__name__", ""))
@pytest.mark.parametrize(
    ("retailer_id", "character", "position"),
    [("SKU\x00-1", "U+0000", 3), ("SKU-1\n", "U+000A", 5), ("SK\tU", "U+0009", 2), ("S\x7fKU", "U+007F", 1)],
)
def test_a_control_character_is_refused_with_what_and_where(
    model: type[BaseModel], rest: dict[str, Any], retailer_id: str, character: str, position: int
) -> None:
    if retailer_id.endswith("\n"):
        retailer_id = f"{retailer_id}X"  # an outer newline is whitespace, stripped like a space; an inner one is not
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"retailer_id": retailer_id, **rest})
    (error,) = caught.value.errors()
    assert error["loc"] == ("retailer_id",)
    assert f"contains a control character ({character} at position {position})" in error["msg"]


@pytest.mark.parametrize(("model", "rest"), EDGES, ids=lambda value: getattr(value, "__name__", ""))
@pytest.mark.parametrize("retailer_id", ["SKU-1", "ACME SHOES/42 é", "x" * 100, "SKU\u200b1"])
def test_printable_ids_pass_unchanged(model: type[BaseModel], rest: dict[str, Any], retailer_id: str) -> None:
    assert model.model_validate({"retailer_id": retailer_id, **rest}).retailer_id == retailer_id  # type: ignore[attr-defined]


def test_surrounding_whitespace_is_still_stripped_and_101_characters_still_refused() -> None:
    assert OrderLine.model_validate({"retailer_id": " SKU-1\t", "quantity": 1}).retailer_id == "SKU-1"
    with pytest.raises(ValidationError, match="at most 100 characters"):
        OrderLine.model_validate({"retailer_id": "x" * 101, "quantity": 1})


# ------------------------------------------------------- units: at most MAX_UNITS, so never a DynamoDB overflow
UNIT_FIELDS: list[tuple[type[BaseModel], str, dict[str, Any]]] = [
    (OrderLine, "quantity", {"retailer_id": "SKU-1"}),
    (WarehouseLevel, "level", {"retailer_id": "SKU-1", "as_of": T0}),
    (SkuSettingsChange, "allocation_fixed", {"retailer_id": "SKU-1", "as_of": T0}),
]


@pytest.mark.parametrize(("model", "field", "rest"), UNIT_FIELDS, ids=lambda value: getattr(value, "__name__", value))
def test_units_up_to_the_bound_pass_and_past_it_are_refused_naming_the_field(
    model: type[BaseModel], field: str, rest: dict[str, Any]
) -> None:
    assert getattr(model.model_validate({field: MAX_UNITS, **rest}), field) == MAX_UNITS
    for too_many in (MAX_UNITS + 1, 10**12, 10**40):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({field: too_many, **rest})
        (error,) = caught.value.errors()
        assert error["loc"] == (field,)
        assert error["msg"] == "Input should be less than or equal to 1000000000"


# ------------------------------------------------------- a SKU listed twice in one levels event: the newest entry wins
def test_a_sku_listed_twice_keeps_its_newest_entry_and_a_tie_goes_to_the_later_one() -> None:
    from stocksync.logic.warehouse_input import newest_per_sku

    def level(sku: str, units: int, minute: int, sequence: int | None = None) -> WarehouseLevel:
        return WarehouseLevel(retailer_id=sku, level=units, as_of=T0.replace(minute=minute), sequence=sequence)

    entries = [
        level("A", 9, 5),  # newer than the A below: kept
        level("B", 1, 0),
        level("A", 3, 4),
        level("C", 4, 0, sequence=2),  # the greater sequence at the same as_of: kept
        level("C", 8, 0, sequence=1),
        level("B", 2, 0),  # a tie with the B above: the later entry wins
    ]
    kept, superseded = newest_per_sku(entries)
    assert [(entry.retailer_id, entry.level) for entry in kept] == [("A", 9), ("C", 4), ("B", 2)]
    assert superseded == 3
    assert newest_per_sku(entries[:2]) == (entries[:2], 0)


# ------------------------------------------------------- instants: at most now + MAX_CLOCK_SKEW, by the product's clock
def _sender_instants() -> list[tuple[str, Callable[[datetime], Any], str]]:
    """(name, build(instant), field named in the error) for every sender-stamped instant of every input."""
    from stocksync.integrations.order_sources import MerchantOrderEvent
    from stocksync.integrations.shopify import ShopifyOrder
    from stocksync.integrations.woocommerce import GenericOrder, WooOrder
    from stocksync.models.graph import CommerceOrder
    from stocksync.models.inventory import OrdersSyncedDetail

    def order_event(**times: datetime) -> Any:
        detail = {"order_id": "o-1", "state": "placed", "channel": "web", "occurred_at": T0, **times}
        return MerchantOrderEvent.model_validate(detail)

    def commerce_order(**times: datetime) -> Any:
        body = {
            "id": "10001",
            "order_status": {"state": "CREATED"},
            "created": T0,
            "last_updated": T0,
            "items": {"data": [{"id": "1", "retailer_id": "SKU-1", "quantity": 1}]},
            **times,
        }
        return CommerceOrder.model_validate(body)

    def shopify(**times: datetime) -> Any:
        return ShopifyOrder.model_validate({"id": 1, "created_at": T0, "updated_at": T0, "line_items": [], **times})

    def woo(**times: datetime) -> Any:
        return WooOrder.model_validate({"id": 1, "status": "processing", "date_modified_gmt": T0, **times})

    def generic(**times: datetime) -> Any:
        return GenericOrder.model_validate({"order_id": "g-1", "state": "placed", "updated_at": T0, **times})

    return [
        ("level", lambda at: WarehouseLevel(retailer_id="SKU-1", level=1, as_of=at), "as_of"),
        ("synced", lambda at: OrdersSyncedDetail(order_ids=["o-1"], as_of=at), "as_of"),
        ("settings", lambda at: SkuSettingsChange(retailer_id="SKU-1", as_of=at, bucket="fast"), "as_of"),
        ("event occurred_at", lambda at: order_event(occurred_at=at), "occurred_at"),
        ("event placed_at", lambda at: order_event(placed_at=at), "placed_at"),
        ("meta created", lambda at: commerce_order(created=at), "created"),
        ("meta last_updated", lambda at: commerce_order(last_updated=at), "last_updated"),
        ("shopify created_at", lambda at: shopify(created_at=at), "created_at"),
        ("shopify updated_at", lambda at: shopify(updated_at=at), "updated_at"),
        ("woocommerce date_created_gmt", lambda at: woo(date_created_gmt=at), "date_created_gmt"),
        ("woocommerce date_modified_gmt", lambda at: woo(date_modified_gmt=at), "date_modified_gmt"),
        ("generic updated_at", lambda at: generic(updated_at=at), "updated_at"),
        ("generic placed_at", lambda at: generic(placed_at=at), "placed_at"),
    ]


SENDER_INSTANTS = _sender_instants()


@pytest.mark.parametrize(("name", "build", "field"), SENDER_INSTANTS, ids=[case[0] for case in SENDER_INSTANTS])
def test_an_instant_past_the_skew_is_refused_naming_the_field_and_within_it_passes(
    name: str, build: Callable[[datetime], Any], field: str
) -> None:
    from stocksync.models.instants import MAX_CLOCK_SKEW

    now = T0 + timedelta(hours=1)
    with stepped_clock(now):
        build(now + MAX_CLOCK_SKEW)  # a sender's clock a little ahead: accepted
        build(datetime(1999, 1, 1, tzinfo=UTC))  # the past is for each input's own rule, not the model's
        for future in (now + MAX_CLOCK_SKEW + timedelta(seconds=1), datetime(2099, 1, 1, tzinfo=UTC)):
            with pytest.raises(ValidationError) as caught:
                build(future)
            (error,) = caught.value.errors()
            assert error["loc"][-1] == field
            assert "in the future (now is 2026-11-23T09:00:00+00:00); at most 5 minutes of clock skew" in error["msg"]


def test_the_bound_follows_the_products_clock_so_a_simulated_day_judges_by_its_own_time() -> None:
    tomorrow = T0 + timedelta(days=1)
    with stepped_clock(T0), pytest.raises(ValidationError, match="lies 24 hours in the future"):
        WarehouseLevel(retailer_id="SKU-1", level=1, as_of=tomorrow)
    with stepped_clock(tomorrow):
        assert WarehouseLevel(retailer_id="SKU-1", level=1, as_of=tomorrow).as_of == tomorrow


# ------------------------------------------------------- the past: orders the ledger lacks, beyond its retention
def _sighting(
    state: OrderState | None, *, placed_at: datetime | None, observed_at: datetime, synced: bool = False
) -> Any:
    return OrderObservation(
        order_id="o-1999",
        source=OrderSource.EVENTS,
        state=state,
        lines=(OrderLine(retailer_id="SKU-1", quantity=2),),
        placed_at=placed_at,
        observed_at=observed_at,
        synced=synced,
    )


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
Y1999 = datetime(1999, 6, 1, tzinfo=UTC)


def test_an_open_order_placed_in_1999_with_a_current_sighting_is_counted_normally() -> None:
    ledger = InMemoryLedger()
    receipt = OrderIngest(ledger, now=NOW).apply([_sighting(OrderState.CREATED, placed_at=Y1999, observed_at=NOW)])
    assert (receipt.applied, receipt.ignored, receipt.rejected) == (1, 0, [])
    assert ledger.counters["SKU-1"]["created"] == 2


def test_a_closed_order_placed_before_the_retention_and_not_in_the_ledger_is_ignored_and_reported(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from stocksync.observability import metrics

    ledger = InMemoryLedger()
    receipt = OrderIngest(ledger, now=NOW).apply(
        [
            _sighting(OrderState.COMPLETED, placed_at=Y1999, observed_at=NOW),
            _sighting(OrderState.CREATED, placed_at=Y1999, observed_at=NOW, synced=True).model_copy(
                update={"order_id": "o-synced"}
            ),
        ]
    )
    assert (receipt.applied, receipt.ignored, receipt.rejected) == (0, 2, [])
    assert ledger.rows == {} and ledger.sold == {}
    metrics.flush_metrics()
    out = capsys.readouterr().out
    assert emitted_metrics(out)["StockSync/OrdersBeyondRetention service=stocksync"] == [1.0, 1.0]
    assert caplog.text.count("closed order placed before the ledger retention") == 2


def test_an_open_sighting_whose_content_is_older_than_the_retention_is_refused_naming_occurred_at() -> None:
    ledger = InMemoryLedger()
    stale = NOW - LEDGER_RETENTION - timedelta(hours=1)
    receipt = OrderIngest(ledger, now=NOW).apply([_sighting(OrderState.CREATED, placed_at=Y1999, observed_at=stale)])
    ((_observation, error),) = receipt.rejected
    assert str(error).startswith("occurred_at: order o-1999: the sighting's content dates from ")
    assert "more than 90 days ago (the ledger's retention)" in str(error)
    assert ledger.rows == {}


def test_an_old_sighting_of_an_order_the_ledger_holds_merges_as_always() -> None:
    ledger = InMemoryLedger()
    OrderIngest(ledger, now=NOW).apply([_sighting(OrderState.CREATED, placed_at=Y1999, observed_at=NOW)])
    stale = NOW - LEDGER_RETENTION - timedelta(days=1)
    receipt = OrderIngest(ledger, now=NOW).apply(
        [_sighting(OrderState.FB_PROCESSING, placed_at=Y1999, observed_at=stale)]
    )
    assert (receipt.unchanged, receipt.rejected) == (1, [])  # an older state never moves the row back
    assert ledger.counters["SKU-1"] == {"processing": 0, "created": 2, "acknowledged": 0}


# ------------------------------------------------------- order ids namespaced by source: two systems never collide
def _meta(order_id: str, units: int = 2) -> OrderObservation:
    return OrderObservation(
        order_id=order_id,
        source=OrderSource.META_COMMERCE,
        state=OrderState.CREATED,
        lines=(OrderLine(retailer_id="SKU-1", quantity=units),),
        sold_on_platform=True,
        placed_at=NOW,
        observed_at=NOW,
    )


def _event(order_id: str, *, channel: str = "web", state: str = "placed", units: int = 2) -> OrderObservation:
    from stocksync.integrations.order_sources import merchant_order_event

    detail = {
        "order_id": order_id,
        "state": state,
        "channel": channel,
        "items": [{"retailer_id": "SKU-1", "quantity": units}],
        "occurred_at": NOW.isoformat(),
    }
    return merchant_order_event(detail, observed_at=NOW)


def _synced(*order_ids: str) -> list[OrderObservation]:
    return [
        OrderObservation(order_id=order_id, source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)
        for order_id in order_ids
    ]


def test_a_web_shop_order_reusing_a_meta_order_id_is_a_second_order() -> None:
    ledger = InMemoryLedger()
    ingest = OrderIngest(ledger, now=NOW)
    ingest.apply([_meta("10001")])
    receipt = ingest.apply([_event("10001")])
    assert (receipt.applied, receipt.rejected) == (1, [])
    assert sorted(ledger.rows) == [("10001", 0), ("events:10001", 0)]
    assert ledger.counters["SKU-1"]["created"] == 4  # two orders of 2 units: 4, not 2


def test_an_event_of_a_facebook_order_is_the_meta_order_itself_and_counts_once() -> None:
    ledger = InMemoryLedger()
    ingest = OrderIngest(ledger, now=NOW)
    ingest.apply([_meta("10001")])
    assert ingest.apply([_event("10001", channel="instagram")]).unchanged == 1
    assert sorted(ledger.rows) == [("10001", 0)] and ledger.counters["SKU-1"]["created"] == 2


def test_an_events_order_stored_under_its_bare_id_before_namespacing_keeps_its_row() -> None:
    ledger = InMemoryLedger()
    legacy = _event("web-7").model_copy(update={"order_id": "web-7"})  # as order_events wrote it before
    OrderIngest(ledger, now=NOW).apply([legacy])
    ingest = OrderIngest(ledger, now=NOW)
    assert ingest.apply([_event("web-7")]).unchanged == 1  # the same order: not counted twice
    ingest.apply([_event("web-7", state="completed")])
    assert sorted(ledger.rows) == [("web-7", 0)] and ledger.counters["SKU-1"]["created"] == 0


def test_a_sync_notice_finds_the_events_order_by_its_bare_id_and_a_stub_written_first_is_taken_by_it() -> None:
    ledger = InMemoryLedger()
    ingest = OrderIngest(ledger, now=NOW)
    ingest.apply([_event("web-1")])
    ingest.apply(_synced("web-1", "web-2"))  # web-2: the warehouse names it before any sighting
    ingest.apply([_event("web-2")])
    assert ledger.counters["SKU-1"]["created"] == 0
    assert sorted(ledger.rows) == [("events:web-1", 0), ("web-2", 0)]


def test_where_both_sources_hold_an_id_the_bare_id_syncs_the_meta_order_and_the_prefix_the_other() -> None:
    ledger = InMemoryLedger()
    ingest = OrderIngest(ledger, now=NOW)
    ingest.apply([_meta("10001", units=2), _event("10001", units=5)])
    ingest.apply(_synced("10001"))
    assert ledger.counters["SKU-1"]["created"] == 5
    ingest.apply(_synced("events:10001"))
    assert ledger.counters["SKU-1"]["created"] == 0
    assert ledger.rows[("10001", 0)].synced and ledger.rows[("events:10001", 0)].synced


# --------------------------------------------------- SKUs the catalog lacks: marked once, unpushed, unmarked if listed
def test_a_row_refused_as_an_unknown_retailer_id_marks_its_sku_once_and_a_newer_confirmation_prevents_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from stocksync.logic.pushing import not_in_catalog
    from stocksync.models.push import BatchEntry
    from stocksync.models.sku import Visibility
    from tests.fakes.push import MemorySkus

    skus = MemorySkus(
        [SkuState(retailer_id="GHOST", published_version=2), SkuState(retailer_id="OK", confirmed_version=3)]
    )

    def entry(rid: str, version: int) -> BatchEntry:
        return BatchEntry(retailer_id=rid, value=4, version=version, visibility=Visibility.PUBLISHED, computed_at=T0)

    not_in_catalog(skus, entry("GHOST", 2), "invalid_value")  # another permanent error: not a missing item
    assert skus.states["GHOST"].not_in_catalog_version is None
    not_in_catalog(skus, entry("GHOST", 2), "product_not_found")
    not_in_catalog(skus, entry("GHOST", 2), "product_not_found")  # a redelivery: already marked, not reported again
    not_in_catalog(skus, entry("OK", 2), "product_not_found")  # version 3 landed since: the item exists
    assert skus.states["GHOST"].not_in_catalog_version == 2 and skus.states["OK"].not_in_catalog_version is None
    assert caplog.text.count("the catalog has no item with this retailer id") == 1


def test_recompute_pushes_nothing_for_a_sku_marked_not_in_the_catalog_however_long_it_waits() -> None:
    from tests.unit.test_recompute import NOW as RECOMPUTE_NOW
    from tests.unit.test_recompute import FakePushes, FakeStore, service

    stuck = SkuState(
        retailer_id="GHOST",
        bucket="fast",
        warehouse_level=20,
        published_value=20,
        published_version=1,
        published_at=RECOMPUTE_NOW - timedelta(days=3),  # long past the confirmation timeout
        not_in_catalog_version=1,
    )
    store, pushes = (
        FakeStore([stuck, stuck.model_copy(update={"retailer_id": "OTHER", "not_in_catalog_version": None})]),
        FakePushes(),
    )
    recompute = service(store, pushes)
    for state in store.states.values():
        recompute.add(state)
    report = recompute.finish()
    assert [push.retailer_id for push in pushes.sent] == ["OTHER"]  # the same SKU unmarked is re-pushed
    assert report.not_in_catalog == 1


def test_a_catalog_read_that_lists_a_marked_sku_unmarks_it_and_asks_for_its_recompute() -> None:
    from tests.unit.test_catalog_reads import READ, Store, anchored, check, product

    class UnmarkingStore(Store):
        def __init__(self, states: Any) -> None:
            super().__init__(states)
            self.unmarked: list[str] = []

        def found_in_catalog(self, retailer_id: str) -> bool:
            self.unmarked.append(retailer_id)
            return True

    store = UnmarkingStore(
        [
            anchored("GHOST", 10).model_copy(update={"not_in_catalog_version": 2, "published_version": 2}),
            anchored("A", 10),
        ]
    )
    reads, recomputes = check(store)  # type: ignore[arg-type]
    reads.check([product("GHOST", 0), product("A", 10)], read_from=READ[0], read_to=READ[1])
    assert store.unmarked == ["GHOST"] and recomputes.asked == ["GHOST"]
    assert reads.report.back_in_catalog == ["GHOST"]


# ------------------------------------------------------- retailer ids within Meta's 100 characters, at every edge
@pytest.mark.parametrize(("model", "rest"), EDGES, ids=lambda value: getattr(value, "__name__", ""))
def test_a_retailer_id_past_metas_100_characters_is_refused_naming_the_field(
    model: type[BaseModel], rest: dict[str, Any]
) -> None:
    from stocksync.models.orders import MAX_RETAILER_ID_CHARACTERS

    assert MAX_RETAILER_ID_CHARACTERS == 100
    model.model_validate({"retailer_id": "x" * 100, **rest})
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"retailer_id": "x" * 101, **rest})
    (error,) = caught.value.errors()
    assert error["loc"] == ("retailer_id",) and error["msg"] == "String should have at most 100 characters"
