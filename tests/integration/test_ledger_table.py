"""The ledger's exactly-once guarantee on DynamoDB itself: the conditional transaction of ``DynamoLedger`` against
moto server, not the in-memory fake the unit property test uses.

The stateful machine of tests/unit/test_ledger_properties.py runs here again with ``DynamoLedger`` behind it
(fewer examples: every write is a real TransactWriteItems), so duplicates, stale sightings, racing pollers and lost
enqueues are checked against DynamoDB's condition checks, and counters are read back from the SKU table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from stocksync.dal.codec import decode
from stocksync.dal.keys import SKU_SOLD_RECORD_PREFIX, SKU_STATE_RECORD
from stocksync.dal.ledger_table import DynamoLedger, item_to_row
from stocksync.logic.ledger import CounterDelta, LedgerPart, LineItemsChangedError, contributions, empty_part, merge
from stocksync.logic.order_ingest import (
    MAX_CONFLICT_RETRIES,
    CounterUnderflowError,
    OrderIngest,
    PartKey,
    StaleLedgerError,
)
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.sku import as_ms
from stocksync_dev.local.aws import LocalAws
from tests.unit import test_ledger_properties as properties

NOW = properties.NOW


class TableLedger:
    """``DynamoLedger`` on the deployed tables, with the fake's read-back surface (rows, counters, platform units,
    units sold) read from DynamoDB, and its hooks for slipping a concurrent writer in before a write and for crashing
    before chosen writes."""

    def __init__(self, local_aws: LocalAws) -> None:
        env = local_aws.function_environment()
        self._client = local_aws.client("dynamodb")
        self._orders, self._skus = env["ORDERS_TABLE"], env["SKU_TABLE"]
        self.table = DynamoLedger(self._client, orders_table=self._orders, sku_table=self._skus, now=NOW)
        self.before_write: Callable[[], None] | None = None
        self.write_hook: Callable[[LedgerPart], None] | None = None  # before every write, with the row; stays

    def read_parts(self, keys: Sequence[PartKey]) -> dict[PartKey, LedgerPart]:
        return self.table.read_parts(keys)

    def write_part(
        self, before: LedgerPart, after: LedgerPart, changes: Mapping[str, CounterDelta], sold_at: datetime
    ) -> None:
        if self.write_hook is not None:
            self.write_hook(after)
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()
        self.table.write_part(before, after, changes, sold_at)

    def _scan(self, table: str) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            page = self._client.scan(
                TableName=table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {})
            )
            items += [decode(raw) for raw in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    @property
    def rows(self) -> dict[PartKey, LedgerPart]:
        return {(row.order_id, row.part): row for row in map(item_to_row, self._scan(self._orders))}

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        return {
            item["retailer_id"]: {
                "processing": int(item.get("pending_processing", 0)),
                "created": int(item.get("pending_created", 0)),
                "acknowledged": int(item.get("acknowledged_unsynced", 0)),
            }
            for item in self._scan(self._skus)
            if item["record"] == SKU_STATE_RECORD
        }

    @property
    def platform_units(self) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for item in self._scan(self._skus):
            if item["record"] == SKU_STATE_RECORD:
                result[item["retailer_id"]] = int(item.get("platform_units", 0))
        return result

    @property
    def sold(self) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for item in self._scan(self._skus):
            if item["record"].startswith(SKU_SOLD_RECORD_PREFIX):
                result[item["retailer_id"]] += int(item["units"])
        return result


def test_the_ledger_machine_holds_on_dynamodb(local_aws: LocalAws, aws_env: Any) -> None:
    class TableLedgerMachine(properties.LedgerMachine):
        def __init__(self) -> None:
            super().__init__()
            local_aws.reset_data()
            self.ledger = TableLedger(local_aws)  # type: ignore[assignment]

    run_state_machine_as_test(
        TableLedgerMachine, settings=settings(max_examples=4, stateful_step_count=8, deadline=None)
    )


def sighting(state: OrderState, units: int = 2, cancelled: int = 0) -> OrderObservation:
    return OrderObservation(
        order_id="o-1",
        source=OrderSource.META_COMMERCE,
        state=state,
        lines=(OrderLine(retailer_id="SKU-A", quantity=units, cancelled=cancelled),),
        sold_on_platform=True,
        placed_at=NOW,
        observed_at=NOW,
    )


@pytest.fixture
def ledger(local_aws: LocalAws, aws_env: Any) -> TableLedger:
    return TableLedger(local_aws)


def test_a_write_computed_from_an_old_revision_is_refused_and_changes_nothing(ledger: TableLedger) -> None:
    OrderIngest(ledger, now=NOW).apply([sighting(OrderState.FB_PROCESSING)])
    stored = ledger.read_parts([("o-1", 0)])[("o-1", 0)]
    stale = empty_part(sighting(OrderState.CREATED), 0, 1)  # revision 0: computed before the first write
    after = merge(stale, sighting(OrderState.CREATED), sighting(OrderState.CREATED).lines)
    rows_before, counters_before = ledger.rows, ledger.counters

    with pytest.raises(StaleLedgerError):
        ledger.write_part(stale, after, {"SKU-A": CounterDelta(created=2)}, NOW)

    assert ledger.rows == rows_before and ledger.counters == counters_before
    assert stored.revision == 1


def test_a_counter_that_would_go_negative_refuses_the_whole_transaction_naming_the_sku(ledger: TableLedger) -> None:
    OrderIngest(ledger, now=NOW).apply([sighting(OrderState.FB_PROCESSING)])
    row = ledger.read_parts([("o-1", 0)])[("o-1", 0)]
    after = merge(row, sighting(OrderState.CREATED), sighting(OrderState.CREATED).lines)
    rows_before, counters_before = ledger.rows, ledger.counters

    with pytest.raises(CounterUnderflowError) as refused:
        ledger.write_part(row, after, {"SKU-A": CounterDelta(processing=-3, created=3)}, NOW)  # only 2 in P

    assert refused.value.retailer_ids == ["SKU-A"]
    assert ledger.rows == rows_before and ledger.counters == counters_before


def race_before_the_next_write(ledger: TableLedger, sightings: list[OrderObservation]) -> None:
    """A second poller, on the same tables, applies ``sightings`` just before ``ledger``'s next write lands."""
    racer = TableLedger.__new__(TableLedger)
    racer.__dict__.update(ledger.__dict__)
    racer.before_write = None
    ledger.before_write = lambda: OrderIngest(racer, now=NOW).apply(sightings)


