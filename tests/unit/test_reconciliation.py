"""Reconciliation against in-memory ports: nothing to repair without a fault, each fault found and repaired once,
and nothing repaired while the counters are moving."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stocksync.logic.ledger import LedgerPart, LineRecord
from stocksync.logic.order_ingest import OrderIngest
from stocksync.logic.reconciliation import (
    COUNTER_FIELDS,
    CounterReading,
    ReconcileRequest,
    Repair,
    implied_counts,
    reconcile,
)
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger

T0 = datetime(2026, 11, 23, 3, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)  # the run starts well after the last order change


class LedgerCounters:
    """CounterStore over InMemoryLedger's counters, with a last-change time per SKU and hooks for races."""

    def __init__(self, ledger: InMemoryLedger, *, changed_at: datetime = T0) -> None:
        self.ledger = ledger
        self.updated_at = dict.fromkeys(ledger.counters, changed_at)
        self.before_read: Callable[[], None] | None = None
        self.before_repair: Callable[[], None] | None = None
        self.repairs = 0

    def _reading(self, retailer_id: str) -> CounterReading:
        counts = self.ledger.counters[retailer_id]
        return CounterReading(
            retailer_id,
            **{name: counts[part] for name, part in COUNTER_FIELDS.items()},
            updated_at=self.updated_at.get(retailer_id),
        )

    def nonzero(self) -> Iterator[CounterReading]:
        for retailer_id, counts in list(self.ledger.counters.items()):
            if any(counts.values()):
                yield self._reading(retailer_id)

    def read(self, retailer_ids: Collection[str]) -> dict[str, CounterReading]:
        if self.before_read is not None:
            self.before_read()
        return {rid: self._reading(rid) for rid in retailer_ids if rid in self.ledger.counters}

    def repair(self, observed: CounterReading, counts: Mapping[str, int], *, now: datetime) -> bool:
        if self.before_repair is not None:
            self.before_repair()
        if self._reading(observed.retailer_id) != observed:
            return False
        for name, part in COUNTER_FIELDS.items():
            self.ledger.counters[observed.retailer_id][part] = counts[name]
        self.updated_at[observed.retailer_id] = now
        self.repairs += 1
        return True


class OpenRows:
    def __init__(self, ledger: InMemoryLedger) -> None:
        self.ledger = ledger

    def open_rows(self) -> Iterator[LedgerPart]:
        return (row for row in list(self.ledger.rows.values()) if row.is_open)


class RecordingRecompute:
    def __init__(self) -> None:
        self.enqueued: list[tuple[list[str], str]] = []

    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None:
        self.enqueued.append((list(retailer_ids), reason))


def order(order_id: str, state: OrderState, *lines: tuple[str, int], synced: bool = False) -> OrderObservation:
    return OrderObservation(
        order_id=order_id,
        source=OrderSource.META_COMMERCE,
        state=state,
        lines=tuple(OrderLine(retailer_id=sku, quantity=units) for sku, units in lines),
        synced=synced,
        observed_at=T0,
    )


@pytest.fixture
def ledger() -> InMemoryLedger:
    ledger = InMemoryLedger()
    OrderIngest(ledger, now=T0).apply(
        [
            order("o-1", OrderState.FB_PROCESSING, ("A", 2), ("B", 1)),
            order("o-2", OrderState.CREATED, ("A", 3)),
            order("o-3", OrderState.IN_PROGRESS, ("B", 4)),
            order("o-4", OrderState.CREATED, ("C", 5)),
            order("o-5", OrderState.COMPLETED, ("C", 1)),
        ]
    )
    OrderIngest(ledger, now=T0).apply([order("o-4", OrderState.CREATED, synced=True)])  # the warehouse took o-4
    return ledger


def run(ledger: InMemoryLedger, store: LedgerCounters, recompute: RecordingRecompute | None = None, **options):  # type: ignore[no-untyped-def]
    return reconcile(store, OpenRows(ledger), recompute or RecordingRecompute(), now=LATER, **options)


