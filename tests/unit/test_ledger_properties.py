"""Stateful property test: counters equal what the ledger implies, under any delivery the platform can produce.

A model platform places, advances, cancels and syncs orders; every change leaves a sighting. Orders of the ``events``
source (web shops) are also edited: SKUs added, units raised, so their sightings grow. The pollers then see
sightings in any order: duplicates, stale ones after newer ones, shuffled pages, two pollers racing on one row,
crashes after the write (the receipt, i.e. the enqueue, is lost) and crashes between the part transactions of a split
order (the retry must finish it, never be refused). After every step the counters must equal the sum of the ledger
rows' contributions and never be negative, and every row of a growing order must be the join of the sightings
applied to it (the largest units per SKU, each counted once in ``sold``); after a catch-up they must equal the
platform's truth.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stocksync.logic.ledger import MAX_LINES_PER_PART, LedgerPart, LineItemsChangedError, contributions, part_count
from stocksync.logic.order_ingest import IngestReceipt, LedgerPort, OrderIngest
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger

SKUS = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"]
EDIT_SKUS = [*SKUS, "SKU-E", "SKU-F"]  # an edit may add SKUs no order was placed with
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
STATES = list(OrderState)


class Crash(Exception):
    """The process dying between two transactions."""


@dataclass
class TruthOrder:
    order_id: str
    quantities: dict[str, int]
    state: OrderState = OrderState.FB_PROCESSING
    cancelled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    restocked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    synced: bool = False
    source: OrderSource = OrderSource.META_COMMERCE
    sold_on_platform: bool = True

    def sighting(self, step: int) -> OrderObservation:
        return OrderObservation(
            order_id=self.order_id,
            source=self.source,
            state=self.state,
            lines=tuple(
                OrderLine(
                    retailer_id=sku,
                    quantity=quantity,
                    cancelled=self.cancelled[sku],
                    restocked=self.restocked[sku],
                )
                for sku, quantity in self.quantities.items()
            ),
            sold_on_platform=self.sold_on_platform,
            placed_at=NOW,
            observed_at=NOW + timedelta(seconds=step),
        )

    def truth(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        if self.synced:
            return result
        counter = {
            OrderState.FB_PROCESSING: "processing",
            OrderState.CREATED: "created",
            OrderState.IN_PROGRESS: "acknowledged",
        }.get(self.state)
        if counter is None:
            return result
        for sku, quantity in self.quantities.items():
            open_units = quantity - self.cancelled[sku]
            if open_units:
                result[sku] = {counter: open_units}
        return result


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = InMemoryLedger()
        self.orders: list[TruthOrder] = []
        self.sightings: list[OrderObservation] = []
        self.step = 0
        # Every sighting the ledger took (not refused), per order: a growing order's rows must be their join.
        self.applied: dict[str, list[OrderObservation]] = defaultdict(list)

    def _ingest(self) -> OrderIngest:
        return _RecordingIngest(self.ledger, self.applied)

    def _record(self, sighting: OrderObservation) -> None:
        self.step += 1
        self.sightings.append(sighting)

    @rule(
        lines=st.dictionaries(st.sampled_from(SKUS), st.integers(1, 5), min_size=1, max_size=4),
        source=st.sampled_from([OrderSource.META_COMMERCE, OrderSource.EVENTS]),
        on_platform=st.booleans(),
    )
    def place_order(self, lines: dict[str, int], source: OrderSource, on_platform: bool) -> None:
        order = TruthOrder(
            order_id=f"o-{len(self.orders)}",
            quantities=lines,
            source=source,
            sold_on_platform=on_platform or source is OrderSource.META_COMMERCE,
        )
        self.orders.append(order)
        self._record(order.sighting(self.step))

    @precondition(lambda self: len(self.orders) < 3)
    @rule(size=st.integers(50, 70), source=st.sampled_from([OrderSource.META_COMMERCE, OrderSource.EVENTS]))
    def place_big_order(self, size: int, source: OrderSource) -> None:
        """More SKUs than one transaction holds: the order is split into parts."""
        lines = {f"BULK-{index:03d}": 1 + index % 3 for index in range(size)}
        order = TruthOrder(order_id=f"big-{len(self.orders)}", quantities=lines, source=source)
        self.orders.append(order)
        self._record(order.sighting(self.step))

    @precondition(lambda self: any(self._editable(order) for order in self.orders))
    @rule(data=st.data(), units=st.integers(1, 3))
    def shop_edits_order(self, data: st.DataObject, units: int) -> None:
        """A web shop adds a SKU to an open order, or units to one of its SKUs: the order grows."""
        order = data.draw(st.sampled_from([order for order in self.orders if self._editable(order)]))
        sku = data.draw(st.sampled_from(EDIT_SKUS))
        order.quantities[sku] = order.quantities.get(sku, 0) + units
        self._record(order.sighting(self.step))

    @precondition(lambda self: self._stored_split_events_orders())
    @rule(data=st.data())
    def an_edit_to_a_split_order_is_refused(self, data: st.DataObject) -> None:
        """A split order never grows, whatever its source: the sighting is refused and nothing moves."""
        order = data.draw(st.sampled_from(self._stored_split_events_orders()))
        grown = TruthOrder(
            order_id=order.order_id,
            quantities={**order.quantities, "BULK-999": 1},
            state=order.state,
            source=order.source,
            sold_on_platform=order.sold_on_platform,
        )
        rows, counters = dict(self.ledger.rows), {sku: dict(values) for sku, values in self.ledger.counters.items()}
        receipt = self._ingest().apply([grown.sighting(self.step)])
        assert [type(error) for _, error in receipt.rejected] == [LineItemsChangedError]
        assert self.ledger.rows == rows
        assert {sku: dict(values) for sku, values in self.ledger.counters.items()} == counters

    def _stored_split_events_orders(self) -> list[TruthOrder]:
        """Split ``events`` orders the ledger holds lines of (an order no poll has seen yet would take any sighting)."""
        return [
            order
            for order in self.orders
            if order.source is OrderSource.EVENTS
            and len(order.quantities) > MAX_LINES_PER_PART
            and any(row.lines for key, row in self.ledger.rows.items() if key[0] == order.order_id)
        ]

    @staticmethod
    def _editable(order: TruthOrder) -> bool:
        return (
            order.source is OrderSource.EVENTS
            and order.state is not OrderState.COMPLETED
            and len(order.quantities) <= MAX_LINES_PER_PART - 2  # an edit keeps it within one part
        )

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def advance_order(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.orders))
        if order.state is OrderState.COMPLETED:
            return
        order.state = STATES[order.state.rank + 1]
        self._record(order.sighting(self.step))

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), by_buyer=st.booleans())
    def cancel_units(self, data: st.DataObject, by_buyer: bool) -> None:
        order = data.draw(st.sampled_from(self.orders))
        open_skus = [sku for sku, qty in order.quantities.items() if qty > order.cancelled[sku]]
        if order.state in (OrderState.IN_PROGRESS, OrderState.COMPLETED) or not open_skus:
            return
        sku = data.draw(st.sampled_from(open_skus))
        units = data.draw(st.integers(1, order.quantities[sku] - order.cancelled[sku]))
        order.cancelled[sku] += units
        if by_buyer:
            order.restocked[sku] += units
        if all(order.cancelled[s] == q for s, q in order.quantities.items()):
            order.state = OrderState.COMPLETED
        self._record(order.sighting(self.step))

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def warehouse_syncs(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(self.orders))
        order.synced = True
        self._record(
            OrderObservation(order_id=order.order_id, source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)
        )

    @rule(order_id=st.sampled_from(["ghost-1", "ghost-2"]))
    def sync_notice_before_the_order(self, order_id: str) -> None:
        """The warehouse may name an order the poller has not seen yet: a stub row, no counts."""
        self._ingest().apply(
            [OrderObservation(order_id=order_id, source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)]
        )

    @precondition(lambda self: self.sightings)
    @rule(data=st.data())
    def poll_sees_any_sighting(self, data: st.DataObject) -> None:
        """Duplicates and stale sightings: any sighting ever made may be delivered again, at any time."""
        sighting = data.draw(st.sampled_from(self.sightings))
        self._ingest().apply([sighting])

    @precondition(lambda self: self.sightings)
    @rule(data=st.data())
    def poll_sees_a_shuffled_page(self, data: st.DataObject) -> None:
        page = data.draw(st.lists(st.sampled_from(self.sightings), min_size=1, max_size=8))
        self._ingest().apply(page)

    @precondition(lambda self: len(self.sightings) >= 2)
    @rule(data=st.data())
    def two_pollers_race(self, data: st.DataObject) -> None:
        """Poller 1 reads, poller 2 writes the same order, then poller 1 writes: the condition must catch it."""
        first = data.draw(st.sampled_from(self.sightings))
        same_order = [s for s in self.sightings if s.order_id == first.order_id]
        second = data.draw(st.sampled_from(same_order))
        self.ledger.before_write = lambda: self._ingest().apply([second])
        self._ingest().apply([first])
        self.ledger.before_write = None

    @precondition(lambda self: self.sightings)
    @rule(data=st.data())
    def crash_after_write(self, data: st.DataObject) -> None:
        """The write lands but the Lambda dies before the enqueue: the receipt is lost, the counts must not be."""
        sighting = data.draw(st.sampled_from(self.sightings))
        self._ingest().apply([sighting])  # receipt dropped on purpose

    @precondition(lambda self: any(len(order.quantities) > MAX_LINES_PER_PART for order in self.orders))
    @rule(data=st.data())
    def crash_between_parts(self, data: st.DataObject) -> None:
        """A try dies just before one part's transaction of a split order (the parts before it landed): later
        sightings of the order must write the other parts, not be refused for SKUs "first seen" without them."""
        big = [s for s in self.sightings if len(s.lines) > MAX_LINES_PER_PART]
        sighting = data.draw(st.sampled_from(big))
        dies_before = data.draw(st.integers(1, part_count(len(sighting.lines)) - 1))

        def crash(row: LedgerPart) -> None:
            if row.part == dies_before:
                raise Crash(f"died before part {dies_before}")

        self.ledger.write_hook = crash
        try:
            with contextlib.suppress(Crash):
                self._ingest().apply([sighting])
        finally:
            self.ledger.write_hook = None

    @rule()
    def catch_up_matches_the_platform(self) -> None:
        """Once the latest sighting of every order is applied, counters equal the platform's truth."""
        latest = [order.sighting(self.step) for order in self.orders]
        synced = [
            OrderObservation(order_id=o.order_id, source=OrderSource.WAREHOUSE, synced=True, observed_at=NOW)
            for o in self.orders
            if o.synced
        ]
        receipt = self._ingest().apply(latest + synced)
        assert not receipt.rejected
        truth: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for order in self.orders:
            for sku, counts in order.truth().items():
                for name, units in counts.items():
                    truth[sku][name] += units
        for sku, counters in self.ledger.counters.items():
            for name in ("processing", "created", "acknowledged"):
                assert counters[name] == truth[sku][name], (sku, name)

    @invariant()
    def a_growing_orders_row_is_the_join_of_the_sightings_it_took(self) -> None:
        """Per SKU the largest units any applied sighting showed: so ``sold`` (checked below) counts exactly those."""
        for order in self.orders:
            if order.source is not OrderSource.EVENTS or len(order.quantities) > MAX_LINES_PER_PART:
                continue
            stored = self.ledger.rows.get((order.order_id, 0))
            taken = self.applied.get(order.order_id, [])
            if stored is None:
                assert not taken
                continue
            expected: dict[str, tuple[int, int, int]] = {}
            for seen in taken:
                for line in seen.lines:
                    ordered, cancelled, restocked = expected.get(line.retailer_id, (0, 0, 0))
                    expected[line.retailer_id] = (
                        max(ordered, line.quantity),
                        max(cancelled, line.cancelled),
                        max(restocked, line.restocked),
                    )
            actual = {sku: (line.ordered, line.cancelled, line.restocked) for sku, line in stored.lines.items()}
            assert actual == expected, (order.order_id, actual, expected)
            assert all(line.restocked <= line.cancelled <= line.ordered for line in stored.lines.values())

    @invariant()
    def counters_equal_what_the_ledger_implies(self) -> None:
        implied: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        platform: dict[str, int] = defaultdict(int)
        sold: dict[str, int] = defaultdict(int)
        for row in self.ledger.rows.values():
            for sku, delta in contributions(row).items():
                implied[sku]["processing"] += delta.processing
                implied[sku]["created"] += delta.created
                implied[sku]["acknowledged"] += delta.acknowledged
            for sku, line in row.lines.items():
                sold[sku] += line.ordered
                if row.sold_on_platform:
                    platform[sku] += line.restocked - line.ordered
        # Read once: on DynamoDB (tests/integration/test_ledger_table.py) each read is a scan of the SKU table, and
        # reading them per SKU made a run that drew split orders take minutes.
        platform_units, units_sold = self.ledger.platform_units, self.ledger.sold
        for sku, counters in self.ledger.counters.items():
            for name, value in counters.items():
                assert value >= 0, (sku, name, value)
                assert value == implied[sku][name], (sku, name, value, implied[sku][name])
            assert platform_units[sku] == platform[sku]
            assert units_sold[sku] == sold[sku]


class _RecordingIngest(OrderIngest):
    """OrderIngest that notes the sightings the ledger took (all but the refused ones), for the join invariant."""

    def __init__(self, ledger: LedgerPort, applied: dict[str, list[OrderObservation]]) -> None:
        super().__init__(ledger, now=NOW)
        self._applied = applied

    def apply(self, observations: Iterable[OrderObservation], **kwargs: Any) -> IngestReceipt:
        sightings = list(observations)
        receipt = super().apply(sightings, **kwargs)
        refused = [id(observation) for observation, _ in receipt.rejected]
        for observation in sightings:
            if id(observation) not in refused:
                self._applied[observation.order_id].append(observation)
        return receipt


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestLedgerProperties = LedgerMachine.TestCase
