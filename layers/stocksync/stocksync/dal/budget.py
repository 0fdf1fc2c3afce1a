"""The shared items_batch call budget, one item in the control table per catalog.

Concurrent push invocations share it by optimistic concurrency: each reads the item, computes its grant
(logic/batch_budget.py), and writes the new call log only if ``revision`` is still the one it read; on a conflict it
reads again. Why this and not reserved concurrency: a concurrency limit bounds how many invocations run at once, not
how many calls they make in an hour, and SQS-triggered functions with a low reserved concurrency get throttled
pollers whose messages count receives towards the dead-letter queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.codec import decode, encode
from stocksync.logic.batch_budget import CallGrant, CallWindow, epoch_ms, grant

_CONFLICT_RETRIES = 8


class BudgetContentionError(RuntimeError):
    """The budget item kept changing under us; the caller treats it as a transient failure."""


class DynamoCallBudget:
    """The batch-call budget of one catalog (a ``CallBudget`` for logic/pushing.py)."""

    def __init__(
        self, client: Any, table: str, *, catalog_id: str, calls_per_hour: int, kind: str = "batch-call"
    ) -> None:
        """``kind`` names the budget: ``batch-call`` (items_batch) or ``catalog-read`` (the products edge), each
        its own item, so reads never spend the calls pushes need."""
        self._client = client
        self._table = table
        self._name = f"{kind}-budget#{catalog_id}"
        self.calls_per_hour = calls_per_hour

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant:
        """Reserve the calls for ``rows`` rows (or as many as the hour still allows)."""
        now_ms = epoch_ms(now)
        for _ in range(_CONFLICT_RETRIES):
            window, revision = self._load()
            granted = grant(
                window, rows, calls_per_hour=self.calls_per_hour, preferred_size=preferred_size, now_ms=now_ms
            )
            if granted.calls == 0 or self._store(window.with_calls(granted.calls, now_ms), revision):
                return granted
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def block_until(self, until: datetime) -> None:
        """The platform answered 80014 (or another throttle): no call until ``until``, whatever our log says."""
        for _ in range(_CONFLICT_RETRIES):
            window, revision = self._load()
            if self._store(window.blocked_until(epoch_ms(until)), revision):
                return
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def window(self) -> CallWindow:
        return self._load()[0]

    def _load(self) -> tuple[CallWindow, int]:
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": self._name}), ConsistentRead=True)
        item = decode(answer.get("Item") or {})
        window = CallWindow(tuple(item.get("call_times_ms", ())), int(item.get("blocked_until_ms", 0)))
        return window, int(item.get("revision", 0))

    def _store(self, window: CallWindow, revision: int) -> bool:
        item = {
            "name": self._name,
            "call_times_ms": list(window.call_times_ms),
            "blocked_until_ms": window.blocked_until_ms,
            "revision": revision + 1,
        }
        condition = "attribute_not_exists(revision)" if revision == 0 else "revision = :expected"
        request: dict[str, Any] = {"TableName": self._table, "Item": encode(item), "ConditionExpression": condition}
        if revision:
            request["ExpressionAttributeValues"] = encode({":expected": revision})
        try:
            self._client.put_item(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
