"""push_batch's use case: deliver the newest value of each SKU to the catalog in paced calls, urgent rows first.

One run handles one SQS batch of push messages. It keeps the newest still-needed version per SKU
(logic/push_planning.py), orders the rows (urgent first: a SKU going out of or back into stock or changing
visibility; then the oldest change first), asks the pacer for the slots open now (logic/call_pacing.py: evenly
spaced calls, a small burst, one pusher at a time), sends items_batch calls, records each handle with the exact rows
it carried, and asks verify_batch to check it later. Rows no open slot carries go back to the push queue, delayed
until the next slot, where they meet the rows that arrived meanwhile: between slots rows accumulate, and a SKU's
newer value supersedes the older one still waiting (push_planning.select drops it).

Nothing is lost on a failure, and only the records concerned are reported failed:

- throttled (80014 and friends): the budget is paused for the announced time, and the rows of this call and the
  following ones go back to the push queue with that delay (SQS allows up to 900 s);
- no slot open now (or another run holds the pusher's lease): the rows wait in the push queue for the next slot;
- any other Graph failure of a call: that call's records are reported failed, SQS redelivers them;
- a row the platform refuses for good (unknown retailer id, invalid value): dead-lettered with its message;
- a call the platform accepted whose record or check could not be written: its rows go back to the push queue
  carrying the handle, and the next run records them without a call (``_record_late``);
- a run killed after recording a batch, before scheduling its check: its lease lapses unreleased, and the next run
  granted calls schedules the check and leaves those rows out (``_settle_lapsed``);
- calls granted but never made go back to the hour's budget with the lease.

docs/push.md, "Fault windows", lists what each costs and the windows still open.

A second delivery of a record that was already sent is harmless: the values are absolute, versions never move
back, and verify confirms a version at most once.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from stocksync import clock
from stocksync.logic.batch_budget import CallGrant, LapsedLease
from stocksync.logic.item_errors import NOT_IN_CATALOG_CODE, classify_item_error
from stocksync.logic.push_planning import ReceivedPush, catalog_fields, coalesce, pack, select
from stocksync.models.graph import ItemsBatchResult, ItemUpdate
from stocksync.models.graph_errors import GraphApiError, GraphThrottledError
from stocksync.models.publishing import PublishReceipt
from stocksync.models.push import BatchEntry, BatchRecord, BatchState, ConfirmReceipt, VerifyMessage
from stocksync.models.sku import PushMessage, SkuState
from stocksync.observability import logger, metrics

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
    """The catalog's paced items_batch calls and the pusher's lease (``DynamoCallBudget``)."""

    def acquire_slots(
        self, rows: int, *, preferred_size: int, now: datetime, holder: str, lease_seconds: float
    ) -> CallGrant: ...

    def release(self, holder: str, *, unused: int = 0, settled: Collection[str] = ()) -> None: ...

    def block_until(self, until: datetime) -> None: ...


class BatchLog(Protocol):
    def record(self, record: BatchRecord) -> None: ...

    def load(self, handle: str) -> BatchRecord | None: ...


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

    def mark_not_in_catalog(self, retailer_id: str, version: int) -> bool:
        """Record that the catalog refused ``version`` as an unknown retailer id (unless a newer version was
        confirmed since); True when the SKU was not marked before."""
        ...


def not_in_catalog(confirmations: Confirmations, entry: BatchEntry | PushMessage, code: str) -> None:
    """After a permanent per-item error: when the catalog does not know the retailer id, mark the SKU so recompute
    stops pushing it (each push would be refused and dead-lettered again, every sweep, forever). The dead letter of
    this refusal is the report; the first marking also logs one warning and counts ``SkusNotInCatalog``."""
    if code != NOT_IN_CATALOG_CODE:
        return
    if confirmations.mark_not_in_catalog(entry.retailer_id, entry.version):
        logger.warning(
            "the catalog has no item with this retailer id: not pushed until a catalog read finds it",
            extra={"retailer_id": entry.retailer_id, "version": entry.version},
        )
        metrics.add_metric(name="SkusNotInCatalog", unit="Count", value=1)


class VerifyTiming(Protocol):
    """When to check a new batch first, from the processing times observed (``DynamoProcessingTimes``)."""

    def first_check_delay(self, default_seconds: int) -> int: ...


@dataclass(frozen=True)
class PushConfig:
    catalog_id: str
    catalog_field: str
    requests_per_call: int = 3000
    # Urgent rows a run may send at once through the single-product endpoint when no slot opens within
    # ``single_update_after_seconds`` (0: never; every row waits for its slot).
    single_update_max_skus: int = 0
    single_update_after_seconds: int = 20
    verify_delay_seconds: int = 60
    feed_buckets: frozenset[str] = frozenset()
    # A call starts only while the invocation has this long left: the Graph client's read timeout (30 s) and a few
    # seconds to record the answer. A call still waiting for its answer at Lambda's deadline is the one crash that
    # loses an accepted batch's handle (docs/push.md, "Fault windows"); its rows wait for the next slot instead.
    call_time_reserve_seconds: float = 35.0


@dataclass
class PushOutcome:
    """What one run did; ``failed_record_ids`` are the only records SQS must deliver again."""

    received: int = 0
    pushed: int = 0  # rows in calls the platform accepted
    calls: int = 0  # accepted items_batch calls
    calls_made: int = 0  # items_batch calls sent, accepted or not (the platform may count each)
    calls_returned: int = 0  # calls granted to this run but never made: given back to the hour's budget
    single_updates: int = 0
    superseded: int = 0
    already_confirmed: int = 0
    feed_served: int = 0
    urgent: int = 0  # rows to send that were urgent (sent or waiting)
    deferred: int = 0  # rows sent back to the push queue with a delay (no slot, lease held, or throttling)
    dead_lettered: int = 0
    oldest_sent_age_seconds: float = 0.0  # change -> sent, for the oldest row this run sent
    oldest_waiting_age_seconds: float = 0.0  # the oldest row this run sent back to wait for a later slot
    next_slot_seconds: float = 0.0  # when the rows sent back will be looked at again
    slots_used_in_hour: int = 0  # calls in the trailing hour after this run's
    # Rows a call carried that the platform accepted, sent back to the push queue with their handle because
    # recording the batch failed; and rows that came back so and were recorded now (no call made for them).
    handed_over: int = 0
    recorded_late: int = 0
    # Batches of pushers that died holding the lease, found recorded and scheduled for verification now; and this
    # run's rows such a batch already carries (at the same version), not sent again.
    lapsed_batches_settled: int = 0
    in_flight: int = 0
    failed_record_ids: list[str] = field(default_factory=list)
    # Why each failed record failed: its dead letter's reason if this was its last try (integrations/sqs_batch.py).
    failure_reasons: dict[str, str] = field(default_factory=dict)
    errors_by_code: Counter[str] = field(default_factory=Counter)
    handles: list[str] = field(default_factory=list)

    def fail(self, pushes: Iterable[ReceivedPush], reason: str) -> None:
        """SQS must deliver these records again; ``reason`` says why, should this have been their last try."""
        for push in pushes:
            self.failed_record_ids.append(push.record_id)
            self.failure_reasons[push.record_id] = reason


def failure_reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def late_record_key(handle: str, rows: Sequence[ReceivedPush]) -> str:
    """The batches-table key of rows of batch ``handle`` recorded late: the same rows always get the same key (a
    redelivery writes the same record again), another group of the same batch another key."""
    content = "\n".join(sorted(f"{p.retailer_id}\t{p.message.version}" for p in rows))
    return f"{handle}#late-{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def queue_delay(seconds: float) -> int:
    """An SQS delay for a wait: at least 1 s, at most the 900 s SQS allows (the rows then wait again)."""
    return min(MAX_QUEUE_DELAY_SECONDS, max(1, math.ceil(seconds)))


def error_code(error: GraphApiError) -> str:
    return str(error.code) if error.code is not None else type(error).__name__


def send_order(rows: Iterable[ReceivedPush]) -> list[ReceivedPush]:
    """Urgent rows first, then the oldest change first: what a full slot leaves waiting is the newest routine row."""
    return sorted(rows, key=lambda push: (not push.message.urgent, push.message.computed_at))


def single_update_safe(push: ReceivedPush, state: SkuState | None) -> bool:
    """A single-product update may overtake batches only when no older version of the SKU can still be in flight:
    a batch carrying one, applied after the update, would put the older value back (the platform applies batches
    when it processes them, and the update at once)."""
    return state is not None and push.message.version == state.confirmed_version + 1


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
        verify_timing: VerifyTiming | None = None,
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
        self._verify_timing = verify_timing
        self._check_delay: int | None = None
        self._time_left: Callable[[], float] | None = None
        self._now = now

    def push(
        self,
        received: Sequence[ReceivedPush],
        *,
        lease_seconds: float = 900.0,
        time_left: Callable[[], float] | None = None,
    ) -> PushOutcome:
        """``lease_seconds``: how long this run may hold the pusher's lease (the invocation's remaining time);
        ``time_left``: the seconds the invocation has left, asked before each call (None: no deadline)."""
        self._time_left = time_left
        outcome = PushOutcome(received=len(received))
        self._check_delay = None
        carried = [push for push in received if push.message.handle is not None]
        if carried:
            self._record_late(carried, outcome)
            received = [push for push in received if push.message.handle is None]
        newest, duplicates = coalesce(received)
        states = self._states.get_states(p.retailer_id for p in newest)
        selection = select(newest, states, self._config.feed_buckets)
        outcome.superseded = len(duplicates) + len(selection.superseded)
        outcome.already_confirmed = len(selection.already_confirmed)
        outcome.feed_served = len(selection.feed_served)
        for push in selection.unknown_sku:
            self._reject(push, f"retailer_id: no SKU record for {push.retailer_id!r}", outcome)
        rows = send_order(selection.to_send)
        outcome.urgent = sum(1 for push in rows if push.message.urgent)
        if rows:
            self._batch(rows, states, outcome, lease_seconds)
        return outcome

    # --- batch calls ----------------------------------------------------------------------------------------------

    def _batch(
        self, rows: list[ReceivedPush], states: Mapping[str, SkuState], outcome: PushOutcome, lease_seconds: float
    ) -> None:
        holder = uuid.uuid4().hex
        now = self._now()
        granted = self._budget.acquire_slots(
            len(rows),
            preferred_size=self._config.requests_per_call,
            now=now,
            holder=holder,
            lease_seconds=lease_seconds,
        )
        if not granted.calls:  # no slot, so no lease taken: nothing to give back (the common run under load)
            self._send(rows, states, outcome, granted, now, holder)
            return
        settled: list[str] = []
        try:
            if granted.lapsed:
                rows = self._settle_lapsed(granted.lapsed, rows, settled=settled, outcome=outcome)
            self._send(rows, states, outcome, granted, now, holder)
        finally:
            # Calls granted but never made (a throttle ended the run, or it failed before them) go back to the hour:
            # the platform never saw them. Given back with the lease, in the write that releases it anyway.
            unused = max(0, granted.calls - outcome.calls_made)
            self._budget.release(holder, unused=unused, settled=settled)
            outcome.calls_returned = unused

    def _settle_lapsed(
        self,
        lapsed: Sequence[LapsedLease],
        rows: list[ReceivedPush],
        *,
        settled: list[str],
        outcome: PushOutcome,
    ) -> list[ReceivedPush]:
        """A pusher that died holding the lease may have recorded a batch (``<holder>#<call>``) and died before
        scheduling its check: schedule it now, and leave out of this run the rows such a batch carries at the same
        version (SQS brings them back after the crash; sending them again would be a second call for them). A call
        whose record is missing was never made, or its answer died with the process (docs/push.md, "Fault
        windows"). ``settled`` gets the holders done; the others stay for the next run."""
        carried: set[tuple[str, int]] = set()
        for lease in lapsed:
            try:
                for index in range(lease.calls):
                    key = f"{lease.holder}#{index}"
                    record = self._batches.load(key)
                    if record is None or record.state is not BatchState.PENDING:
                        continue
                    receipt = self._verify_queue.send(
                        [VerifyMessage(handle=record.handle, record=key).body()],
                        delay_seconds=self._first_check_delay(),
                    )
                    if not receipt.ok:
                        raise RuntimeError(f"the verify queue refused the check: {receipt.failed[0][1]}")
                    carried.update((entry.retailer_id, entry.version) for entry in record.entries)
                    outcome.lapsed_batches_settled += 1
            except Exception:  # left for the next run granted calls
                logger.exception("could not settle a lapsed pusher's batches", extra={"holder": lease.holder})
                continue
            settled.append(lease.holder)
        if not carried:
            return rows
        logger.warning(
            "settled the batches of a pusher that died holding the lease",
            extra={"holders": settled, "batches": outcome.lapsed_batches_settled},
        )
        kept = [push for push in rows if (push.retailer_id, push.message.version) not in carried]
        outcome.in_flight += len(rows) - len(kept)
        return kept

    def _send(  # noqa: PLR0917 (one private step, called twice)
        self,
        rows: list[ReceivedPush],
        states: Mapping[str, SkuState],
        outcome: PushOutcome,
        granted: CallGrant,
        now: datetime,
        holder: str,
    ) -> None:
        """The granted calls, in send order; the rows they do not carry wait for the next slot. Call ``n``'s batch
        is recorded under ``<holder>#<n>``, where a run settling this one's lapsed lease looks for it."""
        outcome.slots_used_in_hour = granted.calls_in_hour
        calls = pack(rows[: granted.capacity], granted.size) if granted.calls else []
        waiting = rows[granted.capacity :]
        if calls:
            outcome.oldest_sent_age_seconds = max(0.0, (now - calls[0][0].message.computed_at).total_seconds())
        if waiting and granted.retry_after_seconds > self._config.single_update_after_seconds:
            waiting = self._urgent_single_updates(waiting, states, outcome)
        if waiting:
            outcome.next_slot_seconds = granted.retry_after_seconds
            oldest = min(push.message.computed_at for push in waiting)
            outcome.oldest_waiting_age_seconds = max(0.0, (now - oldest).total_seconds())
            self._requeue(waiting, granted.retry_after_seconds, outcome)
        for index, call in enumerate(calls):
            if self._time_left is not None and self._time_left() < self._config.call_time_reserve_seconds:
                # Too close to the deadline to be sure of recording the answer: this call and the later ones wait
                # for the next slot (their calls go back to the hour with the lease).
                outcome.errors_by_code["deadline_near"] += 1
                self._requeue([p for later in calls[index:] for p in later], 1, outcome)
                return
            sent_at = self._now()
            outcome.calls_made += 1
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
                outcome.fail(call, failure_reason(error))
                continue
            self._accepted(call, result, outcome, sent_at, key=f"{holder}#{index}")

    def _accepted(
        self, call: list[ReceivedPush], result: ItemsBatchResult, outcome: PushOutcome, sent_at: datetime, *, key: str
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
            outcome.fail(sent, "no_handle: the platform returned no handle for rows it did not refuse")
            return
        handle = result.handles[0]
        accepted_at = self._now()
        outcome.calls += 1
        outcome.pushed += len(sent)
        outcome.handles.append(handle)
        error = self._record_and_schedule(handle, sent, accepted_at=accepted_at, sent_at=sent_at, key=key)
        if error is not None:
            # The platform has the rows: sending them again would be a second call for the same rows (and, on a
            # failure that lasts, one more on every redelivery). Hand them back with their handle instead, so the
            # next run records the batch and schedules its check without a call (docs/push.md).
            outcome.errors_by_code["record_batch"] += 1
            self._hand_over(
                handle=handle, rows=sent, accepted_at=accepted_at, sent_at=sent_at, error=error, outcome=outcome
            )

    def _record_and_schedule(
        self,
        handle: str,
        rows: Sequence[ReceivedPush],
        *,
        accepted_at: datetime,
        sent_at: datetime | None,
        key: str | None = None,
    ) -> Exception | None:
        """Record the accepted batch with its exact rows and schedule its first check; the error when either fails
        (then nothing would ever verify the rows)."""
        record = BatchRecord(
            handle=handle,
            key=key,
            accepted_at=accepted_at,
            sent_at=sent_at,
            entries=[BatchEntry.from_message(p.message.unsent()) for p in rows],
        )
        try:
            self._batches.record(record)
            receipt = self._verify_queue.send(
                [VerifyMessage(handle=handle, record=key).body()], delay_seconds=self._first_check_delay()
            )
            if not receipt.ok:
                raise RuntimeError(f"the verify queue refused the check: {receipt.failed[0][1]}")
        except Exception as error:  # any failure here leaves the handle unverified, whatever its cause
            logger.exception(
                "recording the batch or scheduling its verification failed", extra={"handle": handle, "key": key}
            )
            return error
        return None

    def _hand_over(
        self,
        *,
        handle: str,
        rows: Sequence[ReceivedPush],
        accepted_at: datetime,
        sent_at: datetime,
        error: Exception,
        outcome: PushOutcome,
    ) -> None:
        """Send accepted rows back to the push queue carrying their handle; a row that cannot be sent back is
        reported failed (SQS redelivers it without the handle: the one case left where it is sent twice)."""
        carried = [
            p.message.model_copy(update={"handle": handle, "accepted_at": accepted_at, "sent_at": sent_at})
            for p in rows
        ]
        try:
            receipt = self._push_queue.send([message.body() for message in carried], delay_seconds=1)
            unsent = {body["retailer_id"] for body, _reason in receipt.failed}
        except Exception:
            logger.exception("could not hand accepted rows back to the push queue", extra={"handle": handle})
            unsent = {p.retailer_id for p in rows}
        logger.error(
            "batch accepted but not recorded: rows handed back with their handle",
            extra={"handle": handle, "rows": len(rows), "not_handed_back": len(unsent)},
        )
        outcome.handed_over += len(rows) - len(unsent)
        outcome.fail(
            [p for p in rows if p.retailer_id in unsent], f"batch {handle} not recorded: {failure_reason(error)}"
        )

    def _record_late(self, carried: Sequence[ReceivedPush], outcome: PushOutcome) -> None:
        """Rows an earlier run sent in an accepted batch but could not record: record them under their handle and
        schedule the check, with no call; on a failure they come back (still carrying the handle)."""
        groups: dict[str, list[ReceivedPush]] = {}
        for push in carried:
            groups.setdefault(str(push.message.handle), []).append(push)
        for handle, rows in groups.items():
            first = rows[0].message
            accepted_at = first.accepted_at or self._now()
            error = self._record_and_schedule(
                handle, rows, accepted_at=accepted_at, sent_at=first.sent_at, key=late_record_key(handle, rows)
            )
            if error is None:
                outcome.recorded_late += len(rows)
            else:
                outcome.errors_by_code["record_batch"] += 1
                outcome.fail(rows, f"batch {handle} not recorded: {failure_reason(error)}")

    def _first_check_delay(self) -> int:
        """Read once per run: the calls of one run share the estimate."""
        if self._check_delay is None:
            self._check_delay = self._estimated_check_delay()
        return self._check_delay

    def _estimated_check_delay(self) -> int:
        default = self._config.verify_delay_seconds
        if self._verify_timing is None:
            return default
        try:
            return self._verify_timing.first_check_delay(default)
        except Exception:  # the estimate is an optimisation: never let it cost a batch its verification
            logger.exception("could not read the observed processing times; verifying after the default delay")
            return default

    # --- single-product updates for urgent rows -------------------------------------------------------------------

    def _urgent_single_updates(
        self, waiting: list[ReceivedPush], states: Mapping[str, SkuState], outcome: PushOutcome
    ) -> list[ReceivedPush]:
        """Send up to ``single_update_max_skus`` urgent waiting rows through the single-product endpoint now; the
        rows still waiting. Only rows no older version can overtake (``single_update_safe``)."""
        budget = self._config.single_update_max_skus
        chosen = [p for p in waiting if p.message.urgent and single_update_safe(p, states.get(p.retailer_id))]
        chosen = chosen[:budget]
        if not chosen:
            return waiting
        left = self._single_updates(chosen, outcome)
        done = {p.record_id for p in chosen} - {p.record_id for p in left}
        return [p for p in waiting if p.record_id not in done]

    def _single_updates(self, rows: list[ReceivedPush], outcome: PushOutcome) -> list[ReceivedPush]:
        """The rows that could not go now (throttled) and must wait with the others."""
        for index, push in enumerate(rows):
            sent_at = self._now()
            try:
                self._catalog.update_product(self._config.catalog_id, push.retailer_id, self._fields(push))
            except GraphThrottledError as error:
                outcome.errors_by_code[error_code(error)] += 1
                return rows[index:]
            except GraphApiError as error:
                outcome.errors_by_code[error_code(error)] += 1
                if classify_item_error(error.message).permanent:
                    self._item_failed(push, error.message, outcome)
                else:
                    outcome.fail([push], failure_reason(error))
                continue
            moment = self._now()
            self._confirmations.confirm_pushes(
                [BatchEntry.from_message(push.message)], accepted_at=moment, confirmed_at=moment, sent_at=sent_at
            )
            outcome.single_updates += 1
        return []

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
                outcome.fail([push], "could not send the row back to the push queue to wait for its slot")
            else:
                outcome.deferred += 1

    def _item_failed(self, push: ReceivedPush, message: str, outcome: PushOutcome) -> None:
        error = classify_item_error(message)
        outcome.errors_by_code[error.code] += 1
        if error.permanent:
            self._dead_letters.send(source=SOURCE, reason=f"{error.code}: {message}", body=push.message.body())
            outcome.dead_lettered += 1
            not_in_catalog(self._confirmations, push.message, error.code)
        else:
            outcome.fail([push], f"{error.code}: {message}")

    def _reject(self, push: ReceivedPush, reason: str, outcome: PushOutcome) -> None:
        logger.error("invalid push message", extra={"reason": reason, "record_id": push.record_id})
        self._dead_letters.send(source=SOURCE, reason=reason, body=push.message.body())
        outcome.dead_lettered += 1
