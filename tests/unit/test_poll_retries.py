"""A poll after one that died mid-way enqueues what the dead one changed and did not enqueue; an ordinary
overlapping poll enqueues nothing it did not change (issue 10, item 4: the catalog must not wait for the sweep)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from stocksync.errors import SourceThrottledError
from stocksync.logic.ledger import LedgerPart
from stocksync.logic.order_polling import PollCursor, SourcePage
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger
from tests.unit.test_order_polling import (
    LATER,
    T0,
    MemoryCursors,
    RecordingSinks,
    ScriptedSource,
    run,
    sighting,
    three_pages,
)


class Crash(Exception):
    """The Lambda dying (a timeout, a kill): nothing after the point of failure runs."""


class Process:
    """One Lambda process: once killed, every port it calls fails (a ``finally`` does not run in a dead process)."""

    def __init__(self) -> None:
        self.alive = True

    def kill(self, why: str) -> None:
        self.alive = False
        raise Crash(why)

    def check(self) -> None:
        if not self.alive:
            raise Crash("the process is dead")


class DyingSinks(RecordingSinks):
    """Recompute enqueues of one process; with ``die_at_enqueue`` the process dies at its next enqueue, after the
    ledger transactions it follows have landed."""

    def __init__(self, process: Process, *, die_at_enqueue: bool = False) -> None:
        super().__init__()
        self.process = process
        self.die_at_enqueue = die_at_enqueue

    def enqueue_recompute(self, retailer_ids: Any) -> None:
        self.process.check()
        if self.die_at_enqueue:
            self.die_at_enqueue = False
            self.process.kill("died before the enqueue")
        super().enqueue_recompute(retailer_ids)


class DyingCursors(MemoryCursors):
    """The ``die_at``-th cursor save (1-based) kills the process: the page before it applied, its position unsaved."""

    def __init__(self, process: Process, die_at: int) -> None:
        super().__init__()
        self.process = process
        self.saves = 0
        self.die_at = die_at

    def save(self, source: str, cursor: PollCursor) -> None:
        self.process.check()
        self.saves += 1
        if self.saves == self.die_at:
            self.process.kill("died before the cursor save")
        super().save(source, cursor)


def one_page(*sightings: OrderObservation, at_minute: int = 1) -> list[SourcePage]:
    return [SourcePage(list(sightings), has_next=False, latest_update=T0 + timedelta(minutes=at_minute))]


@pytest.mark.parametrize("retry_at", [T0, LATER], ids=["same-instant", "later"])
def test_a_poll_that_died_before_its_enqueue_is_followed_by_one_that_enqueues_what_it_changed(
    retry_at: datetime,
) -> None:
    ledger, cursors = InMemoryLedger(), MemoryCursors()
    earlier = one_page(sighting("o-0", "Z", 1), at_minute=0)
    run(ScriptedSource(earlier), ledger, cursors, RecordingSinks(), now=T0 - timedelta(hours=1))  # a complete poll
    listing = one_page(sighting("o-1", "A", 2), sighting("o-2", "B", 1))
    dying = DyingSinks(Process(), die_at_enqueue=True)
    with pytest.raises(Crash):
        run(ScriptedSource(listing), ledger, cursors, dying)
    assert ledger.counters["A"]["processing"] == 2 and dying.enqueued == []

    # The cursor did not move, so the next poll reads the page again and finds both orders unchanged.
    sinks = RecordingSinks()
    retry = run(ScriptedSource(listing), ledger, cursors, sinks, now=retry_at)

    assert retry.applied == 0 and retry.unchanged == 2 and retry.reenqueued_skus == {"A", "B"}
    assert sinks.enqueued == ["A", "B"]
    assert ledger.counters["A"]["processing"] == 2  # enqueued again, counted once


def test_a_poll_that_died_before_saving_a_page_leaves_the_pages_behind_its_cursor_owed_and_re_reads_the_rest() -> None:
    """Three pages; the poll dies after page 2's transactions, before its cursor save (page 1's save carried A, not
    enqueued yet: the flush waits for 100 SKUs). The next poll enqueues A from the cursor and B from the re-read."""
    process = Process()
    ledger, cursors, dying = InMemoryLedger(), DyingCursors(process, die_at=2), DyingSinks(process)
    with pytest.raises(Crash):
        run(ScriptedSource(three_pages()), ledger, cursors, dying)
    saved = cursors.load("meta_commerce")
    assert saved.listing_after == "c1" and saved.pending_recompute == ("A",) and saved.saved_at == T0
    assert dying.enqueued == []

    cursors.process, sinks = Process(), RecordingSinks()  # the next poll: a new process
    retry = run(ScriptedSource(three_pages()), ledger, cursors, sinks, now=LATER)

    assert retry.completed and retry.pages == 2 and retry.applied == 1  # page 2 again (unchanged), page 3 new
    assert sorted(sinks.enqueued) == ["A", "B"]
    assert cursors.load("meta_commerce").pending_recompute == ()
    assert ledger.counters["A"]["processing"] == 6 and ledger.counters["B"]["processing"] == 1


def test_a_poll_that_died_between_the_parts_of_a_split_order_is_finished_and_enqueued_by_the_next() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    skus = [f"BULK-{index:03d}" for index in range(60)]  # two parts: 49 + 11 SKUs
    big = OrderObservation(
        order_id="big-1",
        source=OrderSource.META_COMMERCE,
        state=OrderState.FB_PROCESSING,
        lines=tuple(OrderLine(retailer_id=sku, quantity=1) for sku in skus),
        sold_on_platform=True,
        placed_at=T0,
        observed_at=T0,
    )

    def die_before_part_1(row: LedgerPart) -> None:
        if row.part == 1:
            raise Crash("died between the parts")

    ledger.write_hook = die_before_part_1
    with pytest.raises(Crash):
        run(ScriptedSource(one_page(big)), ledger, cursors, sinks)
    ledger.write_hook = None

    retry = run(ScriptedSource(one_page(big)), ledger, cursors, sinks, now=LATER)

    assert retry.applied == 1 and not retry.rejected and sorted(sinks.enqueued) == skus
    assert all(ledger.counters[sku]["processing"] == 1 for sku in skus)


@pytest.mark.parametrize("overlap_at", [T0, LATER], ids=["same-instant", "later"])
def test_an_overlapping_poll_after_a_complete_listing_enqueues_nothing_it_did_not_change(overlap_at: datetime) -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    run(ScriptedSource(three_pages()), ledger, cursors, sinks)
    assert sinks.enqueued == ["A", "B"]
    moved = [*three_pages()[:2], SourcePage([sighting("o-3", "A", 4, OrderState.CREATED)], latest_update=T0)]

    again = run(ScriptedSource(moved), ledger, cursors, sinks, now=overlap_at)

    assert again.unchanged == 2 and again.applied == 1 and not again.reenqueued_skus
    assert sinks.enqueued == ["A", "B", "A"]  # only the order that moved


def test_a_poll_cut_by_the_deadline_enqueues_before_it_saves_and_its_resumption_repeats_nothing() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    cut = run(ScriptedSource(three_pages()), ledger, cursors, sinks, time_left=lambda: 5.0)
    assert not cut.completed and sinks.enqueued == ["A"]
    assert cursors.load("meta_commerce").pending_recompute == ()

    resumed = run(ScriptedSource(three_pages()), ledger, cursors, sinks, now=LATER)

    assert resumed.completed and not resumed.reenqueued_skus
    assert sinks.enqueued == ["A", "A", "B"]  # page 1 once; pages 2 and 3 by the resumed poll


def test_a_throttled_poll_enqueues_what_it_changed_before_it_saves_its_position() -> None:
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    throttled = SourceThrottledError("slow down", retry_after_seconds=60)
    run(ScriptedSource(three_pages(), fail_at=2, error=throttled), ledger, cursors, sinks)
    assert sinks.enqueued == ["A", "B"] and cursors.load("meta_commerce").pending_recompute == ()

    resumed = run(ScriptedSource(three_pages()), ledger, cursors, sinks, now=LATER)

    assert resumed.completed and not resumed.reenqueued_skus and sinks.enqueued == ["A", "B", "A"]


def test_a_cursor_saved_before_saved_at_existed_makes_the_next_poll_enqueue_what_it_finds_once() -> None:
    """Nothing says such a cursor's poll enqueued its rows, so the first poll after the upgrade enqueues them; it
    saves its own clock, and the poll after it is back to enqueueing only changes."""
    ledger, cursors, sinks = InMemoryLedger(), MemoryCursors(), RecordingSinks()
    run(ScriptedSource(three_pages()), ledger, cursors, sinks)
    legacy = cursors.load("meta_commerce").model_copy(update={"saved_at": None})
    cursors.cursors["meta_commerce"] = legacy
    sinks.enqueued.clear()

    first = run(ScriptedSource(three_pages()), ledger, cursors, sinks, now=LATER)
    second = run(ScriptedSource(three_pages()), ledger, cursors, sinks, now=LATER + timedelta(minutes=1))

    assert first.reenqueued_skus == {"A", "B"} and not second.reenqueued_skus
    assert sinks.enqueued == ["A", "B"]
