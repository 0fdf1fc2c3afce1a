"""Warehouse input: stock levels (I) and "order synced" notices, applied so that one bad entry never costs the rest.

Why entries are validated one by one: a warehouse publishes many SKUs per event, and rejecting a whole event for
one negative level would hold back every other SKU's correct level until someone fixes the feed. So the envelope
(detail-type, the ``levels`` list itself, ``as_of`` of a sync notice) is validated as a whole, and a bad envelope
sends the whole event to the dead-letter queue; each entry is validated on its own, and a bad entry is dead-lettered
alone with its index (``levels[3].level: Input should be greater than or equal to 0``) while the others apply.

A level is stored only if it is not older than the stored one (the SKU table's conditional write; the order is
``as_of``, then the sender's optional ``sequence``, then arrival, see models/inventory.py), so late events change
nothing. A repeat of the stored level (a redelivery, the retry of an event whose first try crashed after the write
and before the enqueue) is written again and its SKU sent to be recomputed again: a lost enqueue would otherwise
leave the catalog stale until the bucket's sweep, and a recompute of an unchanged SKU pushes nothing. SKUs whose
level was stale are not recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from stocksync.errors import InvalidInputError
from stocksync.logic.order_ingest import OrderIngest
from stocksync.models.bus import BusEvent
from stocksync.models.inventory import OrdersSyncedDetail, WarehouseLevel, WarehouseLevelsDetail
from stocksync.models.orders import OrderObservation, OrderSource

LEVELS_DETAIL_TYPE = "Warehouse Stock Levels"
ORDERS_SYNCED_DETAIL_TYPE = "Warehouse Orders Synced"

_Detail = TypeVar("_Detail", bound=BaseModel)


class LevelStore(Protocol):
    def put_warehouse_level(self, level: WarehouseLevel, *, default_bucket: str) -> bool:
        """Store the level unless a greater one is stored; True when the level is what is stored now (written, or
        a repeat of the stored level), False when it is stale."""
        ...


class WarehouseSinks(Protocol):
    """Where the results go: SKUs to recompute, and rejected entries (to the dead-letter queue, with the reason)."""

    def enqueue_recompute(self, retailer_ids: Iterable[str]) -> None: ...

    def reject(self, raw: Any, reason: str) -> None: ...


@dataclass(frozen=True)
class RejectedEntry:
    """One entry of an event's list that failed validation: where it was, why, and what it held."""

    index: int
    reason: str  # "levels[3].level: Input should be greater than or equal to 0"
    entry: Any


@dataclass
class LevelsReceipt:
    stored: int = 0  # levels written: newer than what was stored, or a repeat of it
    stale: int = 0  # levels older than the stored one
    # Entries of one event for a SKU the same event lists again with a level that wins (newest_per_sku).
    superseded_in_event: int = 0
    changed_skus: set[str] = field(default_factory=set)  # the SKUs of the stored levels, to recompute


@dataclass
class WarehouseReceipt:
    """What one warehouse event did."""

    levels: LevelsReceipt = field(default_factory=LevelsReceipt)
    orders_synced: int = 0  # sync notices that changed the ledger
    rejected: int = 0  # entries dead-lettered on their own


def _entry_problems(error: ValidationError, list_field: str) -> dict[int, list[str]] | None:
    """Problems per index of ``list_field`` when every problem lies inside one of its entries, else None."""
    problems: dict[int, list[str]] = {}
    for issue in error.errors(include_url=False):
        location = issue["loc"]
        if len(location) < 2 or location[0] != list_field or not isinstance(location[1], int):
            return None
        index = location[1]
        inner = "".join(f".{part}" for part in location[2:])
        problems.setdefault(index, []).append(f"{list_field}[{index}]{inner}: {issue['msg']}")
    return problems


def split_entries(
    model: type[_Detail], detail: Mapping[str, Any], list_field: str
) -> tuple[_Detail | None, list[RejectedEntry]]:
    """Validate ``detail`` as ``model``, setting aside the entries of ``list_field`` that fail on their own.

    Returns the model holding only the good entries (None when none is good) and the rejected entries. Any problem
    outside a single entry (a missing list, a bad ``as_of``, an unknown field) raises the ValidationError: the
    event as a whole is bad.
    """
    try:
        return model.model_validate(detail), []
    except ValidationError as error:
        problems = _entry_problems(error, list_field)
        if problems is None:
            raise
    entries = detail[list_field]
    rejected = [
        RejectedEntry(index=index, reason="; ".join(reasons), entry=entries[index])
        for index, reasons in sorted(problems.items())
    ]
    kept = [entry for index, entry in enumerate(entries) if index not in problems]
    if not kept:
        return None, rejected
    return model.model_validate({**detail, list_field: kept}), rejected


