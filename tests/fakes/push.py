"""In-memory ports of the push path (states, catalog, budget, batches, queues, dead letters) for unit tests.

They keep the semantics the DynamoDB and Graph adapters promise: confirmations are conditional on the version and
on the acceptance order, the budget is the real sliding window, a catalog call can be scripted to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from stocksync.logic.batch_budget import CallGrant, CallWindow, epoch_ms, grant
from stocksync.logic.call_pacing import Pace, PacerState, grant_slots
from stocksync.models.graph import BatchRequestStatus, ItemsBatchResult, ItemUpdate
from stocksync.models.publishing import PublishReceipt
from stocksync.models.push import BatchEntry, BatchRecord, BatchState, ConfirmReceipt
from stocksync.models.sku import SkuState


class MemorySkus:
    """SkuStates + Confirmations over a dict, with the conditions of SkuTable.confirm_pushes."""

    def __init__(self, states: Iterable[SkuState] = ()) -> None:
        self.states = {state.retailer_id: state for state in states}
        self.accepted_ms: dict[str, int] = {}

    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]:
        return {rid: self.states[rid] for rid in set(retailer_ids) if rid in self.states}

    def confirm_pushes(
        self,
        entries: Sequence[BatchEntry],
        *,
        accepted_at: datetime,
        confirmed_at: datetime,
        sent_at: datetime | None = None,
    ) -> ConfirmReceipt:
        receipt = ConfirmReceipt()
        accepted = epoch_ms(accepted_at)
        for entry in entries:
            state = self.states.get(entry.retailer_id)
            if state is None:
                receipt.refused.append(entry.retailer_id)
                continue
            previous = self.accepted_ms.get(entry.retailer_id)
            fields = {
                "confirmed_value": entry.value,
                "confirmed_visibility": entry.visibility,
                "confirmed_at": confirmed_at,
                "catalog_value": entry.value,
                "catalog_visibility": entry.visibility,
                "catalog_from": sent_at or accepted_at,
                "catalog_to": confirmed_at,
                "catalog_basis": "push",
            }
            if entry.version > state.confirmed_version and (previous is None or previous <= accepted):
                self.states[entry.retailer_id] = state.model_copy(update={**fields, "confirmed_version": entry.version})
                receipt.confirmed.append(entry.retailer_id)
            elif entry.version < state.confirmed_version and previous is not None and previous < accepted:
                self.states[entry.retailer_id] = state.model_copy(update=fields)
                receipt.stale_corrected.append(entry.retailer_id)
            else:
                receipt.refused.append(entry.retailer_id)
                continue
            self.accepted_ms[entry.retailer_id] = accepted
            receipt.states[entry.retailer_id] = self.states[entry.retailer_id]
        return receipt

    def mark_not_in_catalog(self, retailer_id: str, version: int) -> bool:
        """SkuTable.mark_not_in_catalog: not over a newer confirmed version; True when newly marked."""
        state = self.states.get(retailer_id)
        if state is None or state.confirmed_version >= version:
            return False
        self.states[retailer_id] = state.model_copy(update={"not_in_catalog_version": version})
        return state.not_in_catalog_version is None


@dataclass
class CatalogCall:
    rows: list[tuple[str, dict[str, str | int]]]
    handle: str | None


class ScriptedCatalog:
    """CatalogWriter: accepts every call with a new handle, unless ``failures`` holds an error for the next call.

    ``refuse`` maps retailer ids to an upload-time validation message (the row is not ingested).
    """

    def __init__(self) -> None:
        self.calls: list[CatalogCall] = []
        self.single: list[tuple[str, Mapping[str, str | int]]] = []
        self.failures: list[Exception | None] = []
        self.single_failures: dict[str, Exception] = {}
        self.refuse: dict[str, str] = {}
        self.no_handle = False

    def items_batch(
        self, catalog_id: str, requests: Sequence[ItemUpdate], *, item_type: str = "PRODUCT_ITEM", allow_upsert=False
    ) -> ItemsBatchResult:
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            self.calls.append(CatalogCall([(r.retailer_id, r.fields) for r in requests], None))
            raise failure
        handle = None if self.no_handle else f"h{len(self.calls) + 1}"
        self.calls.append(CatalogCall([(r.retailer_id, r.fields) for r in requests], handle))
        statuses = [{"retailer_id": rid, "errors": [{"message": msg}]} for rid, msg in self.refuse.items()]
        return ItemsBatchResult(handles=[handle] if handle else [], validation_status=statuses)

    def update_product(self, catalog_id: str, retailer_id: str, fields: Mapping[str, str | int]) -> None:
        if retailer_id in self.single_failures:
            raise self.single_failures[retailer_id]
        self.single.append((retailer_id, dict(fields)))

    @property
    def accepted_calls(self) -> list[CatalogCall]:
        return [call for call in self.calls if call.handle is not None]


class MemoryBudget:
    """CallBudget with the real pacing rules (slots, burst, lease, trailing-hour log), kept in memory."""

    def __init__(self, calls_per_hour: int = 90, burst: int = 1) -> None:
        self.calls_per_hour = calls_per_hour
        self.pace = Pace(calls_per_hour, burst)
        self.state = PacerState()
        self.released: list[str] = []

    @property
    def window(self) -> CallWindow:
        return self.state.window

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant:
        granted = grant(
            self.window, rows, calls_per_hour=self.calls_per_hour, preferred_size=preferred_size, now_ms=epoch_ms(now)
        )
        self.state = replace(self.state, window=self.window.with_calls(granted.calls, epoch_ms(now)))
        return granted

    def acquire_slots(
        self, rows: int, *, preferred_size: int, now: datetime, holder: str, lease_seconds: float
    ) -> CallGrant:
        granted, self.state = grant_slots(
            self.state,
            rows,
            pace=self.pace,
            preferred_size=preferred_size,
            holder=holder,
            lease_ms=int(lease_seconds * 1000),
            now_ms=epoch_ms(now),
        )
        return granted

    def release(self, holder: str, *, unused: int = 0, settled: Collection[str] = ()) -> None:
        self.released.append(holder)
        self.state = self.state.released(holder, unused=unused, slot_ms=self.pace.slot_ms).settled(settled)

    def block_until(self, until: datetime) -> None:
        self.state = replace(self.state, window=self.window.blocked_until(epoch_ms(until)))


class MemoryBatches:
    """BatchLog + BatchStore."""

    def __init__(self) -> None:
        self.records: dict[str, BatchRecord] = {}
        self.finished: dict[str, dict[str, Any]] = {}
        self.fail_record = False

    def record(self, record: BatchRecord) -> None:
        if self.fail_record:
            raise RuntimeError("table unavailable")
        self.records[record.store_key] = record

    def load(self, handle: str) -> BatchRecord | None:
        return self.records.get(handle)

    @property
    def by_handle(self) -> dict[str, BatchRecord]:
        """The records by their Graph handle (push_batch keys them ``<run>#<call>``), in the order written."""
        return {record.handle: record for record in self.records.values()}

    def finish(
        self,
        handle: str,
        state: BatchState,
        *,
        finished_at: datetime,
        counts: dict[str, int],
        latencies_seconds: Sequence[float] = (),
    ) -> bool:
        record = self.records[handle]
        if record.state is not BatchState.PENDING:
            return False
        self.records[handle] = record.model_copy(update={"state": state})
        self.finished[handle] = {"counts": counts, "latencies": list(latencies_seconds), "at": finished_at}
        return True


@dataclass
class MemoryQueue:
    """Outbox: keeps (body, delay) pairs; ``fail`` decides per body whether SQS refuses it."""

    sent: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    fail: Callable[[Mapping[str, Any]], bool] = lambda body: False

    def send(self, bodies: Iterable[Mapping[str, Any]], *, delay_seconds: int = 0) -> PublishReceipt:
        receipt = PublishReceipt()
        for body in bodies:
            if self.fail(body):
                receipt.failed.append((body, "InternalError: refused"))
            else:
                self.sent.append((dict(body), delay_seconds))
                receipt.sent += 1
        return receipt

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for body, _delay in self.sent]


@dataclass
class MemoryDeadLetters:
    letters: list[tuple[str, str, Any]] = field(default_factory=list)

    def send(self, *, source: str, reason: str, body: Any) -> None:
        self.letters.append((source, reason, body))


class ScriptedStatus:
    """StatusReader: answers per handle from ``answers`` (a status, or an exception to raise)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[BatchRequestStatus | Exception]] = {}
        self.asked: list[tuple[str, bool]] = []

    def check_batch_request_status(
        self, catalog_id: str, handle: str, load_ids_of_invalid_requests: bool = True
    ) -> BatchRequestStatus:
        self.asked.append((handle, load_ids_of_invalid_requests))
        answers = self.answers[handle]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
