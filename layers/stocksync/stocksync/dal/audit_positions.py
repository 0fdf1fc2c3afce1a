"""Where the catalog audit stopped, kept in the control table so the next scheduled run resumes there.

A pass over a large catalog may take several runs (the read budget, throttling, the function's time); the listing's
own cursor is stored, with when the pass began, so a pass is one logical audit however many runs it takes. A
finished pass clears it, so the next run starts over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stocksync import clock
from stocksync.dal.codec import decode, encode


@dataclass(frozen=True)
class AuditPosition:
    after: str  # the products listing's cursor
    started_at: datetime


class AuditPositions:
    def __init__(self, client: Any, table: str, *, catalog_id: str) -> None:
        self._client = client
        self._table = table
        self._name = f"catalog-audit#{catalog_id}"

    def load(self) -> AuditPosition | None:
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": self._name}), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        stored = decode(item)
        return AuditPosition(after=stored["after"], started_at=datetime.fromisoformat(stored["started_at"]))

    def save(self, position: AuditPosition | None) -> None:
        """Store where to resume; None (a finished pass) clears it."""
        if position is None:
            self._client.delete_item(TableName=self._table, Key=encode({"name": self._name}))
            return
        item = {
            "name": self._name,
            "after": position.after,
            "started_at": position.started_at.isoformat(),
            "updated_at": clock.now().isoformat(),
        }
        self._client.put_item(TableName=self._table, Item=encode(item))