def newest_per_sku(levels: Iterable[WarehouseLevel]) -> tuple[list[WarehouseLevel], int]:
    """One level per SKU of an event, and how many entries that set aside.

    An event listing a SKU twice is a sender's slip, and its entries must not race each other through the table.
    The rule is the one the table applies between events: the greater (``as_of``, ``sequence``) wins, and on a tie
    the later entry does, as a later arrival would. The kept levels stay in the event's order.
    """
    winner: dict[str, tuple[tuple[int, int], int]] = {}
    entries = list(levels)
    for index, level in enumerate(entries):
        key = (level.order_key, index)
        if level.retailer_id not in winner or key >= winner[level.retailer_id]:
            winner[level.retailer_id] = key
    kept_indices = {index for _key, index in winner.values()}
    kept = [level for index, level in enumerate(entries) if index in kept_indices]
    return kept, len(entries) - len(kept)


def apply_levels(
    levels: Iterable[WarehouseLevel], store: LevelStore, sinks: WarehouseSinks, *, default_bucket: str
) -> LevelsReceipt:
    """Store each level unless a greater one is stored; enqueue the SKUs of the stored levels (repeats included).
    A SKU the event lists twice is stored once, by ``newest_per_sku``'s rule.

    The enqueue runs even when a write fails half-way, so SKUs already stored are not left to the next sweep; the
    redelivery then writes them again as repeats and enqueues them once more, which is harmless.
    """
    kept, superseded = newest_per_sku(levels)
    receipt = LevelsReceipt(superseded_in_event=superseded)
    try:
        for level in kept:
            if store.put_warehouse_level(level, default_bucket=default_bucket):
                receipt.stored += 1
                receipt.changed_skus.add(level.retailer_id)
            else:
                receipt.stale += 1
    finally:
        sinks.enqueue_recompute(receipt.changed_skus)
    return receipt


class WarehouseInput:
    """Applies one warehouse event from the bus: stock levels to the SKU table, sync notices to the ledger."""

    def __init__(self, *, levels: LevelStore, ingest: OrderIngest, sinks: WarehouseSinks, default_bucket: str) -> None:
        self._levels = levels
        self._ingest = ingest
        self._sinks = sinks
        self._default_bucket = default_bucket

    def apply(self, event: BusEvent) -> WarehouseReceipt:
        if event.detail_type == LEVELS_DETAIL_TYPE:
            return self._apply_levels(event)
        if event.detail_type == ORDERS_SYNCED_DETAIL_TYPE:
            return self._apply_orders_synced(event)
        raise InvalidInputError(
            "detail-type",
            f"unknown {event.detail_type!r}; expected {LEVELS_DETAIL_TYPE!r} or {ORDERS_SYNCED_DETAIL_TYPE!r}",
        )

    def _apply_levels(self, event: BusEvent) -> WarehouseReceipt:
        detail, rejected = split_entries(WarehouseLevelsDetail, event.detail, "levels")
        receipt = WarehouseReceipt(rejected=len(rejected))
        self._reject(event, rejected)
        if detail is not None:
            receipt.levels = apply_levels(detail.levels, self._levels, self._sinks, default_bucket=self._default_bucket)
        return receipt

    def _apply_orders_synced(self, event: BusEvent) -> WarehouseReceipt:
        detail, rejected = split_entries(OrdersSyncedDetail, event.detail, "order_ids")
        receipt = WarehouseReceipt(rejected=len(rejected))
        self._reject(event, rejected)
        if detail is None:
            return receipt
        # The ledger merge takes a synced order out of C (and P, K): its units are in the warehouse's level now.
        sightings = [
            OrderObservation(order_id=order_id, source=OrderSource.WAREHOUSE, synced=True, observed_at=detail.as_of)
            for order_id in detail.order_ids
        ]
        ingested = self._ingest.apply(sightings)
        set_aside = {entry.index for entry in rejected}
        kept_indices = [index for index in range(len(event.detail["order_ids"])) if index not in set_aside]
        index_of: dict[str, int] = {}
        for order_id, index in zip(detail.order_ids, kept_indices, strict=True):
            index_of.setdefault(order_id, index)
        for observation, error in ingested.rejected:
            receipt.rejected += 1
            self._sinks.reject(
                {"event_id": event.id, "order_id": observation.order_id},
                f"order_ids[{index_of[observation.order_id]}]: {error}",
            )
        receipt.orders_synced = ingested.applied
        self._sinks.enqueue_recompute(ingested.changed_skus)
        return receipt

    def _reject(self, event: BusEvent, rejected: Iterable[RejectedEntry]) -> None:
        for entry in rejected:
            self._sinks.reject(
                {"event_id": event.id, "detail-type": event.detail_type, "index": entry.index, "entry": entry.entry},
                entry.reason,
            )
