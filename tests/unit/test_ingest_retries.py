"""Retries after a failure in the middle of an ingest, on the in-memory ledger (issue 10, Deliver item 5).

An order with more SKUs than one transaction holds is written part by part, one transaction each. A failure between
two of them (the Lambda dies, conflicts outlast the retries) leaves some parts stored; the retry must count the
others exactly once, while a sighting that really changes the order's line items is still refused. And a retry that
finds a row unchanged reports its SKUs when the caller says the previous try may have stopped before its enqueue.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.logic.backoff import Backoff
from stocksync.logic.ledger import (
    MAX_LINES_PER_PART,
    PLACED_AT_RESOLUTION,
    LedgerPart,
    LineItemsChangedError,
    contributions,
)
from stocksync.logic.order_ingest import MAX_CONFLICT_RETRIES, OrderIngest, StaleLedgerError
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.sku import PlatformMove
from tests.fakes.ledger import InMemoryLedger

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
BIG = [f"BULK-{index:03d}" for index in range(120)]  # three parts: 49 + 49 + 22 SKUs


class Crash(Exception):
    """The Lambda dying mid-way (a timeout, an out-of-memory kill): nothing after it runs."""


def big_order(
    skus: list[str] = BIG,
    *,
    state: OrderState = OrderState.FB_PROCESSING,
    units: dict[str, int] | None = None,
    at: datetime = NOW,
) -> OrderObservation:
    return OrderObservation(
        order_id="big-1",
        source=OrderSource.META_COMMERCE,
        state=state,
        lines=tuple(
            OrderLine(retailer_id=sku, quantity=(units or {}).get(sku, 1 + index % 3)) for index, sku in enumerate(skus)
        ),
        sold_on_platform=True,
        placed_at=NOW,
        observed_at=at,
    )


def sync_notice() -> OrderObservation:
    return OrderObservation(order_id="big-1", source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)


def part_skus(part: int) -> set[str]:
    return set(BIG[part * MAX_LINES_PER_PART : (part + 1) * MAX_LINES_PER_PART])


def crash_before_part(ledger: InMemoryLedger, part: int) -> None:
    """The next write of ``part`` never happens: the process dies just before it (the parts before it landed)."""

    def hook(row: LedgerPart) -> None:
        if row.part == part:
            ledger.write_hook = None
            raise Crash(f"died before part {part}")

    ledger.write_hook = hook


def assert_counters_equal_what_the_ledger_implies(ledger: InMemoryLedger) -> None:
    implied: dict[str, dict[str, int]] = defaultdict(lambda: {"processing": 0, "created": 0, "acknowledged": 0})
    for row in ledger.rows.values():
        for sku, delta in contributions(row).items():
            implied[sku]["processing"] += delta.processing
            implied[sku]["created"] += delta.created
            implied[sku]["acknowledged"] += delta.acknowledged
    for sku, counters in ledger.counters.items():
        assert counters == implied[sku], sku


def assert_counted_exactly_once(ledger: InMemoryLedger, order: OrderObservation, counter: str = "processing") -> None:
    """Every SKU of ``order`` is counted once: in its counter, in velocity, and as one move on the platform's copy."""
    assert sorted(key for key in ledger.rows if key[0] == order.order_id) == [("big-1", part) for part in range(3)]
    for line in order.lines:
        sku, units = line.retailer_id, line.quantity
        assert ledger.counters[sku][counter] == units, sku
        assert ledger.sold[sku] == units and ledger.platform_units[sku] == -units, sku
        assert ledger.platform_moves[sku] == [
            PlatformMove(units=-units, not_before=NOW, not_after=NOW + PLACED_AT_RESOLUTION)
        ], sku
    assert_counters_equal_what_the_ledger_implies(ledger)


@pytest.mark.parametrize("crashed_before", [1, 2])
def test_a_crash_between_two_part_transactions_then_a_retry_counts_every_sku_exactly_once(crashed_before: int) -> None:
    ledger = InMemoryLedger()
    crash_before_part(ledger, crashed_before)
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    assert sorted(ledger.rows) == [("big-1", part) for part in range(crashed_before)]
    assert_counters_equal_what_the_ledger_implies(ledger)  # a partly applied order is still exact

    receipt = OrderIngest(ledger, now=NOW + timedelta(minutes=5)).apply([big_order()])

    assert not receipt.rejected and receipt.applied == 1
    assert receipt.changed_skus == set().union(*(part_skus(part) for part in range(crashed_before, 3)))
    assert_counted_exactly_once(ledger, big_order())
    assert all(row.revision == 1 for row in ledger.rows.values())  # each part written by exactly one transaction