def test_a_poller_that_loses_the_race_re_reads_and_counts_once(ledger: TableLedger) -> None:
    """Poller 1 reads o-1 as new; poller 2 writes it (and moves it on) first; poller 1's write must fail its
    condition, re-read and merge, so the order counts once, in the newer state."""
    race_before_the_next_write(ledger, [sighting(OrderState.FB_PROCESSING), sighting(OrderState.CREATED)])

    receipt = OrderIngest(ledger, now=NOW).apply([sighting(OrderState.FB_PROCESSING)])

    assert not receipt.rejected and receipt.unchanged == 1  # the older state, merged into the newer row
    assert ledger.counters == {"SKU-A": {"processing": 0, "created": 2, "acknowledged": 0}}
    assert ledger.sold == {"SKU-A": 2} and ledger.platform_units == {"SKU-A": -2}
    assert ledger.rows[("o-1", 0)].revision == 2


def test_a_poller_that_read_an_older_revision_of_a_known_order_re_reads_and_counts_once(ledger: TableLedger) -> None:
    """The same race on a row that exists: poller 1 read revision 1 (FB_PROCESSING); poller 2 moves the order to
    CREATED and IN_PROGRESS first (revision 3); poller 1's write of CREATED must be refused, not land on top."""
    OrderIngest(ledger, now=NOW).apply([sighting(OrderState.FB_PROCESSING)])
    race_before_the_next_write(ledger, [sighting(OrderState.CREATED), sighting(OrderState.IN_PROGRESS)])

    receipt = OrderIngest(ledger, now=NOW).apply([sighting(OrderState.CREATED)])

    assert not receipt.rejected and receipt.unchanged == 1
    assert ledger.counters == {"SKU-A": {"processing": 0, "created": 0, "acknowledged": 2}}
    row = ledger.rows[("o-1", 0)]
    assert (row.state, row.revision) == (OrderState.IN_PROGRESS, 3)


def test_two_edits_each_adding_a_sku_race_and_the_loser_merges_into_the_winners_row(ledger: TableLedger) -> None:
    """A web-shop order grows (logic/ledger.py): both edits read revision 1, the racer writes revision 2 with its SKU,
    the DynamoDB condition refuses the other's write, which re-reads and writes revision 3 with both SKUs."""

    def edit(*skus: str) -> OrderObservation:
        return OrderObservation(
            order_id="web-1",
            source=OrderSource.EVENTS,
            state=OrderState.CREATED,
            lines=tuple(OrderLine(retailer_id=sku, quantity=units) for units, sku in enumerate(skus, start=1)),
            placed_at=NOW,
            observed_at=NOW,
        )

    OrderIngest(ledger, now=NOW).apply([edit("SKU-A")])
    race_before_the_next_write(ledger, [edit("SKU-A", "SKU-C")])

    receipt = OrderIngest(ledger, now=NOW).apply([edit("SKU-A", "SKU-B")])

    assert not receipt.rejected and receipt.applied == 1
    row = ledger.rows[("web-1", 0)]
    assert row.revision == 3 and {sku: line.ordered for sku, line in row.lines.items()} == {
        "SKU-A": 1,
        "SKU-B": 2,
        "SKU-C": 2,
    }
    assert {sku: values["created"] for sku, values in ledger.counters.items()} == {"SKU-A": 1, "SKU-B": 2, "SKU-C": 2}
    assert ledger.sold == {"SKU-A": 1, "SKU-B": 2, "SKU-C": 2}


