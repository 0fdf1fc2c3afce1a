"""Orders that grow after they are placed (web-shop edits), on the in-memory ledger.

An ``events`` order (Shopify, WooCommerce, "Order Changed" events) may gain SKUs and units after its first sighting;
the ledger merges them as a join (a new SKU joins, ``ordered`` takes the larger count), so the added units are
counted exactly once whatever the delivery order, the repeats and the races. A Meta Commerce order, a split order and
growth past one part stay refused (docs/connectors.md, "Edits that add line items").
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.logic.ledger import (
    MAX_LINES_PER_PART,
    LedgerPart,
    LineItemsChangedError,
    LineRecord,
    contributions,
    same_content,
)
from stocksync.logic.order_ingest import OrderIngest
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger

NOW = datetime(2026, 12, 4, 10, tzinfo=UTC)
ORDER = "shopify:1001"


def sighting(
    lines: Mapping[str, int | tuple[int, int]],
    *,
    source: OrderSource = OrderSource.EVENTS,
    state: OrderState = OrderState.CREATED,
    minutes: int = 0,
    order_id: str = ORDER,
    on_platform: bool = False,
) -> OrderObservation:
    """``lines`` maps a SKU to its units, or to (units, cancelled)."""

    def line(sku: str, units: int | tuple[int, int]) -> OrderLine:
        quantity, cancelled = units if isinstance(units, tuple) else (units, 0)
        return OrderLine(retailer_id=sku, quantity=quantity, cancelled=cancelled)

    return OrderObservation(
        order_id=order_id,
        source=source,
        state=state,
        lines=tuple(line(sku, units) for sku, units in lines.items()),
        sold_on_platform=on_platform,
        placed_at=NOW,
        observed_at=NOW + timedelta(minutes=minutes),
    )


def apply(ledger: InMemoryLedger, *observations: OrderObservation) -> list[LineItemsChangedError]:
    receipt = OrderIngest(ledger, now=NOW + timedelta(hours=1)).apply(observations)
    errors = [error for _, error in receipt.rejected]
    assert all(isinstance(error, LineItemsChangedError) for error in errors), errors
    return errors  # type: ignore[return-value]


def row(ledger: InMemoryLedger, order_id: str = ORDER) -> LedgerPart:
    return ledger.rows[(order_id, 0)]


def counted(ledger: InMemoryLedger, counter: str = "created") -> dict[str, int]:
    return {sku: values[counter] for sku, values in ledger.counters.items() if values[counter]}


def assert_counters_equal_what_the_ledger_implies(ledger: InMemoryLedger) -> None:
    implied: dict[str, dict[str, int]] = {}
    for stored in ledger.rows.values():
        for sku, delta in contributions(stored).items():
            totals = implied.setdefault(sku, {"processing": 0, "created": 0, "acknowledged": 0})
            totals["processing"] += delta.processing
            totals["created"] += delta.created
            totals["acknowledged"] += delta.acknowledged
    for sku, counters in ledger.counters.items():
        assert counters == implied.get(sku, {"processing": 0, "created": 0, "acknowledged": 0}), sku


# ------------------------------------------------------------------ growth
def test_an_edit_that_adds_a_sku_and_raises_units_counts_the_added_units_once() -> None:
    ledger = InMemoryLedger()
    created = sighting({"MUG-RED": 1})
    edited = sighting({"MUG-RED": 3, "MUG-BLUE": 2}, minutes=5)
    assert apply(ledger, created) == []
    assert apply(ledger, edited) == []
    assert counted(ledger) == {"MUG-RED": 3, "MUG-BLUE": 2}
    assert dict(ledger.sold) == {"MUG-RED": 3, "MUG-BLUE": 2}
    assert row(ledger).lines == {"MUG-RED": LineRecord(ordered=3), "MUG-BLUE": LineRecord(ordered=2)}

    writes = ledger.writes
    assert apply(ledger, created, edited, created) == []  # the older delivery again, and repeats: nothing moves
    assert ledger.writes == writes
    assert counted(ledger) == {"MUG-RED": 3, "MUG-BLUE": 2} and dict(ledger.sold) == {"MUG-RED": 3, "MUG-BLUE": 2}


def test_the_newer_delivery_first_then_the_older_one_ends_the_same() -> None:
    ledger = InMemoryLedger()
    assert apply(ledger, sighting({"MUG-RED": 3, "MUG-BLUE": 2}, minutes=5), sighting({"MUG-RED": 1})) == []
    assert counted(ledger) == {"MUG-RED": 3, "MUG-BLUE": 2} and dict(ledger.sold) == {"MUG-RED": 3, "MUG-BLUE": 2}
    assert ledger.writes == 1


def test_a_sighting_with_fewer_units_or_lines_leaves_the_larger_count() -> None:
    """Under-publishing until the order completes is the safe direction; a lowered quantity is not trusted."""
    ledger = InMemoryLedger()
    apply(ledger, sighting({"MUG-RED": 3, "MUG-BLUE": 2}))
    assert apply(ledger, sighting({"MUG-RED": 1}, minutes=5)) == []
    assert counted(ledger) == {"MUG-RED": 3, "MUG-BLUE": 2}
    # Completing the order releases every unit, the ones the shop no longer lists included.
    apply(ledger, sighting({"MUG-RED": 1}, state=OrderState.COMPLETED, minutes=6))
    assert counted(ledger) == {} and dict(ledger.sold) == {"MUG-RED": 3, "MUG-BLUE": 2}


def test_cancelled_from_one_sighting_and_ordered_from_another_keep_the_bounds() -> None:
    """The largest ``cancelled`` came with a quantity no larger than the largest one: open units never go negative."""
    cancelled_two_of_two = sighting({"MUG-RED": (2, 2)}, minutes=3)
    grown_to_five = sighting({"MUG-RED": 5}, minutes=1)  # older, before the cancellation was seen
    for order in ([cancelled_two_of_two, grown_to_five], [grown_to_five, cancelled_two_of_two]):
        ledger = InMemoryLedger()
        assert apply(ledger, *order) == []
        line = row(ledger).lines["MUG-RED"]
        assert (line.ordered, line.cancelled, line.open_units) == (5, 2, 3)
        assert counted(ledger) == {"MUG-RED": 3} and dict(ledger.sold) == {"MUG-RED": 5}


def test_a_sync_notice_first_then_growing_sightings_count_nowhere_but_in_sold() -> None:
    ledger = InMemoryLedger()
    notice = OrderObservation(order_id=ORDER, source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)
    assert apply(ledger, notice, sighting({"MUG-RED": 1}), sighting({"MUG-RED": 2, "MUG-BLUE": 1}, minutes=1)) == []
    assert counted(ledger) == {} and dict(ledger.sold) == {"MUG-RED": 2, "MUG-BLUE": 1}
    assert row(ledger).source is OrderSource.EVENTS


def test_growth_up_to_one_full_part_is_merged() -> None:
    ledger = InMemoryLedger()
    skus = [f"SKU-{index:02d}" for index in range(MAX_LINES_PER_PART)]
    apply(ledger, sighting(dict.fromkeys(skus[:30], 1)))
    assert apply(ledger, sighting(dict.fromkeys(skus[20:], 1), minutes=1)) == []
    assert sorted(row(ledger).lines) == skus and row(ledger).parts == 1
    assert sum(counted(ledger).values()) == MAX_LINES_PER_PART


# ------------------------------------------------------------------ what stays refused
def test_growth_past_one_part_is_refused_naming_the_order_and_the_added_skus() -> None:
    ledger = InMemoryLedger()
    skus = [f"SKU-{index:02d}" for index in range(MAX_LINES_PER_PART + 1)]
    apply(ledger, sighting(dict.fromkeys(skus[:40], 1)))
    before = (dict(ledger.rows), counted(ledger))

    for past in (sighting(dict.fromkeys(skus[30:], 1), minutes=1), sighting(dict.fromkeys(skus, 1), minutes=1)):
        errors = apply(ledger, past)
        assert len(errors) == 1
        assert f"order {ORDER} holds 40 SKU(s)" in str(errors[0]) and "past one part (49 SKUs)" in str(errors[0])
        assert str(skus[40:]) in str(errors[0])
        assert (dict(ledger.rows), counted(ledger)) == before


def test_any_change_to_a_split_events_order_is_refused() -> None:
    ledger = InMemoryLedger()
    skus = {f"BULK-{index:03d}": 1 for index in range(60)}
    apply(ledger, sighting(skus))
    before = (dict(ledger.rows), counted(ledger))
    changes = [
        sighting({**skus, "BULK-999": 1}, minutes=1),  # adds a SKU
        sighting({**skus, "BULK-059": 4}, minutes=1),  # raises units
        sighting({"BULK-000": 1, "BULK-001": 1}, minutes=1),  # a short sighting of a split order
    ]
    for change in changes:
        errors = apply(ledger, change)
        assert len(errors) == 1 and ORDER in str(errors[0])
        assert (dict(ledger.rows), counted(ledger)) == before
    assert apply(ledger, sighting(skus, state=OrderState.IN_PROGRESS, minutes=2)) == []  # unchanged lines move on


def test_a_meta_commerce_order_that_adds_a_sku_or_changes_units_is_still_refused() -> None:
    ledger = InMemoryLedger()
    first = sighting({"MUG-RED": 2}, source=OrderSource.META_COMMERCE, order_id="meta-1", on_platform=True)
    apply(ledger, first)
    added = sighting({"MUG-RED": 2, "MUG-BLUE": 1}, source=OrderSource.META_COMMERCE, order_id="meta-1", minutes=1)
    more = sighting({"MUG-RED": 3}, source=OrderSource.META_COMMERCE, order_id="meta-1", minutes=1)
    [added_error] = apply(ledger, added)
    [more_error] = apply(ledger, more)
    assert "order meta-1 was first seen without SKU(s) ['MUG-BLUE']" in str(added_error)
    assert "order meta-1 was first seen with 2 units, now 3" in str(more_error)
    assert counted(ledger) == {"MUG-RED": 2} and dict(ledger.sold) == {"MUG-RED": 2}


def test_an_events_sighting_never_grows_a_row_a_meta_poll_wrote() -> None:
    """The same order id from both sources is a Meta order: its line items are fixed."""
    ledger = InMemoryLedger()
    apply(ledger, sighting({"MUG-RED": 2}, source=OrderSource.META_COMMERCE, order_id="meta-2"))
    [error] = apply(ledger, sighting({"MUG-RED": 2, "MUG-BLUE": 1}, order_id="meta-2", minutes=1))
    assert "first seen without SKU(s) ['MUG-BLUE']" in str(error)
    [error] = apply(ledger, sighting({"MUG-RED": 5}, order_id="meta-2", minutes=1))
    assert "first seen with 2 units, now 5" in str(error)
    assert counted(ledger) == {"MUG-RED": 2}


# ------------------------------------------------------------------ races
@dataclass
class ReadSpy:
    """Records the revision of every row the ingest reads (first reads and re-reads after a stale write)."""

    ledger: InMemoryLedger
    revisions: list[int]

    def __post_init__(self) -> None:
        read = self.ledger.read_parts

        def spy(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], LedgerPart]:
            found = read(keys)
            self.revisions.extend(found[key].revision for key in keys if key in found)
            return found

        self.ledger.read_parts = spy  # type: ignore[method-assign]


def test_two_sightings_each_adding_a_sku_race_and_both_count_exactly_once() -> None:
    """Both read the row at revision 1; B writes first; A's conditional write goes stale, A re-reads the row B wrote
    (revision 2, with SKU B), merges its own SKU into it and writes revision 3."""
    ledger = InMemoryLedger()
    apply(ledger, sighting({"MUG-RED": 1}))
    adds_blue = sighting({"MUG-RED": 1, "MUG-BLUE": 2}, minutes=1)
    adds_green = sighting({"MUG-RED": 1, "MUG-GREEN": 3}, minutes=2)
    spy = ReadSpy(ledger, [])
    ledger.before_write = lambda: apply(ledger, adds_green)  # B slips in between A's read and A's write

    assert apply(ledger, adds_blue) == []

    assert spy.revisions == [1, 1, 2]  # A read revision 1, B read revision 1, A re-read B's revision 2
    stored = row(ledger)
    assert stored.revision == 3 and ledger.writes == 3
    assert stored.lines == {
        "MUG-RED": LineRecord(ordered=1),
        "MUG-BLUE": LineRecord(ordered=2),
        "MUG-GREEN": LineRecord(ordered=3),
    }
    assert counted(ledger) == {"MUG-RED": 1, "MUG-BLUE": 2, "MUG-GREEN": 3}
    assert dict(ledger.sold) == {"MUG-RED": 1, "MUG-BLUE": 2, "MUG-GREEN": 3}
    assert_counters_equal_what_the_ledger_implies(ledger)


def test_two_sightings_raising_one_skus_units_race_and_the_larger_counts_once() -> None:
    ledger = InMemoryLedger()
    apply(ledger, sighting({"MUG-RED": 1}))
    ledger.before_write = lambda: apply(ledger, sighting({"MUG-RED": 5}, minutes=2))
    assert apply(ledger, sighting({"MUG-RED": 3}, minutes=1)) == []
    assert row(ledger).lines == {"MUG-RED": LineRecord(ordered=5)} and row(ledger).revision == 2
    assert counted(ledger) == {"MUG-RED": 5} and dict(ledger.sold) == {"MUG-RED": 5}


def test_a_race_that_would_take_the_order_past_one_part_refuses_the_loser() -> None:
    """The re-read row is checked again: the union of what the winner wrote and the loser's SKUs must fit one part."""
    ledger = InMemoryLedger()
    base = {f"SKU-{index:02d}": 1 for index in range(40)}
    apply(ledger, sighting(base))
    winner = sighting({**base, **{f"WIN-{index}": 1 for index in range(5)}}, minutes=1)
    loser = sighting({**base, **{f"LOSE-{index}": 1 for index in range(5)}}, minutes=2)
    ledger.before_write = lambda: apply(ledger, winner)
    [error] = apply(ledger, loser)
    assert "past one part" in str(error)
    assert len(row(ledger).lines) == 45 and sum(counted(ledger).values()) == 45
    assert_counters_equal_what_the_ledger_implies(ledger)


