"""Reading the catalog back, against in-memory ports: what is compared, what is skipped, what is anchored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from stocksync.errors import InvalidInputError
from stocksync.logic.batch_budget import CallGrant
from stocksync.logic.catalog_reads import CatalogCheck, audit_catalog, read_back
from stocksync.models.graph import CatalogProduct, ProductPage, RejectedRecord
from stocksync.models.graph_errors import GraphThrottledError
from stocksync.models.settings import DeductionMode
from stocksync.models.sku import PlatformMove, SkuState, Visibility

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)
READ = (T0 + timedelta(minutes=10), T0 + timedelta(minutes=10, seconds=1))


def anchored(rid: str, value: int, **fields: Any) -> SkuState:
    """A SKU whose push of ``value`` landed between T0 and T0 + 1 min; nothing in flight."""
    return SkuState(
        retailer_id=rid,
        bucket="fast",
        published_value=value,
        published_version=1,
        confirmed_value=value,
        confirmed_version=1,
        catalog_value=value,
        catalog_from=T0,
        catalog_to=T0 + timedelta(minutes=1),
        **fields,
    )


def product(rid: str, quantity: int | None, visibility: str | None = "published") -> CatalogProduct:
    return CatalogProduct.model_validate(
        {
            "id": "7000000000000001",
            "retailer_id": rid,
            "quantity_to_sell_on_facebook": quantity,
            "visibility": visibility,
        }
    )


class Store:
    def __init__(self, states: Iterable[SkuState], refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.states = {state.retailer_id: state for state in states}
        self.refuse = refuse
        self.anchors: list[tuple[str, int, Visibility, int]] = []

    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]:
        return {rid: self.states[rid] for rid in retailer_ids if rid in self.states}

    def record_catalog_read(self, retailer_id: str, *, value: int, visibility: Visibility, **when: Any) -> bool:
        if retailer_id in self.refuse:
            return False
        self.anchors.append((retailer_id, value, visibility, when["published_version"]))
        return True


class Recomputes:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None:
        self.asked.extend(retailer_ids)


def check(store: Store, *, dry_run: bool = False) -> tuple[CatalogCheck, Recomputes]:
    recomputes = Recomputes()
    return (
        CatalogCheck(
            skus=store, recomputes=recomputes, mode=DeductionMode.MERCHANT, default_bucket="slow", dry_run=dry_run
        ),
        recomputes,
    )


def test_a_match_costs_nothing_a_difference_is_anchored_and_recomputed() -> None:
    later_order = PlatformMove(units=-2, not_before=T0 + timedelta(minutes=5), not_after=T0 + timedelta(minutes=5))
    store = Store([anchored("A", 10, platform_moves=(later_order,)), anchored("B", 10)])
    reads, recomputes = check(store)
    reads.check([product("A", 8), product("B", 7)], read_from=READ[0], read_to=READ[1])
    assert (reads.report.matched, [case.retailer_id for case in reads.report.drift]) == (1, ["B"])
    assert store.anchors == [("B", 7, Visibility.PUBLISHED, 1)] and recomputes.asked == ["B"]
    assert reads.report.drift_by_bucket() == {"fast": 1}


def test_an_order_placed_during_the_read_makes_the_expectation_ambiguous_and_the_read_settles_it() -> None:
    during = PlatformMove(units=-1, not_before=READ[0], not_after=READ[0])
    store = Store([anchored("A", 10, platform_moves=(during,))])
    reads, recomputes = check(store)
    reads.check([product("A", 9)], read_from=READ[0], read_to=READ[1])
    assert reads.report.settled == 1 and not reads.report.drift_by_bucket()  # not drift: nobody could know
    assert store.anchors == [("A", 9, Visibility.PUBLISHED, 1)] and recomputes.asked == ["A"]


def test_a_push_in_flight_or_an_anchor_newer_than_the_read_is_skipped() -> None:
    pending = anchored("A", 10).model_copy(update={"published_version": 2})
    newer = anchored("B", 10).model_copy(update={"catalog_to": READ[0] + timedelta(seconds=5)})
    store = Store([pending, newer, anchored("C", 10)], refuse={"C"})  # C: a push was claimed since the state read
    reads, recomputes = check(store)
    reads.check([product("A", 3), product("B", 3), product("C", 3)], read_from=READ[0], read_to=READ[1])
    assert reads.report.in_flight == 3 and store.anchors == [] and recomputes.asked == []


def test_unknown_items_are_reported_never_created_and_bad_values_skipped_while_the_page_goes_on() -> None:
    store = Store([anchored("A", 10), anchored("B", 10)])
    reads, recomputes = check(store)
    reads.check(
        [product("NOT-OURS", 4), product("A", None), product("B", 5, visibility="hidden")],
        read_from=READ[0],
        read_to=READ[1],
    )
    assert reads.report.unknown == ["NOT-OURS"] and "NOT-OURS" not in store.states
    assert [rid for rid, _why in reads.report.unparsable] == ["A", "B"]
    assert store.anchors == [] and recomputes.asked == []


def test_a_dry_run_reports_and_changes_nothing() -> None:
    store = Store([anchored("A", 10)])
    reads, recomputes = check(store, dry_run=True)
    reads.check([product("A", 7)], read_from=READ[0], read_to=READ[1])
    assert reads.report.summary()["drifted"] == 1 and store.anchors == [] and recomputes.asked == []


class Listing:
    def __init__(self, pages: list[list[CatalogProduct]], throttle_at: int | None = None) -> None:
        self.pages = pages
        self.throttle_at = throttle_at
        self.asked: list[dict[str, Any]] = []

    def list_products(self, catalog_id: str, fields: str = "", **options: Any) -> Iterator[ProductPage]:
        self.asked.append(options)
        start = int(options.get("after") or 0)
        for index in range(start, len(self.pages)):
            if index == self.throttle_at:
                raise GraphThrottledError("(#80009) slow down", retry_after_seconds=120, usage=None, code=80009)
            yield ProductPage(
                products=self.pages[index], rejected=[], after=str(index + 1), has_next=index + 1 < len(self.pages)
            )


class Budget:
    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.blocked: datetime | None = None

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant:
        if self.calls <= 0:
            return CallGrant(calls=0, size=preferred_size, retry_after_seconds=40)
        self.calls -= 1
        return CallGrant(calls=1, size=preferred_size)

    def block_until(self, until: datetime) -> None:
        self.blocked = until


def test_the_audit_stops_at_the_budget_or_throttling_and_says_where_to_resume() -> None:
    store = Store([anchored(f"S{i}", 1) for i in range(6)])
    pages = [[product(f"S{i}", 1), product(f"S{i + 1}", 1)] for i in (0, 2, 4)]
    reads, _ = check(store)
    outcome = audit_catalog(
        catalog_id="1",
        listing=Listing(pages),
        budget=Budget(2),
        check=reads,
        after=None,
        time_left=lambda: 900,
        now=lambda: READ[0],
    )
    assert (outcome.pages, outcome.stopped_by, outcome.resume_after, outcome.finished) == (2, "budget", "2", False)
    throttled = Listing(pages, throttle_at=2)
    budget = Budget(10)
    outcome = audit_catalog(
        catalog_id="1",
        listing=throttled,
        budget=budget,
        check=reads,
        after="1",
        time_left=lambda: 900,
        now=lambda: READ[0],
    )
    assert (outcome.pages, outcome.stopped_by, outcome.resume_after) == (1, "throttled", "2")
    assert throttled.asked[0]["after"] == "1" and budget.blocked == READ[0] + timedelta(seconds=120)
    outcome = audit_catalog(
        catalog_id="1",
        listing=Listing(pages),
        budget=Budget(10),
        check=reads,
        after="2",
        time_left=lambda: 900,
        now=lambda: READ[0],
    )
    assert (outcome.pages, outcome.finished, outcome.resume_after) == (1, True, None)


def test_a_read_back_names_a_sku_missing_from_the_catalog_and_waits_when_out_of_budget() -> None:
    store = Store([anchored("A", 10), anchored("GONE", 10, discontinued=False)])
    reads, recomputes = check(store)
    listing = Listing([[product("A", 10)]])
    outcome = read_back(
        ["GONE", "A"], catalog_id="1", listing=listing, budget=Budget(1), check=reads, now=lambda: READ[0]
    )
    assert outcome.waiting == [] and listing.asked[0]["retailer_ids"] == ["A", "GONE"]
    assert reads.report.missing == ["GONE"] and store.anchors == [("GONE", 0, Visibility.STAGING, 1)]
    assert recomputes.asked == ["GONE"]  # recompute pushes it; the platform then says why it cannot
    waiting = read_back(["A"], catalog_id="1", listing=listing, budget=Budget(0), check=reads, now=lambda: READ[0])
    assert (waiting.waiting, waiting.retry_after_seconds) == (["A"], 40)


def test_records_the_client_rejected_are_reported_and_the_rest_of_the_page_applied() -> None:
    store = Store([anchored("A", 10)])
    reads, recomputes = check(store)
    bad = RejectedRecord(
        raw={"id": "7000000000000009", "retailer_id": "B", "quantity_to_sell_on_facebook": -1},
        error=InvalidInputError("data[1].quantity_to_sell_on_facebook", "must be 0 or more"),
    )

    class OnePage(Listing):
        def list_products(self, catalog_id: str, fields: str = "", **options: Any) -> Iterator[ProductPage]:
            yield ProductPage(products=[product("A", 6)], rejected=[bad], after=None, has_next=False)

    outcome = audit_catalog(
        catalog_id="1",
        listing=OnePage([]),
        budget=Budget(5),
        check=reads,
        after=None,
        time_left=lambda: 900,
        now=lambda: READ[0],
    )
    assert outcome.finished and [rid for rid, _why in reads.report.unparsable] == ["B"]
    assert recomputes.asked == ["A"]  # the good record of the same page was compared and repaired
