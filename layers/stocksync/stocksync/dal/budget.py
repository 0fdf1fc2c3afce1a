"""A catalog's call budgets, one item each in the control table: the items_batch pacer (``batch-call``: the call log,
the next slot, the platform's pause and the pusher's lease), the catalog reads (``catalog-read``) and the status
checks (``status-check``).

Concurrent invocations share an item by optimistic concurrency: each reads it, computes its grant
(logic/call_pacing.py for the pacer, logic/batch_budget.py for the others), and writes it back only if its
``revision`` is still the one read (dal/revisioned.py); on a conflict it reads again. Why this and not reserved
concurrency: a concurrency limit bounds how many invocations run at once, not how many calls they make in an hour,
and SQS-triggered functions with a low reserved concurrency get throttled pollers whose messages count receives
towards the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from stocksync.dal.codec import decode, encode
from stocksync.dal.revisioned import put_if_revision
from stocksync.logic.backoff import conflict_tries
from stocksync.logic.batch_budget import CallGrant, CallWindow, LapsedLease, epoch_ms, grant
from stocksync.logic.call_pacing import Pace, PacerState, grant_slots

_CONFLICT_RETRIES = 8


class BudgetContentionError(RuntimeError):
    """The budget item kept changing under us; the caller treats it as a transient failure."""


class DynamoCallBudget:
    """The batch-call budget of one catalog (a ``CallBudget`` for logic/pushing.py)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        catalog_id: str,
        calls_per_hour: int,
        kind: str = "batch-call",
        burst: int = 1,
    ) -> None:
        """``kind`` names the budget: ``batch-call`` (items_batch), ``catalog-read`` (the products edge) or
        ``status-check``, each its own item, so reads never spend the calls pushes need. ``burst`` is the pacer's
        burst allowance (logic/call_pacing.py), used by ``acquire_slots`` only."""
        self._client = client
        self._table = table
        self._name = f"{kind}-budget#{catalog_id}"
        self.calls_per_hour = calls_per_hour
        self.pace = Pace(calls_per_hour, burst)

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant:
        """Reserve the calls for ``rows`` rows (or as many as the hour still allows), with no pacing: for reads and
        status checks, whose budgets are large and whose callers wait in their queue when it runs out."""
        now_ms = epoch_ms(now)
        for _ in conflict_tries(_CONFLICT_RETRIES):
            state, revision = self._load()
            granted = grant(
                state.window, rows, calls_per_hour=self.calls_per_hour, preferred_size=preferred_size, now_ms=now_ms
            )
            after = replace(state, window=state.window.with_calls(granted.calls, now_ms))
            if granted.calls == 0 or self._store(after, revision):
                return granted
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def acquire_slots(
        self, rows: int, *, preferred_size: int, now: datetime, holder: str, lease_seconds: float
    ) -> CallGrant:
        """Paced calls for ``rows`` and, when any is granted, the pusher's lease for ``lease_seconds`` (released by
        ``release``; it lapses by itself if the holder dies)."""
        now_ms = epoch_ms(now)
        for _ in conflict_tries(_CONFLICT_RETRIES):
            state, revision = self._load()
            granted, after = grant_slots(
                state,
                rows,
                pace=self.pace,
                preferred_size=preferred_size,
                holder=holder,
                lease_ms=int(lease_seconds * 1000),
                now_ms=now_ms,
            )
            if after is state or self._store(after, revision):
                return granted
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def release(self, holder: str, *, unused: int = 0, settled: Collection[str] = ()) -> None:
        """Give the lease back once the holder's calls are sent (nothing if another run holds it by now), and the
        ``unused`` calls of its grant that were never made with it (``PacerState.released``); forget the lapsed
        leases of ``settled`` holders, whose calls this run settled."""
        for _ in conflict_tries(_CONFLICT_RETRIES):
            state, revision = self._load()
            after = state.released(holder, unused=unused, slot_ms=self.pace.slot_ms).settled(settled)
            if after is state or self._store(after, revision):
                return
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def block_until(self, until: datetime) -> None:
        """The platform answered 80014 (or another throttle): no call until ``until``, whatever our log says."""
        for _ in conflict_tries(_CONFLICT_RETRIES):
            state, revision = self._load()
            if self._store(replace(state, window=state.window.blocked_until(epoch_ms(until))), revision):
                return
        raise BudgetContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def window(self) -> CallWindow:
        return self._load()[0].window

    def state(self) -> PacerState:
        return self._load()[0]

    def _load(self) -> tuple[PacerState, int]:
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": self._name}), ConsistentRead=True)
        item = decode(answer.get("Item") or {})
        state = PacerState(
            window=CallWindow(tuple(item.get("call_times_ms", ())), int(item.get("blocked_until_ms", 0))),
            next_slot_ms=int(item.get("next_slot_ms", 0)),
            holder=str(item.get("holder", "")),
            held_until_ms=int(item.get("held_until_ms", 0)),
            reserved_at_ms=int(item.get("reserved_at_ms", 0)),
            reserved_calls=int(item.get("reserved_calls", 0)),
            lapsed=tuple(
                LapsedLease(str(lease["holder"]), int(lease["calls"]), int(lease["reserved_at_ms"]))
                for lease in item.get("lapsed", ())
            ),
        )
        return state, int(item.get("revision", 0))

    def _store(self, state: PacerState, revision: int) -> bool:
        window = state.window
        item = {
            "name": self._name,
            "call_times_ms": list(window.call_times_ms),
            "blocked_until_ms": window.blocked_until_ms,
            "next_slot_ms": state.next_slot_ms,
            "held_until_ms": state.held_until_ms,
            "reserved_at_ms": state.reserved_at_ms,
            "reserved_calls": state.reserved_calls,
            "lapsed": [
                {"holder": lease.holder, "calls": lease.calls, "reserved_at_ms": lease.reserved_at_ms}
                for lease in state.lapsed
            ],
        }
        if state.holder:
            item["holder"] = state.holder
        return put_if_revision(self._client, self._table, item, revision)