# ------------------------------------------------------------------ the join, by property
SKUS = ["A", "B", "C", "D", "E", "F"]


@st.composite
def growing_order(draw: st.DrawFn) -> tuple[list[OrderObservation], bool]:
    """Successive sightings of one events order as a shop edits it: SKUs added, units raised, units cancelled (never
    more than ordered), the state moving forward. Returns them with whether the platform sold it."""
    on_platform = draw(st.booleans())
    quantities: dict[str, int] = draw(st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1, max_size=3))
    cancelled: dict[str, int] = dict.fromkeys(quantities, 0)
    state = draw(st.sampled_from([OrderState.FB_PROCESSING, OrderState.CREATED]))
    sightings = []
    for step in range(draw(st.integers(1, 6))):
        sightings.append(_shop_sighting(quantities, cancelled, state, step, on_platform))
        edit = draw(st.sampled_from(["add", "raise", "cancel", "advance"]))
        if edit == "add":
            sku = draw(st.sampled_from(SKUS))
            quantities[sku] = quantities.get(sku, 0) + draw(st.integers(1, 3))
            cancelled.setdefault(sku, 0)
        elif edit == "raise":
            sku = draw(st.sampled_from(sorted(quantities)))
            quantities[sku] += draw(st.integers(1, 3))
        elif edit == "cancel":
            sku = draw(st.sampled_from(sorted(quantities)))
            cancelled[sku] = draw(st.integers(cancelled[sku], quantities[sku]))
        elif state is not OrderState.COMPLETED:
            state = list(OrderState)[state.rank + 1]
    sightings.append(_shop_sighting(quantities, cancelled, state, len(sightings), on_platform))
    return sightings, on_platform


