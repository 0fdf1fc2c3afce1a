"""Where the catalog audit stopped, kept in the control table so the next scheduled run resumes there; and what the
last run found (``AuditResults``), so ``stocksync status`` can show the drift without reading the catalog again.

A pass over a large catalog may take several runs (the read budget, throttling, the function's time); the listing's
own cursor is stored, with when the pass began, so a pass is one logical audit however many runs it takes. A
finished pass clears it, so the next run starts over.
"""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class AuditResult:
    """One audit run's summary (``ReadReport.summary()`` plus finished, pages, stopped_by), and when it ran."""

    ran_at: datetime
    pass_started_at: datetime
    summary: dict[str, Any]


class AuditResults:
    """The last audit run's summary, one item (``catalog-audit-result#<catalog>``) replaced by every run that is not
    a dry run (a dry run changes nothing). Bounded: the summary names at most 50 differences."""

    def __init__(self, client: Any, table: str, *, catalog_id: str) -> None:
        self._client = client
        self._table = table
        self._name = f"catalog-audit-result#{catalog_id}"

    def load(self) -> AuditResult | None:
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": self._name}), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        stored = decode(item)
        return AuditResult(
            ran_at=datetime.fromisoformat(stored["ran_at"]),
            pass_started_at=datetime.fromisoformat(stored["pass_started_at"]),
            summary=json.loads(stored["summary"]),
        )

    def save(self, result: AuditResult) -> None:
        item = {
            "name": self._name,
            "ran_at": result.ran_at.isoformat(),
            "pass_started_at": result.pass_started_at.isoformat(),
            "summary": json.dumps(result.summary, sort_keys=True, default=str),
        }
        self._client.put_item(TableName=self._table, Item=encode(item))
