"""Warehouse events against in-memory ports: newest level wins, one bad entry never costs the rest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stocksync.errors import InvalidInputError
from stocksync.logic.order_ingest import OrderIngest
from stocksync.logic.warehouse_input import (
    LEVELS_DETAIL_TYPE,
    ORDERS_SYNCED_DETAIL_TYPE,
    WarehouseInput,
    apply_levels,
    split_entries,
)
from stocksync.models.bus import BusEvent
from stocksync.models.inventory import WarehouseLevel, WarehouseLevelsDetail
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from tests.fakes.ledger import InMemoryLedger

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


class MemoryLevels:
    """The SKU table's conditional level write: a smaller (as_of, sequence) never overwrites, an equal one does."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.levels: dict[str, tuple[int, datetime]] = {}
        self.keys: dict[str, tuple[int, int]] = {}
        self.buckets: dict[str, str] = {}
        self.fail_on = fail_on

    def put_warehouse_level(self, level: WarehouseLevel, *, default_bucket: str) -> bool:
        if level.retailer_id == self.fail_on:
            raise RuntimeError("throttled")
        stored = self.keys.get(level.retailer_id)
        if stored is not None and stored > level.order_key:
            return False
        self.levels[level.retailer_id] = (level.level, level.as_of)
        self.keys[level.retailer_id] = level.order_key
        self.buckets.setdefault(level.retailer_id, default_bucket)
        return True


class RecordingSinks:
    def __init__(self) -> None:
        self.enqueued: list[set[str]] = []
        self.rejected: list[tuple[Any, str]] = []

    def enqueue_recompute(self, retailer_ids: Iterable[str]) -> None:
        self.enqueued.append(set(retailer_ids))

    def reject(self, raw: Any, reason: str) -> None:
        self.rejected.append((raw, reason))

    @property
    def all_enqueued(self) -> set[str]:
        return set().union(*self.enqueued)


def level(sku: str, units: Any, as_of: Any = T0) -> dict[str, Any]:
    return {"retailer_id": sku, "level": units, "as_of": as_of.isoformat() if isinstance(as_of, datetime) else as_of}


def event(detail_type: str, detail: dict[str, Any]) -> BusEvent:
    return BusEvent.model_validate({"id": "evt-1", "detail-type": detail_type, "source": "warehouse", "detail": detail})


@pytest.fixture
def ledger() -> InMemoryLedger:
    return InMemoryLedger()


@pytest.fixture
def store() -> MemoryLevels:
    return MemoryLevels()


@pytest.fixture
def sinks() -> RecordingSinks:
    return RecordingSinks()


@pytest.fixture
def warehouse(store: MemoryLevels, ledger: InMemoryLedger, sinks: RecordingSinks) -> WarehouseInput:
    return WarehouseInput(levels=store, ingest=OrderIngest(ledger, now=T0), sinks=sinks, default_bucket="medium")


def test_levels_are_stored_and_only_changed_skus_are_recomputed(
    warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks
) -> None:
    first = warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": [level("A", 5), level("B", 7)]}))
    assert (first.levels.stored, first.levels.stale) == (2, 0)
    assert store.levels == {"A": (5, T0), "B": (7, T0)}
    assert store.buckets == {"A": "medium", "B": "medium"}

    later, earlier = T0 + timedelta(minutes=5), T0 - timedelta(minutes=5)
    second = warehouse.apply(
        event(LEVELS_DETAIL_TYPE, {"levels": [level("A", 4, later), level("B", 99, earlier), level("B", 98, T0)]})
    )
    # B's earlier entry loses to B's T0 entry inside the event (newest_per_sku), so it never reaches the table.
    assert (second.levels.stored, second.levels.stale, second.levels.superseded_in_event) == (2, 0, 1)
    assert store.levels == {"A": (4, later), "B": (98, T0)}  # an older level never overwrites; an equal one does

    third = warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": [level("B", 97, earlier)]}))
    assert (third.levels.stored, third.levels.stale, third.levels.superseded_in_event) == (0, 1, 0)
    assert store.levels["B"] == (98, T0)
    assert sinks.enqueued == [{"A", "B"}, {"A", "B"}, set()]
    assert sinks.rejected == []


