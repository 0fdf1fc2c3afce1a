"""An in-memory LedgerPort with DynamoDB's transaction semantics (all or nothing, conditional on the revision)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from stocksync.logic.ledger import CounterDelta, LedgerPart
from stocksync.logic.order_ingest import CounterUnderflowError, PartKey, StaleLedgerError
from stocksync.models.sku import PlatformMove


class InMemoryLedger:
    def __init__(self) -> None:
        self.rows: dict[PartKey, LedgerPart] = {}
        self.counters: dict[str, dict[str, int]] = defaultdict(
            lambda: {"processing": 0, "created": 0, "acknowledged": 0}
        )
        self.platform_units: dict[str, int] = defaultdict(int)
        self.platform_moves: dict[str, list[PlatformMove]] = defaultdict(list)
        self.sold: dict[str, int] = defaultdict(int)
        self.writes = 0
        # Runs before a write lands: lets a test slip a concurrent writer in between a read and a write.
        self.before_write: Callable[[], None] | None = None
        # Runs before every write with the row about to be written, and stays: a test raises from it to crash the
        # writer at a chosen transaction (between two parts of a split order, say), as a Lambda dies mid-way.
        self.write_hook: Callable[[LedgerPart], None] | None = None

    def read_parts(self, keys: Sequence[PartKey]) -> dict[PartKey, LedgerPart]:
        return {key: self.rows[key] for key in keys if key in self.rows}

    def write_part(
        self, before: LedgerPart, after: LedgerPart, changes: Mapping[str, CounterDelta], sold_at: datetime
    ) -> None:
        if self.write_hook is not None:
            self.write_hook(after)
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()
        key = (after.order_id, after.part)
        current = self.rows.get(key)
        if (current.revision if current else 0) != before.revision:
            raise StaleLedgerError(f"{key} changed")
        underflow = [
            sku
            for sku, delta in changes.items()
            if any(
                self.counters[sku][name] + getattr(delta, name) < 0
                for name in ("processing", "created", "acknowledged")
            )
        ]
        if underflow:
            raise CounterUnderflowError(after.order_id, underflow)
        self.rows[key] = replace(after, revision=before.revision + 1)
        for sku, delta in changes.items():
            for name in ("processing", "created", "acknowledged"):
                self.counters[sku][name] += getattr(delta, name)
            self.platform_units[sku] += delta.platform_units
            self.platform_moves[sku].extend(delta.moves)
            self.sold[sku] += delta.sold
        self.writes += 1
