"""push_batch's use case: deliver the newest value of each SKU to the catalog in as few calls as allowed.

One run handles one SQS batch of push messages. It keeps the newest still-needed version per SKU
(logic/push_planning.py), asks the shared call budget for calls (logic/batch_budget.py), sends items_batch calls,
records each handle with the exact rows it carried, and asks verify_batch to check it later.

Nothing is lost on a failure, and only the records concerned are reported failed:

- throttled (80014 and friends): the budget is paused for the announced time, and the rows of this call and the
  following ones go back to the push queue with that delay (SQS allows up to 900 s);
- out of budget: the rows that found no call wait in the push queue until the window frees one;
- any other Graph failure of a call: that call's records are reported failed, SQS redelivers them;
- a row the platform refuses for good (unknown retailer id, invalid value): dead-lettered with its message.

A second delivery of a record that was already sent is harmless: the values are absolute, versions never move
back, and verify confirms a version at most once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from stocksync import clock
from stocksync.integrations.graph_errors import GraphApiError, GraphThrottledError
from stocksync.integrations.messaging import PublishReceipt
from stocksync.logic.batch_budget import CallGrant
from stocksync.logic.item_errors import classify_item_error
from stocksync.logic.push_planning import ReceivedPush, catalog_fields, coalesce, pack, select
from stocksync.models.graph import ItemsBatchResult, ItemUpdate
from stocksync.models.push import BatchEntry, BatchRecord, ConfirmReceipt, VerifyMessage
from stocksync.models.sku import SkuState
from stocksync.observability import logger

SOURCE = "push_batch"
MAX_QUEUE_DELAY_SECONDS = 900  # SQS DelaySeconds limit


class SkuStates(Protocol):
    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]: ...


class CatalogWriter(Protocol):
    """The two catalog writes of ``GraphApiClient``."""

    def items_batch(
        self, catalog_id: str, requests: Sequence[ItemUpdate], *, item_type: str = ..., allow_upsert: bool = ...
    ) -> ItemsBatchResult: ...

    def update_product(self, catalog_id: str, retailer_id: str, fields: Mapping[str, str | int]) -> None: ...


class CallBudget(Protocol):
    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant: ...

    def block_until(self, until: datetime) -> None: ...


class BatchLog(Protocol):
    def record(self, record: BatchRecord) -> None: ...


class Outbox(Protocol):
    """A queue (``QueuePublisher``)."""

    def send(self, bodies: Iterable[Mapping[str, Any]], *, delay_seconds: int = 0) -> PublishReceipt: ...


class Rejections(Protocol):
    """The reasoned dead-letter queue (``DeadLetters``)."""

    def send(self, *, source: str, reason: str, body: Any) -> None: ...


class Confirmations(Protocol):
    def confirm_pushes(
        self,
        entries: Sequence[BatchEntry],
        *,
        accepted_at: datetime,
        confirmed_at: datetime,
        sent_at: datetime | None = None,
    ) -> ConfirmReceipt: ...


@dataclass(frozen=True)
class PushConfig:
    catalog_id: str
    catalog_field: str
    requests_per_call: int = 3000
    # A run with at most this many SKUs uses real-time single-product updates (0: always batch).
    single_update_max_skus: int = 0
    verify_delay_seconds: int = 60
    feed_buckets: frozenset[str] = frozenset()


@dataclass
class PushOutcome:
    """What one run did; ``failed_record_ids`` are the only records SQS must deliver again."""

    received: int = 0
    pushed: int = 0  # rows in calls the platform accepted
    calls: int = 0  # accepted items_batch calls
    single_updates: int = 0
    superseded: int = 0
    already_confirmed: int = 0
    feed_served: int = 0
    deferred: int = 0  # rows sent back to the push queue with a delay (budget or throttling)
    dead_lettered: int = 0
    failed_record_ids: list[str] = field(default_factory=list)
    errors_by_code: Counter[str] = field(default_factory=Counter)
    handles: list[str] = field(default_factory=list)


def queue_delay(seconds: float) -> int:
    """An SQS delay for a wait: at least 1 s, at most the 900 s SQS allows (the rows then wait again)."""
    return min(MAX_QUEUE_DELAY_SECONDS, max(1, math.ceil(seconds)))


def error_code(error: GraphApiError) -> str:
    return str(error.code) if error.code is not None else type(error).__name__


class Pusher:
    def __init__(
        self,
        config: PushConfig,
        *,
        states: SkuStates,
        catalog: CatalogWriter,
        budget: CallBudget,
        batches: BatchLog,
        verify_queue: Outbox,
        push_queue: Outbox,
        dead_letters: Rejections,
        confirmations: Confirmations,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self._config = config
        self._states = states
        self._catalog = catalog
        self._budget = budget
        self._batches = batches
        self._verify_queue = verify_queue
        self._push_queue = push_queue
        self._dead_letters = dead_letters
        self._confirmations = confirmations
        self._now = now

    def push(self, received: Sequence[ReceivedPush]) -> PushOutcome:
        outcome = PushOutcome(received=len(received))
        newest, duplicates = coalesce(received)
        selection = select(newest, self._states.get_states(p.retailer_id for p in newest), self._config.feed_buckets)
        outcome.superseded = len(duplicates) + len(selection.superseded)
        outcome.already_confirmed = len(selection.already_confirmed)
        outcome.feed_served = len(selection.feed_served)
        for push in selection.unknown_sku:
            self._reject(push, f"retailer_id: no SKU record for {push.retailer_id!r}", outcome)
        rows = selection.to_send
        if not rows:
            return outcome
        if len(rows) <= self._config.single_update_max_skus:
            self._single_updates(rows, outcome)
        else:
            self._batch(rows, outcome)
        return outcome

    # --- batch calls ----------------------------------------------------------------------------------------------

    def _batch(self, rows: list[ReceivedPush], outcome: PushOutcome) -> None:
        granted = self._budget.acquire(len(rows), preferred_size=self._config.requests_per_call, now=self._now())
        calls = pack(rows[: granted.capacity], granted.size) if granted.calls else []
        waiting = rows[granted.capacity :]
        if waiting:
            self._requeue(waiting, granted.retry_after_seconds, outcome)
        for index, call in enumerate(calls):
            sent_at = self._now()
            try:
                result = self._catalog.items_batch(
                    self._config.catalog_id,
                    [ItemUpdate(retailer_id=p.retailer_id, fields=self._fields(p)) for p in call],
                )
            except GraphThrottledError as error:
                outcome.errors_by_code[error_code(error)] += 1
                self._budget.block_until(self._now() + timedelta(seconds=error.retry_after_seconds))
                self._requeue([p for later in calls[index:] for p in later], error.retry_after_seconds, outcome)
                return
            except GraphApiError as error:
                outcome.errors_by_code[error_code(error)] += 1
                outcome.failed_record_ids.extend(p.record_id for p in call)
                continue
            self._accepted(call, result, outcome, sent_at)

    def _accepted(
        self, call: list[ReceivedPush], result: ItemsBatchResult, outcome: PushOutcome, sent_at: datetime
    ) -> None:
        refused = {status.retailer_id: status.errors[0].message for status in result.validation_status if status.errors}
        sent = []
        for push in call:
            if push.retailer_id in refused:
                self._item_failed(push, refused[push.retailer_id], outcome)
            else:
                sent.append(push)
        if not sent:
            return
        if not result.handles:  # nothing was ingested although the rows were not refused: send them again
            outcome.errors_by_code["no_handle"] += 1
            outcome.failed_record_ids.extend(p.record_id for p in sent)
            return
        handle = result.handles[0]
        record = BatchRecord(
            handle=handle,
            accepted_at=self._now(),
            sent_at=sent_at,
            entries=[BatchEntry.from_message(p.message) for p in sent],
        )
        try:
            self._batches.record(record)
            receipt = self._verify_queue.send(
                [VerifyMessage(handle=handle).model_dump()], delay_seconds=self._config.verify_delay_seconds
            )
            scheduled = receipt.ok
        except Exception:  # any failure here leaves the handle unverified, whatever its cause
            logger.exception("recording the batch or scheduling its verification failed", extra={"handle": handle})
            scheduled = False
        if not scheduled:
            # Unverified rows would never be confirmed: send them again (a repeat is harmless, see module doc).
            logger.error("batch sent but not scheduled for verification", extra={"handle": handle})
            outcome.errors_by_code["verify_enqueue"] += 1
            outcome.failed_record_ids.extend(p.record_id for p in sent)
            return
        outcome.calls += 1
        outcome.pushed += len(sent)
        outcome.handles.append(handle)

    # --- single-product updates -----------------------------------------------------------------------------------

    def _single_updates(self, rows: list[ReceivedPush], outcome: PushOutcome) -> None:
        for index, push in enumerate(rows):
            sent_at = self._now()
            try:
                self._catalog.update_product(self._config.catalog_id, push.retailer_id, self._fields(push))
            except GraphThrottledError as error:
                outcome.errors_by_code[error_code(error)] += 1
                self._requeue(rows[index:], error.retry_after_seconds, outcome)
                return
            except GraphApiError as error:
                outcome.errors_by_code[error_code(error)] += 1
                if classify_item_error(error.message).permanent:
                    self._item_failed(push, error.message, outcome)
                else:
                    outcome.failed_record_ids.append(push.record_id)
                continue
            moment = self._now()
            self._confirmations.confirm_pushes(
                [BatchEntry.from_message(push.message)], accepted_at=moment, confirmed_at=moment, sent_at=sent_at
            )
            outcome.single_updates += 1

    # --- shared ---------------------------------------------------------------------------------------------------

    def _fields(self, push: ReceivedPush) -> dict[str, str | int]:
        return catalog_fields(push.message, self._config.catalog_field)

    def _requeue(self, rows: Sequence[ReceivedPush], wait_seconds: float, outcome: PushOutcome) -> None:
        if not rows:
            return
        receipt = self._push_queue.send([p.message.body() for p in rows], delay_seconds=queue_delay(wait_seconds))
        unsent = {body["retailer_id"] for body, _reason in receipt.failed}
        for push in rows:
            if push.retailer_id in unsent:
                outcome.failed_record_ids.append(push.record_id)
            else:
                outcome.deferred += 1

    def _item_failed(self, push: ReceivedPush, message: str, outcome: PushOutcome) -> None:
        error = classify_item_error(message)
        outcome.errors_by_code[error.code] += 1
        if error.permanent:
            self._dead_letters.send(source=SOURCE, reason=f"{error.code}: {message}", body=push.message.body())
            outcome.dead_lettered += 1
        else:
            outcome.failed_record_ids.append(push.record_id)

    def _reject(self, push: ReceivedPush, reason: str, outcome: PushOutcome) -> None:
        logger.error("invalid push message", extra={"reason": reason, "record_id": push.record_id})
        self._dead_letters.send(source=SOURCE, reason=reason, body=push.message.body())
        outcome.dead_lettered += 1