def test_one_bad_level_is_dead_lettered_with_its_index_and_the_others_apply(
    warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks
) -> None:
    levels = [
        level("A", 5),
        {"level": 3, "as_of": T0.isoformat()},
        level("C", -1),
        level("D", 2, "yesterday-ish"),
        level("E", 1, "2026-11-23T09:00:00"),  # no timezone: ambiguous, rejected
        level("F", 9),
    ]
    receipt = warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": levels}))

    assert store.levels == {"A": (5, T0), "F": (9, T0)}
    assert sinks.all_enqueued == {"A", "F"}
    assert receipt.rejected == 4
    reasons = [reason for _raw, reason in sinks.rejected]
    assert reasons[0] == "levels[1].retailer_id: Field required"
    assert reasons[1] == "levels[2].level: Input should be greater than or equal to 0"
    assert reasons[2].startswith("levels[3].as_of: Input should be a valid datetime")
    assert reasons[3].startswith("levels[4].as_of: Input should have timezone info")
    raw, _ = sinks.rejected[1]
    assert raw == {"event_id": "evt-1", "detail-type": LEVELS_DETAIL_TYPE, "index": 2, "entry": levels[2]}


def test_an_event_whose_every_level_is_bad_rejects_them_all_and_applies_nothing(
    warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks
) -> None:
    receipt = warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": [level("A", -2), level("B", "many")]}))
    assert receipt.rejected == 2
    assert store.levels == {}
    assert [reason for _raw, reason in sinks.rejected] == [
        "levels[0].level: Input should be greater than or equal to 0",
        "levels[1].level: Input should be a valid integer",
    ]


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({}, "levels"),
        ({"levels": []}, "levels"),
        ({"levels": "A=5"}, "levels"),
        ({"levels": [level("A", 5)], "warehouse": "north"}, "warehouse"),
    ],
)
def test_a_malformed_levels_envelope_rejects_the_whole_event(
    warehouse: WarehouseInput, store: MemoryLevels, detail: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        warehouse.apply(event(LEVELS_DETAIL_TYPE, detail))
    assert caught.value.errors()[0]["loc"][0] == field
    assert store.levels == {}


def test_an_unknown_detail_type_is_bad_input_naming_the_field(warehouse: WarehouseInput) -> None:
    with pytest.raises(InvalidInputError) as caught:
        warehouse.apply(event("Warehouse Stock Counted", {"levels": [level("A", 5)]}))
    assert caught.value.field == "detail-type"
    assert "Warehouse Stock Counted" in caught.value.problem


def test_split_entries_keeps_the_good_entries_in_order() -> None:
    detail = {"levels": [level("A", 1), level("B", -1), level("C", 3)]}
    kept, rejected = split_entries(WarehouseLevelsDetail, detail, "levels")
    assert kept is not None
    assert [entry.retailer_id for entry in kept.levels] == ["A", "C"]
    assert [(entry.index, entry.entry) for entry in rejected] == [(1, detail["levels"][1])]


def test_a_failed_write_still_enqueues_the_skus_stored_before_it() -> None:
    store, sinks = MemoryLevels(fail_on="C"), RecordingSinks()
    levels = [WarehouseLevel(retailer_id=sku, level=1, as_of=T0) for sku in ("A", "B", "C", "D")]
    with pytest.raises(RuntimeError):
        apply_levels(levels, store, sinks, default_bucket="medium")
    assert sinks.enqueued == [{"A", "B"}]  # not lost; the redelivered message stores them again as repeats


def created_order(order_id: str, sku: str, units: int) -> OrderObservation:
    return OrderObservation(
        order_id=order_id,
        source=OrderSource.META_COMMERCE,
        state=OrderState.CREATED,
        lines=(OrderLine(retailer_id=sku, quantity=units),),
        observed_at=T0,
    )


def synced(order_ids: list[Any], as_of: Any = None) -> BusEvent:
    return event(ORDERS_SYNCED_DETAIL_TYPE, {"order_ids": order_ids, "as_of": as_of or T0.isoformat()})


def test_orders_synced_take_the_units_out_of_c_and_recompute_the_skus(
    warehouse: WarehouseInput, ledger: InMemoryLedger, sinks: RecordingSinks
) -> None:
    OrderIngest(ledger, now=T0).apply([created_order("o-1", "A", 2), created_order("o-2", "B", 3)])
    assert (ledger.counters["A"]["created"], ledger.counters["B"]["created"]) == (2, 3)

    receipt = warehouse.apply(synced(["o-1"]))
    assert receipt.orders_synced == 1
    assert (ledger.counters["A"]["created"], ledger.counters["B"]["created"]) == (0, 3)
    assert sinks.all_enqueued == {"A"}

    again = warehouse.apply(synced(["o-1"]))  # a repeat changes nothing
    assert again.orders_synced == 0
    assert ledger.counters["A"]["created"] == 0


def test_a_sync_notice_before_the_order_means_the_order_never_counts(
    warehouse: WarehouseInput, ledger: InMemoryLedger
) -> None:
    warehouse.apply(synced(["o-9"]))
    OrderIngest(ledger, now=T0).apply([created_order("o-9", "A", 4)])
    assert ledger.counters["A"]["created"] == 0


def test_a_bad_order_id_is_dead_lettered_with_its_index_and_the_others_sync(
    warehouse: WarehouseInput, ledger: InMemoryLedger, sinks: RecordingSinks
) -> None:
    OrderIngest(ledger, now=T0).apply([created_order("o-1", "A", 2), created_order("o-2", "B", 3)])
    receipt = warehouse.apply(synced(["o-1", "  ", 42, "o-2"]))
    assert receipt.orders_synced == 2
    assert (ledger.counters["A"]["created"], ledger.counters["B"]["created"]) == (0, 0)
    assert [reason for _raw, reason in sinks.rejected] == [
        "order_ids[1]: String should have at least 1 character",
        "order_ids[2]: Input should be a valid string",
    ]


def test_a_sync_notice_the_ledger_rejects_names_its_original_index(
    warehouse: WarehouseInput, ledger: InMemoryLedger, sinks: RecordingSinks
) -> None:
    OrderIngest(ledger, now=T0).apply([created_order("o-1", "A", 2)])
    ledger.counters["A"]["created"] = 1  # a corrupted counter: taking 2 units out would go negative
    warehouse.apply(synced(["", "o-1"]))
    assert [reason for _raw, reason in sinks.rejected][1].startswith("order_ids[1]: order o-1: counters of ['A']")


def test_an_unparseable_sync_time_rejects_the_whole_event(warehouse: WarehouseInput) -> None:
    with pytest.raises(ValidationError) as caught:
        warehouse.apply(synced(["o-1"], as_of="soon"))
    assert caught.value.errors()[0]["loc"] == ("as_of",)


EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_the_sample_events_apply_cleanly(warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks) -> None:
    for name in ("warehouse_levels.json", "orders_synced.json"):
        (record,) = json.loads((EVENTS / name).read_text())["Records"]
        warehouse.apply(BusEvent.model_validate_json(record["body"]))
    assert store.levels["TSHIRT-RED-M"][0] == 42 and len(store.levels) == 3
    assert sinks.rejected == []


@pytest.mark.parametrize(
    ("sequence", "problem"),
    [
        (-1, "Input should be greater than or equal to 0"),
        (2**63, "Input should be less than or equal to 9223372036854775807"),
        ("5", "Input should be a valid integer"),
        (1.0, "Input should be a valid integer"),
        (True, "Input should be a valid integer"),
    ],
)
def test_a_sequence_is_a_whole_number_a_dynamodb_number_holds_exactly(
    warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks, sequence: Any, problem: str
) -> None:
    bad = {**level("B", 3), "sequence": sequence}
    warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": [level("A", 5), bad]}))
    assert store.levels == {"A": (5, T0)}
    assert [reason for _raw, reason in sinks.rejected] == [f"levels[1].sequence: {problem}"]


def test_levels_of_one_millisecond_follow_the_sequence_then_arrival(
    warehouse: WarehouseInput, store: MemoryLevels, sinks: RecordingSinks
) -> None:
    for units, sequence in ((10, 2), (9, 1), (8, None), (7, 2), (6, 3)):
        warehouse.apply(event(LEVELS_DETAIL_TYPE, {"levels": [{**level("A", units), "sequence": sequence}]}))
    assert store.levels == {"A": (6, T0)}
    assert store.keys == {"A": (int(T0.timestamp() * 1000), 3)}
    assert sinks.enqueued == [{"A"}, set(), set(), {"A"}, {"A"}]  # 9 and the absent (0) one were below 2