def _shop_sighting(
    quantities: Mapping[str, int], cancelled: Mapping[str, int], state: OrderState, step: int, on_platform: bool
) -> OrderObservation:
    return OrderObservation(
        order_id=ORDER,
        source=OrderSource.EVENTS,
        state=state,
        lines=tuple(
            OrderLine(
                retailer_id=sku,
                quantity=units,
                cancelled=cancelled[sku],
                restocked=cancelled[sku] if on_platform else 0,
            )
            for sku, units in quantities.items()
        ),
        sold_on_platform=on_platform,
        placed_at=NOW,
        observed_at=NOW + timedelta(minutes=step),
    )


def join(sightings: Sequence[OrderObservation]) -> LedgerPart:
    """The join of every sighting, computed on its own: the largest state, and per SKU the largest counts."""
    lines: dict[str, LineRecord] = {}
    for seen in sightings:
        for line in seen.lines:
            known = lines.get(line.retailer_id, LineRecord(ordered=0))
            lines[line.retailer_id] = LineRecord(
                ordered=max(known.ordered, line.quantity),
                cancelled=max(known.cancelled, line.cancelled),
                restocked=max(known.restocked, line.restocked),
            )
    return LedgerPart(
        order_id=ORDER,
        part=0,
        parts=1,
        source=OrderSource.EVENTS,
        state=max((seen.state for seen in sightings if seen.state), key=lambda state: state.rank),
        synced=False,
        sold_on_platform=sightings[0].sold_on_platform,
        lines=lines,
        placed_at=NOW,
    )