def test_crashes_between_every_pair_of_parts_in_turn_then_the_order_moves_on_once() -> None:
    """The first try dies before part 1, its retry before part 2, the third finishes; then the order moves on."""
    ledger = InMemoryLedger()
    for part in (1, 2):
        crash_before_part(ledger, part)
        with pytest.raises(Crash):
            OrderIngest(ledger, now=NOW).apply([big_order()])
    assert OrderIngest(ledger, now=NOW).apply([big_order()]).applied == 1
    assert_counted_exactly_once(ledger, big_order())

    moved = OrderIngest(ledger, now=NOW).apply([big_order(state=OrderState.CREATED)])
    assert moved.applied == 1 and not moved.rejected
    assert_counted_exactly_once(ledger, big_order(), counter="created")
    assert all(counters["processing"] == 0 for counters in ledger.counters.values())


def test_conflicts_beyond_the_retries_on_a_middle_part_then_a_retry_counts_every_sku_exactly_once() -> None:
    """DynamoDB cancels a transaction that races another one (TransactionConflict, a StaleLedgerError to the
    ingest): the ingest waits a jittered, growing while, re-reads and tries again, MAX_CONFLICT_RETRIES times in
    all, then gives up with part 0 written."""
    ledger = InMemoryLedger()
    conflicts = []
    waits: list[float] = []

    def conflict_on_part_1(row: LedgerPart) -> None:
        if row.part == 1:
            conflicts.append(row.part)
            raise StaleLedgerError("big-1 part 1: transaction conflict")

    ledger.write_hook = conflict_on_part_1
    backoff = Backoff(sleep=waits.append, draw=lambda: 1.0)  # the longest wait each time
    with pytest.raises(StaleLedgerError, match="still contended after 8 tries with backoff"):
        OrderIngest(ledger, now=NOW, backoff=backoff).apply([big_order()])
    assert len(conflicts) == MAX_CONFLICT_RETRIES and sorted(ledger.rows) == [("big-1", 0)]
    # Exponential from 25 ms, capped at 0.4 s: one wait between tries, none after the last.
    assert waits == [0.025, 0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert sum(waits) == pytest.approx(backoff.worst_case_seconds(MAX_CONFLICT_RETRIES)) and sum(waits) < 1.6

    ledger.write_hook = None
    receipt = OrderIngest(ledger, now=NOW).apply([big_order()])
    assert not receipt.rejected and receipt.applied == 1
    assert_counted_exactly_once(ledger, big_order())


def test_the_waits_between_conflicting_tries_are_jittered_within_their_bounds() -> None:
    """Full jitter: each wait a uniform draw below its exponential bound, so racing writers do not retry together."""
    draws = iter([0.5, 0.0, 0.9])
    waits: list[float] = []
    backoff = Backoff(sleep=waits.append, draw=lambda: next(draws))
    assert [backoff.wait(retry) for retry in (1, 2, 3)] == [0.0125, 0.0, pytest.approx(0.09)]
    assert waits == [0.0125, pytest.approx(0.09)]  # a zero draw sleeps not at all
    with pytest.raises(ValueError, match="base <= cap"):
        Backoff(base_seconds=1.0, cap_seconds=0.5)


def test_one_conflict_on_a_hot_sku_is_retried_after_a_wait_and_applied() -> None:
    ledger = InMemoryLedger()
    raced: list[int] = []

    def conflict_once(row: LedgerPart) -> None:
        if not raced:
            raced.append(row.part)
            raise StaleLedgerError("big-1: transaction conflict")

    ledger.write_hook = conflict_once
    waits: list[float] = []
    receipt = OrderIngest(ledger, now=NOW, backoff=Backoff(sleep=waits.append, draw=lambda: 0.5)).apply([big_order()])
    assert receipt.applied == 1 and waits == [0.0125]
    assert_counted_exactly_once(ledger, big_order())


def test_a_sync_notice_between_the_crash_and_the_retry_leaves_stubs_the_retry_fills() -> None:
    ledger = InMemoryLedger()
    crash_before_part(ledger, 1)
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    OrderIngest(ledger, now=NOW).apply([sync_notice()])  # stubs for parts 1 and 2: no lines yet
    assert not ledger.rows[("big-1", 1)].lines and ledger.rows[("big-1", 1)].parts == 3

    receipt = OrderIngest(ledger, now=NOW).apply([big_order()])

    assert not receipt.rejected
    for sku in BIG:  # the warehouse has the order: counted nowhere, but sold and moved on the platform once
        assert ledger.counters[sku]["processing"] == 0 and len(ledger.platform_moves[sku]) == 1
    assert sum(ledger.sold.values()) == sum(line.quantity for line in big_order().lines)
    assert_counters_equal_what_the_ledger_implies(ledger)


def added_last() -> OrderObservation:
    return big_order([*BIG, "BULK-120"])  # sorts last: lands in part 2, the order still has three parts


def added_first() -> OrderObservation:
    return big_order([*BIG, "BULK-000a"])  # lands in part 0 and shifts the split


def more_units_in_part_2() -> OrderObservation:
    return big_order(units={BIG[-1]: 9})


def a_line_left_out() -> OrderObservation:
    return big_order(BIG[:-1])


CHANGED_LINE_ITEMS = [added_last, added_first, more_units_in_part_2, a_line_left_out]


@pytest.mark.parametrize("changed", CHANGED_LINE_ITEMS, ids=lambda make: make.__name__)
@pytest.mark.parametrize("stored_parts", [1, 3])
def test_a_sighting_that_changes_a_split_orders_line_items_is_still_refused(
    changed: Callable[[], OrderObservation], stored_parts: int
) -> None:
    """Whether the first try stored one part or all three, and wherever the change falls (in a stored part or in
    one no try has written yet), the sighting is refused and nothing moves."""
    ledger = InMemoryLedger()
    if stored_parts < 3:
        crash_before_part(ledger, stored_parts)
    with contextlib.suppress(Crash):  # a first try that died before part ``stored_parts``, or finished
        OrderIngest(ledger, now=NOW).apply([big_order()])
    rows, counters = dict(ledger.rows), {sku: dict(values) for sku, values in ledger.counters.items()}

    receipt = OrderIngest(ledger, now=NOW).apply([changed()])

    assert [type(error) for _, error in receipt.rejected] == [LineItemsChangedError]
    assert ledger.rows == rows and {sku: dict(values) for sku, values in ledger.counters.items()} == counters


def test_parts_stored_before_orders_carried_a_digest_are_still_completed_by_a_retry() -> None:
    """Rows written by the earlier code have no digest: the parts they hold are checked, and the rest written."""
    ledger = InMemoryLedger()
    crash_before_part(ledger, 1)
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    ledger.rows[("big-1", 0)] = replace(ledger.rows[("big-1", 0)], lines_digest=None)

    assert not OrderIngest(ledger, now=NOW).apply([big_order()]).rejected
    assert_counted_exactly_once(ledger, big_order())
    assert OrderIngest(ledger, now=NOW).apply([added_first()]).rejected


def test_a_single_part_order_keeps_refusing_an_added_sku_and_accepting_a_shorter_sighting() -> None:
    ledger = InMemoryLedger()
    two = big_order(["A", "B"])
    OrderIngest(ledger, now=NOW).apply([two])
    refused = OrderIngest(ledger, now=NOW).apply([big_order(["A", "B", "C"])]).rejected
    assert len(refused) == 1 and "first seen without SKU(s) ['C']" in str(refused[0][1])
    assert not OrderIngest(ledger, now=NOW).apply([big_order(["A"])]).rejected


def test_a_retry_reports_the_skus_of_rows_its_caller_says_may_lack_their_enqueue() -> None:
    """Part 0 was written by the try that died, so the retry finds it unchanged: with ``unfinished`` its SKUs are
    reported again (for a repeat enqueue), beside the SKUs of the parts the retry writes itself."""
    ledger = InMemoryLedger()
    crash_before_part(ledger, 1)
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    assert ledger.rows[("big-1", 0)].updated_at == NOW  # stamped with the writer's clock

    receipt = OrderIngest(ledger, now=NOW + timedelta(minutes=1)).apply(
        [big_order()], unfinished=lambda row: row.updated_at == NOW
    )

    assert receipt.reenqueue_skus == part_skus(0)
    assert receipt.changed_skus == part_skus(1) | part_skus(2)
    assert receipt.skus_to_recompute == set(BIG)
    again = OrderIngest(ledger, now=NOW).apply([big_order()], unfinished=lambda row: False)
    assert again.unchanged == 1 and not again.skus_to_recompute
