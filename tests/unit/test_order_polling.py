"""poll_orders against in-memory ports: cursor handling, resumption, throttling, removal, rejects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.errors import SourceCursorRejectedError, SourceRemovedError, SourceThrottledError
from stocksync.logic.order_ingest import OrderIngest
from stocksync.logic.order_polling import PollCursor, SourcePage, poll_orders
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
OVERLAP = timedelta(minutes=15)


def sighting(order_id: str, sku: str, units: int, state: OrderState = OrderState.FB_PROCESSING) -> OrderObservation:
    return OrderObservation(
        order_id=order_id,
        source=OrderSource.META_COMMERCE,
        state=state,
        lines=(OrderLine(retailer_id=sku, quantity=units),),
        sold_on_platform=True,
        observed_at=T0,
    )


class ScriptedSource:
    """Serves pages of a listing; records the arguments of every listing it was asked for."""

    def __init__(self, pages: list[SourcePage], fail_at: int | None = None, error: Exception | None = None) -> None:
        self.pages_by_cursor = {
            None: 0,
            **{page.after: i + 1 for i, page in enumerate(pages) if page.after is not None},
        }
        self._pages = pages
        self.fail_at = fail_at
        self.error = error
        self.listings: list[tuple[datetime | None, str | None]] = []
        self.expired: set[str | None] = set()  # cursors the source no longer accepts

    def pages(
        self, *, updated_after: datetime | None, after: str | None, observed_at: datetime
    ) -> Iterator[SourcePage]:
        self.listings.append((updated_after, after))
        if after in self.expired:
            raise SourceCursorRejectedError(f"meta_commerce: page cursor rejected: {after}")
        for index in range(self.pages_by_cursor[after], len(self._pages)):
            if self.fail_at == index:
                self.fail_at = None
                assert self.error is not None
                raise self.error
            yield self._pages[index]


class MemoryCursors:
    def __init__(self) -> None:
        self.cursors: dict[str, PollCursor] = {}
        self.disabled_calls = 0

    def load(self, source: str) -> PollCursor:
        return self.cursors.get(source, PollCursor())

    def save(self, source: str, cursor: PollCursor) -> None:
        if self.load(source).disabled_reason:
            return
        self.cursors[source] = cursor

    def disable(self, source: str, reason: str) -> bool:
        self.disabled_calls += 1
        if self.load(source).disabled_reason:
            return False
        self.cursors[source] = self.load(source).model_copy(update={"disabled_reason": reason})
        return True


class RecordingSinks:
    def __init__(self) -> None:
        self.enqueued: list[str] = []
        self.rejected: list[tuple[Any, str]] = []
        self.removed: list[str] = []

    def enqueue_recompute(self, retailer_ids: Any) -> None:
        self.enqueued.extend(sorted(retailer_ids))

    def reject(self, raw: Any, reason: str) -> None:
        self.rejected.append((raw, reason))

    def source_removed(self, source: str, reason: str) -> None:
        self.removed.append(reason)


def three_pages() -> list[SourcePage]:
    return [
        SourcePage([sighting("o-1", "A", 2)], after="c1", has_next=True, latest_update=T0 + timedelta(minutes=1)),
        SourcePage([sighting("o-2", "B", 1)], after="c2", has_next=True, latest_update=T0 + timedelta(minutes=3)),
        SourcePage([sighting("o-3", "A", 4)], after="c3", has_next=False, latest_update=T0 + timedelta(minutes=2)),
    ]


LATER = T0 + timedelta(minutes=2)  # past the 60 s a throttled source asks for in these tests


def run(
    source: ScriptedSource,
    ledger: InMemoryLedger,
    cursors: MemoryCursors,
    sinks: RecordingSinks,
    *,
    now: datetime = T0,
    **kw: Any,
):
    return poll_orders(
        "meta_commerce", source, OrderIngest(ledger, now=now), cursors, sinks, overlap=OVERLAP, now=now, **kw
    )


def test_a_complete_listing_applies_every_page_and_moves_the_watermark_to_the_newest_change() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    source = ScriptedSource(three_pages())
    report = run(source, ledger, cursors, sinks)
    assert report.completed and report.pages == 3 and report.applied == 3
    assert ledger.counters["A"]["processing"] == 6 and ledger.counters["B"]["processing"] == 1
    assert cursors.load("meta_commerce") == PollCursor(
        watermark=T0 + timedelta(minutes=3), completed_at=T0, saved_at=T0
    )
    assert report.seconds_since_complete_listing == 0
    assert sinks.enqueued == ["A", "B"]  # once per poll, not once per page
    # The first poll had no watermark; the next one re-reads an overlap before it.
    run(source, ledger, cursors, sinks)
    assert source.listings == [(None, None), (T0 + timedelta(minutes=3) - OVERLAP, None)]
    assert ledger.counters["A"]["processing"] == 6  # the re-read changed nothing


def test_throttling_mid_listing_saves_the_page_cursor_and_the_next_poll_resumes_without_loss_or_double_count() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    source = ScriptedSource(three_pages(), fail_at=2, error=SourceThrottledError("slow down", retry_after_seconds=60))
    first = run(source, ledger, cursors, sinks)
    assert first.throttled_for == 60 and not first.completed and first.pages == 2
    saved = cursors.load("meta_commerce")
    assert saved.in_progress and saved.listing_after == "c2" and saved.watermark is None
    assert saved.not_before == T0 + timedelta(seconds=60)

    early = run(source, ledger, cursors, sinks, now=T0 + timedelta(seconds=45))
    assert early.skipped_until == T0 + timedelta(seconds=60) and early.throttled_for == 15
    assert len(source.listings) == 1  # calling before the announced time would only extend the throttling
    second = run(source, ledger, cursors, sinks, now=LATER)
    assert second.completed and second.pages == 1 and second.skipped_until is None
    assert source.listings[-1] == (None, "c2")
    assert ledger.counters["A"]["processing"] == 6 and ledger.counters["B"]["processing"] == 1
    assert cursors.load("meta_commerce").watermark == T0 + timedelta(minutes=3)


def cut_after_two_pages_then_expired() -> tuple[ScriptedSource, InMemoryLedger, MemoryCursors, RecordingSinks]:
    """A listing throttled after its second page, whose saved cursor ("c2") the source has since stopped accepting."""
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    source = ScriptedSource(three_pages(), fail_at=2, error=SourceThrottledError("slow down", retry_after_seconds=60))
    run(source, ledger, cursors, sinks)
    source.expired.add("c2")
    return source, ledger, cursors, sinks


def test_a_saved_cursor_the_source_no_longer_accepts_restarts_the_listing_without_double_count() -> None:
    source, ledger, cursors, sinks = cut_after_two_pages_then_expired()

    resumed = run(source, ledger, cursors, sinks, now=LATER)
    assert resumed.restarted_listing == "meta_commerce: page cursor rejected: c2"
    assert resumed.completed and resumed.pages == 3 and resumed.applied == 1 and resumed.unchanged == 2
    assert source.listings == [(None, None), (None, "c2"), (None, None)]
    assert ledger.counters["A"]["processing"] == 6 and ledger.counters["B"]["processing"] == 1
    assert cursors.load("meta_commerce") == PollCursor(
        watermark=T0 + timedelta(minutes=3), completed_at=LATER, saved_at=LATER
    )


def test_a_restarted_listing_keeps_the_newest_change_of_the_pages_read_before_the_cut() -> None:
    """The pages before the cut were applied; their newest change still counts for the watermark."""
    source, ledger, cursors, sinks = cut_after_two_pages_then_expired()
    source._pages = [three_pages()[2]]  # the restarted listing happens to show only the last order
    source.pages_by_cursor = {None: 0}
    assert run(source, ledger, cursors, sinks, now=LATER).completed
    assert cursors.load("meta_commerce").watermark == T0 + timedelta(minutes=3)


def test_a_restarted_listing_that_is_throttled_again_resumes_from_its_new_cursor() -> None:
    source, ledger, cursors, sinks = cut_after_two_pages_then_expired()
    source.fail_at, source.error = 1, SourceThrottledError("slow down again", retry_after_seconds=90)

    restarted = run(source, ledger, cursors, sinks, now=LATER)
    assert restarted.restarted_listing and restarted.throttled_for == 90 and not restarted.completed
    assert cursors.load("meta_commerce").listing_after == "c1"  # the restarted listing's own page cursor
    final = run(source, ledger, cursors, sinks, now=LATER + timedelta(minutes=2))
    assert final.completed and source.listings[-1] == (None, "c1")
    assert ledger.counters["A"]["processing"] == 6 and ledger.counters["B"]["processing"] == 1


def test_polls_that_never_finish_a_listing_report_how_long_orders_have_not_been_fully_read() -> None:
    """Each throttled poll looks successful; the time since the last complete listing is what an alarm can watch."""
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()

    def poll_at(minutes: int, source: ScriptedSource) -> Any:
        at = T0 + timedelta(minutes=minutes)
        return poll_orders(
            "meta_commerce", source, OrderIngest(ledger, now=at), cursors, sinks, overlap=OVERLAP, now=at
        )

    throttled = SourceThrottledError("slow down", retry_after_seconds=60)
    cut_at_once = poll_at(-5, ScriptedSource(three_pages(), fail_at=0, error=throttled))
    assert cut_at_once.seconds_since_complete_listing == 0 and cursors.load("meta_commerce").listing_started_at
    first = poll_at(0, ScriptedSource(three_pages(), fail_at=1, error=throttled))
    assert first.seconds_since_complete_listing == 300  # since the attempt cut before its first page
    cursors.cursors.clear()
    first = poll_at(0, ScriptedSource(three_pages(), fail_at=1, error=throttled))
    assert not first.completed and first.seconds_since_complete_listing == 0  # the first listing started now
    second = poll_at(10, ScriptedSource(three_pages(), fail_at=1, error=throttled))
    assert second.seconds_since_complete_listing == 600  # no listing ever completed: since the first one began
    assert poll_at(20, ScriptedSource(three_pages())).seconds_since_complete_listing == 0
    stuck = poll_at(50, ScriptedSource(three_pages(), fail_at=0, error=throttled))
    assert stuck.seconds_since_complete_listing == 30 * 60  # since the listing completed at minute 20


def test_the_deadline_stops_after_a_saved_page() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    report = run(ScriptedSource(three_pages()), ledger, cursors, sinks, time_left=lambda: 5.0)
    assert report.pages == 1 and not report.completed
    assert cursors.load("meta_commerce").listing_after == "c1"


def test_a_removed_endpoint_disables_the_source_and_alarms_once() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    gone = SourceRemovedError("meta_commerce: (#12) commerce_orders is deprecated")
    source = ScriptedSource(three_pages(), fail_at=0, error=gone)
    assert run(source, ledger, cursors, sinks).disabled
    assert sinks.removed == ["meta_commerce: (#12) commerce_orders is deprecated"]
    # Later polls do not even call the source, and do not alarm again.
    again = run(source, ledger, cursors, sinks)
    assert again.disabled and len(source.listings) == 1 and len(sinks.removed) == 1


def test_rejected_records_are_dead_lettered_and_the_rest_of_the_page_is_applied() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    page = SourcePage(
        [sighting("o-1", "A", 2)],
        rejected=[({"id": "o-bad"}, "data[1].items.data[0].quantity: Input should be greater than or equal to 1")],
        has_next=False,
        latest_update=T0,
    )
    report = run(ScriptedSource([page]), ledger, cursors, sinks)
    assert report.rejected == 1 and report.applied == 1
    assert sinks.rejected[0][1].startswith("data[1].items.data[0].quantity")
    assert ledger.counters["A"]["processing"] == 2


def test_an_empty_listing_is_complete_and_sets_a_watermark() -> None:
    cursors = MemoryCursors()
    report = run(ScriptedSource([]), InMemoryLedger(), cursors, RecordingSinks())
    assert report.completed and cursors.load("meta_commerce").watermark == T0


@pytest.mark.parametrize("state", [OrderState.CREATED, OrderState.IN_PROGRESS])
def test_a_state_move_of_a_known_order_moves_its_units_between_counters(state: OrderState) -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    run(ScriptedSource([SourcePage([sighting("o-1", "A", 2)], latest_update=T0)]), ledger, cursors, sinks)
    moved = SourcePage([sighting("o-1", "A", 2, state)], latest_update=T0 + timedelta(minutes=1))
    run(ScriptedSource([moved]), ledger, cursors, sinks)
    counters = ledger.counters["A"]
    assert counters["processing"] == 0
    assert counters["created" if state is OrderState.CREATED else "acknowledged"] == 2