# --- split orders: a failure between the part transactions, then a retry ----------------------------------------------

BIG = [f"BULK-{index:03d}" for index in range(120)]  # three parts of 49, 49 and 22 SKUs, three transactions


class Crash(Exception):
    """The Lambda dying between two transactions."""


def big_order(skus: list[str] = BIG) -> OrderObservation:
    return OrderObservation(
        order_id="big-1",
        source=OrderSource.META_COMMERCE,
        state=OrderState.FB_PROCESSING,
        lines=tuple(OrderLine(retailer_id=sku, quantity=1 + index % 3) for index, sku in enumerate(skus)),
        sold_on_platform=True,
        placed_at=NOW,
        observed_at=NOW,
    )


def platform_moves(ledger: TableLedger) -> dict[str, list[list[int]]]:
    return {
        item["retailer_id"]: [[int(value) for value in move] for move in item.get("platform_moves", [])]
        for item in ledger._scan(ledger._skus)
        if item["record"] == SKU_STATE_RECORD
    }


def assert_big_order_counted_exactly_once(ledger: TableLedger) -> None:
    """Counters, velocity and the platform's moves equal the order once, and equal what the ledger rows imply."""
    rows = ledger.rows
    assert sorted(rows) == [("big-1", part) for part in range(3)]
    assert all(row.revision == 1 for row in rows.values())  # one transaction per part
    assert len({row.lines_digest for row in rows.values()}) == 1 and rows[("big-1", 0)].lines_digest
    implied: dict[str, int] = defaultdict(int)
    for row in rows.values():
        for sku, delta in contributions(row).items():
            implied[sku] += delta.processing
    ordered = {line.retailer_id: line.quantity for line in big_order().lines}
    assert ledger.counters == {
        sku: {"processing": units, "created": 0, "acknowledged": 0} for sku, units in ordered.items()
    }
    assert implied == ordered and ledger.sold == ordered
    assert ledger.platform_units == {sku: -units for sku, units in ordered.items()}
    at = as_ms(NOW)
    assert platform_moves(ledger) == {sku: [[-units, at, at + 1000]] for sku, units in ordered.items()}


@pytest.mark.parametrize("crashed_before", [1, 2])
def test_a_crash_between_part_transactions_then_a_retry_counts_every_sku_exactly_once(
    ledger: TableLedger, crashed_before: int
) -> None:
    def crash(row: LedgerPart) -> None:
        if row.part == crashed_before:
            raise Crash(f"died before part {crashed_before}")

    ledger.write_hook = crash
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    ledger.write_hook = None
    assert sorted(ledger.rows) == [("big-1", part) for part in range(crashed_before)]

    receipt = OrderIngest(ledger, now=NOW).apply([big_order()])

    assert not receipt.rejected and receipt.applied == 1
    assert_big_order_counted_exactly_once(ledger)
    refused = OrderIngest(ledger, now=NOW).apply([big_order([*BIG, "BULK-120"])]).rejected  # really adds a SKU
    assert [type(error) for _, error in refused] == [LineItemsChangedError]


def test_conflicts_beyond_the_retries_on_a_middle_part_then_a_retry_counts_every_sku_exactly_once(
    ledger: TableLedger,
) -> None:
    """Each conflict is what DynamoLedger raises for a TransactionConflict cancellation."""
    conflicts = []

    def conflict_on_part_1(row: LedgerPart) -> None:
        if row.part == 1:
            conflicts.append(row.part)
            raise StaleLedgerError("big-1 part 1: transaction conflict")

    ledger.write_hook = conflict_on_part_1
    with pytest.raises(StaleLedgerError, match="still contended"):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    ledger.write_hook = None
    assert len(conflicts) == MAX_CONFLICT_RETRIES and sorted(ledger.rows) == [("big-1", 0)]

    assert not OrderIngest(ledger, now=NOW).apply([big_order()]).rejected
    assert_big_order_counted_exactly_once(ledger)


def test_a_poller_racing_the_retry_of_a_split_order_counts_it_once(ledger: TableLedger) -> None:
    """The retry and a second poller finish the same half-written order at once: each part is written once."""

    def crash(row: LedgerPart) -> None:
        if row.part == 1:
            raise Crash("died before part 1")

    ledger.write_hook = crash
    with pytest.raises(Crash):
        OrderIngest(ledger, now=NOW).apply([big_order()])
    ledger.write_hook = None
    race_before_the_next_write(ledger, [big_order()])

    receipt = OrderIngest(ledger, now=NOW).apply([big_order()])

    assert not receipt.rejected
    assert_big_order_counted_exactly_once(ledger)