@settings(max_examples=200, deadline=None)
@given(order=growing_order(), seed=st.integers(0, 2**32 - 1), repeats=st.integers(0, 6), page=st.integers(1, 4))
def test_growing_sightings_in_any_order_any_number_of_times_end_at_their_join(
    order: tuple[list[OrderObservation], bool], seed: int, repeats: int, page: int
) -> None:
    sightings, on_platform = order
    rng = random.Random(seed)
    delivery = sightings + [rng.choice(sightings) for _ in range(repeats)]
    rng.shuffle(delivery)
    ledger = InMemoryLedger()
    for start in range(0, len(delivery), page):
        assert apply(ledger, *delivery[start : start + page]) == []
        assert_counters_equal_what_the_ledger_implies(ledger)

    expected = join(sightings)
    assert same_content(row(ledger), expected), (row(ledger), expected)
    implied = contributions(expected)
    for sku, line in expected.lines.items():
        counters = ledger.counters[sku]
        delta = implied.get(sku)
        assert (counters["processing"], counters["created"], counters["acknowledged"]) == (
            (delta.processing, delta.created, delta.acknowledged) if delta else (0, 0, 0)
        ), sku
        assert ledger.sold[sku] == line.ordered, sku  # the largest ordered, counted once
        assert ledger.platform_units[sku] == ((line.restocked - line.ordered) if on_platform else 0), sku
        assert sum(move.units for move in ledger.platform_moves[sku]) == ledger.platform_units[sku], sku


@pytest.mark.parametrize("state", [OrderState.FB_PROCESSING, OrderState.IN_PROGRESS])
def test_growth_moves_the_counter_of_the_orders_state(state: OrderState) -> None:
    ledger = InMemoryLedger()
    apply(ledger, sighting({"MUG-RED": 1}, state=state))
    apply(ledger, sighting({"MUG-RED": 2, "MUG-BLUE": 1}, state=state, minutes=1))
    counter = "processing" if state is OrderState.FB_PROCESSING else "acknowledged"
    assert counted(ledger, counter) == {"MUG-RED": 2, "MUG-BLUE": 1}
