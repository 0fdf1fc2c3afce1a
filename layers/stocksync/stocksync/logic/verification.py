"""verify_batch's use case: prove what an items_batch call delivered, and settle every row it carried.

The platform processes a batch asynchronously; ``check_batch_request_status`` reports its state and, asked with
``load_ids_of_invalid_requests``, the retailer ids of the rows it refused. For one handle:

- still scheduled/dispatched/started: check again later, at most ``max_checks`` times; then give up loudly (metric,
  alarm, dead letter with the reason). When is derived from how long the catalog's recent batches took
  (logic/verify_timing.py); before any was observed, the delay doubles per check (up to SQS's 900 s);
- finished: every row not refused is confirmed on its SKU (conditional: never over a newer version); each refused
  row is classified (logic/item_errors.py): permanent ones are dead-lettered with the platform's message,
  retryable ones go back to the push queue at their own version, at most ``MAX_ITEM_RETRIES`` times;
- error or canceled: every row goes back to the push queue, unless a newer version superseded it meanwhile.

Every status call spends one call of its own hourly budget (``check_batch_request_status`` counts against Meta's
catalog-management use case, throttled with 80009, which the catalog reads share). With no call left, the check
waits in the verify queue until one frees up, without using up a check; a throttled answer pauses the budget for
every verify invocation until Meta's announced time. Each batch that ends (finished, error or canceled) adds the
interval its checks bracketed to the catalog's processing-time observations.

Redelivery is harmless: a settled record is skipped, confirming a version twice changes nothing, and a batch's
processing time is recorded once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from stocksync import clock
from stocksync.errors import InvalidInputError
from stocksync.logic.batch_budget import CallGrant
from stocksync.logic.catalog_model import unsettled_after_confirm
from stocksync.logic.item_errors import MAX_ITEM_RETRIES, classify_item_error
from stocksync.logic.pushing import (
    Confirmations,
    Outbox,
    Rejections,
    SkuStates,
    error_code,
    not_in_catalog,
    queue_delay,
)
from stocksync.logic.verify_timing import Observation, RecheckPlan, doubling_delay, plan_recheck
from stocksync.models.graph import BatchRequestStatus, BatchStatus
from stocksync.models.graph_errors import GraphThrottledError, GraphValidationError
from stocksync.models.push import BatchEntry, BatchRecord, BatchState, ConfirmReceipt, VerifyMessage
from stocksync.models.recompute import RecomputeRequest
from stocksync.observability import logger

SOURCE = "verify_batch"


class BatchStore(Protocol):
    def load(self, handle: str) -> BatchRecord | None: ...

    def finish(
        self,
        handle: str,
        state: BatchState,
        *,
        finished_at: datetime,
        counts: dict[str, int],
        latencies_seconds: Sequence[float] = (),
    ) -> bool: ...


class StatusReader(Protocol):
    def check_batch_request_status(
        self, catalog_id: str, handle: str, load_ids_of_invalid_requests: bool = True
    ) -> BatchRequestStatus: ...


class StatusCheckBudget(Protocol):
    """The status-check call budget (dal/budget.py's ``DynamoCallBudget`` of kind ``status-check``)."""

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant: ...

    def block_until(self, until: datetime) -> None: ...


class ProcessingTimes(Protocol):
    """The catalog's recent processing-time observations (dal/processing_times.py)."""

    def observations(self) -> Sequence[Observation]: ...

    def record(self, observation: Observation) -> bool: ...


@dataclass(frozen=True)
class VerifyConfig:
    catalog_id: str
    # While no batch of the catalog was observed: the delay before the second check; each further check waits twice
    # as long as the one before (SQS caps at 900 s). Once batches were observed, logic/verify_timing.py decides.
    recheck_delay_seconds: int = 60
    max_checks: int = 10


def recheck_delay(attempt: int, base_seconds: int) -> int:
    """Delay before check ``attempt + 1`` while no batch was observed: base, 2 x base, 4 x base, ... capped at 900 s."""
    return doubling_delay(attempt, base_seconds)


@dataclass
class VerifyOutcome:
    handle: str
    status: str | None = None
    already_settled: bool = False
    rechecks: int = 0  # 1 when another check was scheduled
    status_checks_deferred: int = 0  # 1 when no status call was left in the budget: the check waits, not used up
    next_check_seconds: int | None = None  # the delay the next check was scheduled with
    recheck_basis: str | None = None  # default | estimate | doubling (logic/verify_timing.py)
    recheck_quantile: float | None = None
    estimated_processing_seconds: float | None = None  # the processing time (from acceptance) the next check aims at
    processing_lower_seconds: float | None = None  # the batch ended: its processing time lies in (lower, upper]
    processing_upper_seconds: float | None = None
    gave_up: bool = False
    confirmed: int = 0
    stale_corrected: int = 0
    refused: int = 0  # already confirmed at this version or newer (a redelivery, or a later push won)
    re_anchored: int = 0  # the same version confirmed from an earlier batch: this later overwrite anchors the SKU
    retried: int = 0
    superseded: int = 0
    dead_lettered: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    batch_latency_seconds: float | None = None  # items_batch accepted -> confirmed
    latencies_seconds: list[float] = field(default_factory=list)  # each confirmed row: value changed -> confirmed


def _dead_letter_body(entry: BatchEntry, handle: str) -> dict[str, Any]:
    return {**entry.model_dump(mode="json"), "handle": handle}


class Verifier:
    def __init__(
        self,
        config: VerifyConfig,
        *,
        batches: BatchStore,
        status: StatusReader,
        states: SkuStates,
        confirmations: Confirmations,
        push_queue: Outbox,
        verify_queue: Outbox,
        dead_letters: Rejections,
        recompute_queue: Outbox,
        status_budget: StatusCheckBudget | None = None,
        processing_times: ProcessingTimes | None = None,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        """``status_budget`` None: status calls are not counted; ``processing_times`` None: nothing is observed and
        rechecks double from ``recheck_delay_seconds`` (tests that are about something else)."""
        self._config = config
        self._batches = batches
        self._status = status
        self._states = states
        self._confirmations = confirmations
        self._push_queue = push_queue
        self._verify_queue = verify_queue
        self._dead_letters = dead_letters
        self._recompute_queue = recompute_queue
        self._status_budget = status_budget
        self._processing_times = processing_times
        self._now = now

    def verify(self, message: VerifyMessage) -> VerifyOutcome:
        outcome = VerifyOutcome(handle=message.handle)
        record = self._batches.load(message.record or message.handle)
        if record is None:
            key = message.record or message.handle
            raise InvalidInputError("handle", f"no batch record for {key!r} (expired or never recorded)")
        if record.state is not BatchState.PENDING:
            outcome.already_settled = True
            return outcome
        asked_at = self._now()
        if self._status_budget is not None:
            granted = self._status_budget.acquire(1, preferred_size=1, now=asked_at)
            if granted.calls == 0:
                # No status call left this hour: the same check waits until one frees up; it is not used up.
                outcome.status_checks_deferred = 1
                outcome.next_check_seconds = self._schedule(message, granted.retry_after_seconds)
                return outcome
        try:
            status = self._status.check_batch_request_status(self._config.catalog_id, record.handle, True)
        except GraphThrottledError as error:
            # Throttling says nothing about the batch: check again once allowed, without using up a check. The
            # budget pauses too, so the other verify invocations stop asking until then as well.
            outcome.errors_by_code[error_code(error)] += 1
            if self._status_budget is not None:
                self._status_budget.block_until(asked_at + timedelta(seconds=error.retry_after_seconds))
            outcome.next_check_seconds = self._schedule(message, error.retry_after_seconds)
            outcome.rechecks = 1
            return outcome
        except GraphValidationError as error:
            # The platform refuses the request itself (an unknown handle): asking again cannot help.
            raise InvalidInputError("handle", f"the platform refused the status request: {error.message}") from None
        outcome.status = status.status.value
        if not status.status.is_final:
            self._still_processing(record, status.status, message.attempt, outcome, asked_at=asked_at)
            return outcome
        done_at = self._now()
        if status.status is BatchStatus.FINISHED:
            self._finished(record, status, outcome)
        else:
            self._retry(record.entries, f"the platform ended the batch with status {status.status.value}", outcome)
            self._settle(record, outcome)
        self._observe(record, message, done_at, outcome)
        return outcome

    def _still_processing(
        self, record: BatchRecord, status: BatchStatus, attempt: int, outcome: VerifyOutcome, *, asked_at: datetime
    ) -> None:
        if attempt < self._config.max_checks:
            plan = self._plan_recheck(record, attempt, asked_at)
            outcome.rechecks = 1
            outcome.recheck_basis = plan.basis
            outcome.recheck_quantile = plan.quantile
            outcome.estimated_processing_seconds = plan.estimate_seconds
            outcome.next_check_seconds = self._schedule(
                VerifyMessage(
                    handle=record.handle, record=record.key, attempt=attempt + 1, seen_processing_at=asked_at
                ),
                plan.delay_seconds,
            )
            return
        reason = f"batch {record.handle} still {status.value} after {attempt} checks; its rows stay unconfirmed"
        logger.error("gave up verifying a batch", extra={"handle": record.handle, "reason": reason})
        self._batches.finish(
            record.store_key, BatchState.ABANDONED, finished_at=self._now(), counts={"checks": attempt}
        )
        self._dead_letters.send(
            source=SOURCE, reason=reason, body={"handle": record.handle, "rows": len(record.entries)}
        )
        outcome.gave_up = True

    def _plan_recheck(self, record: BatchRecord, attempt: int, asked_at: datetime) -> RecheckPlan:
        """The next check's delay: from the observed processing times, or doubling while there are none."""
        observations = self._processing_times.observations() if self._processing_times is not None else ()
        return plan_recheck(
            observations,
            attempt=attempt,
            elapsed_seconds=(asked_at - record.accepted_at).total_seconds(),
            base_seconds=self._config.recheck_delay_seconds,
        )

    def _observe(self, record: BatchRecord, message: VerifyMessage, done_at: datetime, outcome: VerifyOutcome) -> None:
        """Add the interval this batch's checks bracketed to the catalog's observations. Best effort, after the
        batch is settled: losing one observation costs a slightly older estimate, while failing here would have the
        settled batch's message delivered again for nothing."""
        observation = Observation.of(
            record.handle,
            accepted_at=record.accepted_at,
            last_processing_at=message.seen_processing_at,
            done_at=done_at,
        )
        outcome.processing_lower_seconds = observation.lower_ms / 1000
        outcome.processing_upper_seconds = observation.upper_ms / 1000
        if self._processing_times is None:
            return
        try:
            self._processing_times.record(observation)
        except Exception:  # any failure only costs this observation
            logger.warning("could not record a batch's processing time", extra={"handle": record.handle}, exc_info=True)

    def _finished(self, record: BatchRecord, status: BatchRequestStatus, outcome: VerifyOutcome) -> None:
        messages: dict[str, str] = {}
        for error in status.errors:
            if error.id is not None:
                messages.setdefault(error.id, error.message)
        invalid = set(status.ids_of_invalid_requests) | messages.keys()
        if status.errors_total_count and not invalid:
            raise InvalidInputError(
                "ids_of_invalid_requests",
                f"{status.errors_total_count} rows failed but the status names none of them; cannot tell which",
            )
        now = self._now()
        delivered = [entry for entry in record.entries if entry.retailer_id not in invalid]
        receipt = self._confirmations.confirm_pushes(
            delivered, accepted_at=record.accepted_at, confirmed_at=now, sent_at=record.sent_at
        )
        self._recompute_if_unsettled(receipt)
        outcome.confirmed = len(receipt.confirmed)
        outcome.stale_corrected = len(receipt.stale_corrected)
        outcome.refused = len(receipt.refused)
        outcome.re_anchored = len(receipt.re_anchored)
        landed = set(receipt.confirmed) | set(receipt.stale_corrected)
        outcome.latencies_seconds = [
            (now - entry.computed_at).total_seconds() for entry in delivered if entry.retailer_id in landed
        ]
        to_retry: list[tuple[BatchEntry, str]] = []
        for entry in record.entries:
            if entry.retailer_id not in invalid:
                continue
            error = classify_item_error(messages.get(entry.retailer_id))
            outcome.errors_by_code[error.code] += 1
            if error.permanent:
                self._dead_letter(entry, record.handle, f"{error.code}: {error.message}", outcome)
                not_in_catalog(self._confirmations, entry, error.code)
            else:
                to_retry.append((entry, error.message))
        self._retry_each(to_retry, record.handle, outcome)
        self._settle(record, outcome, finished_at=now)

    def _recompute_if_unsettled(self, receipt: ConfirmReceipt) -> None:
        """Recompute the SKUs this confirmation leaves open: the platform's moves seen while the push was in flight
        (recompute waited for this confirmation to place them against the push's window), an older value that
        landed after a newer one, and repeats (a redelivery finds its rows confirmed already)."""
        unsettled = {rid for rid, state in receipt.states.items() if unsettled_after_confirm(state)}
        unsettled.update(receipt.stale_corrected, receipt.refused)
        if not unsettled:
            return
        bodies = [RecomputeRequest(retailer_id=rid, reason="push confirmed").model_dump() for rid in sorted(unsettled)]
        receipt_of_send = self._recompute_queue.send(bodies)
        if not receipt_of_send.ok:
            # Raising keeps the verify message: its redelivery finds the rows confirmed and asks again.
            raise RuntimeError(f"could not enqueue {len(receipt_of_send.failed)} recomputes after a confirmation")

    def _retry(self, entries: Iterable[BatchEntry], why: str, outcome: VerifyOutcome) -> None:
        outcome.errors_by_code[f"batch_{outcome.status}"] += 1
        self._retry_each([(entry, why) for entry in entries], outcome.handle, outcome)

    def _retry_each(self, failures: Sequence[tuple[BatchEntry, str]], handle: str, outcome: VerifyOutcome) -> None:
        retryable: list[BatchEntry] = []
        for entry, why in failures:
            if entry.retries >= MAX_ITEM_RETRIES:
                self._dead_letter(entry, handle, f"gave up after {entry.retries} retries: {why}", outcome)
            else:
                retryable.append(entry)
        if not retryable:
            return
        states = self._states.get_states(entry.retailer_id for entry in retryable)
        current = []
        for entry in retryable:
            state = states.get(entry.retailer_id)
            if state is None or entry.version < state.published_version or entry.version <= state.confirmed_version:
                outcome.superseded += 1
            else:
                current.append(entry)
        if not current:
            return
        receipt = self._push_queue.send([entry.retry_message().body() for entry in current])
        if not receipt.ok:
            # Raising keeps the verify message (and the record pending): the next delivery retries the rest too.
            raise RuntimeError(
                f"could not re-enqueue {len(receipt.failed)} rows of batch {handle}: {receipt.failed[0][1]}"
            )
        outcome.retried += len(current)

    def _dead_letter(self, entry: BatchEntry, handle: str, reason: str, outcome: VerifyOutcome) -> None:
        self._dead_letters.send(source=SOURCE, reason=reason, body=_dead_letter_body(entry, handle))
        outcome.dead_lettered += 1

    def _settle(self, record: BatchRecord, outcome: VerifyOutcome, finished_at: datetime | None = None) -> None:
        moment = finished_at or self._now()
        outcome.batch_latency_seconds = (moment - record.accepted_at).total_seconds()
        counts = {
            "confirmed": outcome.confirmed,
            "stale_corrected": outcome.stale_corrected,
            "refused": outcome.refused,
            "re_anchored": outcome.re_anchored,
            "retried": outcome.retried,
            "superseded": outcome.superseded,
            "dead_lettered": outcome.dead_lettered,
        }
        self._batches.finish(
            record.store_key,
            BatchState.DONE,
            finished_at=moment,
            counts=counts,
            latencies_seconds=outcome.latencies_seconds,
        )

    def _schedule(self, message: VerifyMessage, delay_seconds: float) -> int:
        """Send the check to the verify queue; returns the delay SQS was given."""
        delay = queue_delay(delay_seconds)
        receipt = self._verify_queue.send([message.body()], delay_seconds=delay)
        if not receipt.ok:
            raise RuntimeError(f"could not schedule the next check of batch {message.handle}: {receipt.failed[0][1]}")
        return delay