def test_with_no_fault_there_is_nothing_to_repair(ledger: InMemoryLedger) -> None:
    recompute = RecordingRecompute()
    report = run(ledger, LedgerCounters(ledger), recompute)
    assert report.repairs == [] and report.skipped_moved == [] and report.skipped_recent == []
    assert report.skus_checked == 2  # A and B; C's only order is synced or completed
    assert report.open_rows == 3
    assert recompute.enqueued == []


def test_implied_counts_sum_every_open_row_per_counter(ledger: InMemoryLedger) -> None:
    implied, rows = implied_counts(ledger.rows.values())
    assert rows == 5
    assert implied == {
        "A": {"pending_processing": 2, "pending_created": 3, "acknowledged_unsynced": 0},
        "B": {"pending_processing": 1, "pending_created": 0, "acknowledged_unsynced": 4},
    }


def test_a_corrupted_counter_is_repaired_logged_and_recomputed(
    ledger: InMemoryLedger, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.counters["A"]["created"] = 7
    store, recompute = LedgerCounters(ledger), RecordingRecompute()

    report = run(ledger, store, recompute)

    assert report.repairs == [Repair("A", "pending_created", 7, 3)]
    assert ledger.counters["A"] == {"processing": 2, "created": 3, "acknowledged": 0}
    assert recompute.enqueued == [(["A"], "reconciliation")]
    repairs = [record for record in caplog.records if record.getMessage() == "counter repaired"]
    assert [(r.retailer_id, r.counter, r.was, r.now) for r in repairs] == [("A", "pending_created", 7, 3)]  # type: ignore[attr-defined]

    assert run(ledger, store).repairs == []  # a second run finds the counters right


def test_a_counter_left_over_by_an_order_that_is_no_longer_open_is_found(ledger: InMemoryLedger) -> None:
    ledger.counters["C"]["acknowledged"] = 2  # C has no open row at all
    ledger.counters["D"]["processing"] = 1  # nor does D
    report = run(ledger, LedgerCounters(ledger))
    assert report.repairs == [Repair("C", "acknowledged_unsynced", 2, 0), Repair("D", "pending_processing", 1, 0)]
    assert ledger.counters["C"]["acknowledged"] == 0 and ledger.counters["D"]["processing"] == 0


def test_a_missing_counter_for_an_open_order_is_restored(ledger: InMemoryLedger) -> None:
    ledger.counters["B"]["acknowledged"] = 0
    ledger.counters["B"]["processing"] = 0
    report = run(ledger, LedgerCounters(ledger))
    assert sorted(report.repairs, key=lambda r: r.counter) == [
        Repair("B", "acknowledged_unsynced", 0, 4),
        Repair("B", "pending_processing", 0, 1),
    ]


def test_a_dry_run_reports_and_changes_nothing(ledger: InMemoryLedger) -> None:
    ledger.counters["A"]["processing"] = 9
    store, recompute = LedgerCounters(ledger), RecordingRecompute()
    report = run(ledger, store, recompute, dry_run=True)
    assert report.repairs == [Repair("A", "pending_processing", 9, 2)]
    assert ledger.counters["A"]["processing"] == 9
    assert store.repairs == 0 and recompute.enqueued == []


def test_a_sku_whose_counters_move_while_the_ledger_is_read_is_left_alone(ledger: InMemoryLedger) -> None:
    store = LedgerCounters(ledger)
    # Between the scan and the re-read, a new order lands for A: the ledger may have been read before it.
    store.before_read = lambda: OrderIngest(ledger, now=LATER).apply([order("o-6", OrderState.CREATED, ("A", 1))])
    ledger.counters["A"]["created"] += 10  # and A's counter was wrong all along
    report = run(ledger, store)
    assert report.repairs == [] and report.skipped_moved == ["A"]


def test_a_sku_the_scan_saw_at_zero_that_moves_during_the_run_is_left_alone(ledger: InMemoryLedger) -> None:
    OrderIngest(ledger, now=T0).apply([order("o-7", OrderState.FB_PROCESSING, ("C", 2))])
    ledger.counters["C"]["processing"] = 0  # wrong, and so the scan does not list C
    store = LedgerCounters(ledger)
    # An order for C lands after the ledger was read, before the re-read: repairing now would drop its 3 units.
    store.before_read = lambda: OrderIngest(ledger, now=LATER).apply([order("o-8", OrderState.CREATED, ("C", 3))])
    report = run(ledger, store)
    assert report.repairs == [] and report.skipped_moved == ["C"]
    assert ledger.counters["C"]["created"] == 3
    assert run(ledger, store).repairs == [Repair("C", "pending_processing", 0, 2)]  # the next run repairs it


def test_counters_changed_within_the_settle_time_are_left_for_the_next_run(ledger: InMemoryLedger) -> None:
    ledger.counters["A"]["created"] = 1
    store = LedgerCounters(ledger, changed_at=LATER - timedelta(minutes=5))
    report = run(ledger, store, settle=timedelta(minutes=20))
    assert report.repairs == [] and report.skipped_recent == ["A"]
    assert run(ledger, store, settle=timedelta(minutes=1)).repairs == [Repair("A", "pending_created", 1, 3)]


def test_a_repair_that_loses_the_race_is_skipped(ledger: InMemoryLedger) -> None:
    ledger.counters["A"]["created"] = 1
    store = LedgerCounters(ledger)
    store.before_repair = lambda: ledger.counters["A"].update(created=2)
    report = run(ledger, store)
    assert report.repairs == [] and report.skipped_moved == ["A"]
    assert ledger.counters["A"]["created"] == 2  # the conditional write did not overwrite the newer value


SKUS = ["A", "B", "C"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(OrderState)), st.sampled_from(SKUS), st.integers(1, 4), st.booleans()),
        max_size=12,
    ),
    st.dictionaries(
        st.tuples(st.sampled_from([*SKUS, "Z"]), st.sampled_from(["processing", "created", "acknowledged"])),
        st.integers(0, 9),
        max_size=4,
    ),
)
def test_after_a_run_every_counter_equals_what_the_ledger_implies(
    orders: list[tuple[OrderState, str, int, bool]], corruption: dict[tuple[str, str], int]
) -> None:
    ledger = InMemoryLedger()
    OrderIngest(ledger, now=T0).apply(
        [
            order(f"o-{index}", state, (sku, units), synced=synced)
            for index, (state, sku, units, synced) in enumerate(orders)
        ]
    )
    for (sku, counter), value in corruption.items():
        ledger.counters[sku][counter] = value
    run(ledger, LedgerCounters(ledger))
    implied, _ = implied_counts(ledger.rows.values())
    for sku, counts in ledger.counters.items():
        wanted = implied.get(sku, dict.fromkeys(COUNTER_FIELDS, 0))
        assert {name: counts[part] for name, part in COUNTER_FIELDS.items()} == wanted


def test_rows_of_a_split_order_add_up() -> None:
    rows = [
        LedgerPart("o-1", 0, 2, OrderSource.EVENTS, OrderState.CREATED, False, False, {"A": LineRecord(5, 2)}),
        LedgerPart("o-1", 1, 2, OrderSource.EVENTS, OrderState.CREATED, False, False, {"B": LineRecord(1)}),
        LedgerPart("o-2", 0, 1, OrderSource.EVENTS, OrderState.CREATED, False, False, {"A": LineRecord(2)}),
    ]
    implied, count = implied_counts(rows)
    assert count == 3
    assert implied["A"]["pending_created"] == 5 and implied["B"]["pending_created"] == 1


def test_the_sample_schedule_input_asks_for_a_real_run() -> None:
    sample = Path(__file__).resolve().parents[2] / "events" / "reconcile_schedule.json"
    assert ReconcileRequest.model_validate_json(sample.read_text()).dry_run is False
    assert ReconcileRequest.model_validate(
        {"dry_run": True, "scheduled_time": "<aws.scheduler.scheduled-time>"}
    ).dry_run
    with pytest.raises(ValidationError):
        ReconcileRequest.model_validate({"dry_run": "yes"})  # a typo must not turn a dry run into a real one
