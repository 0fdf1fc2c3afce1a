"""Catalog Batch API uploads (``items_batch``): envelope checks at upload, asynchronous per-row processing.

An accepted batch has three instants, all on the simulated clock:

- ``accepted_at``: the upload; the batch reports ``dispatched``.
- ``apply_at``: a point *inside* the processing delay where its valid rows overwrite the catalog, in request order.
  It is ``accepted_at + delay * fraction``: a fixed fraction (``apply_fraction``, 0.5 by default) or, when that is
  None, a fraction drawn per batch from a seeded generator, so a run is reproducible. The batch reports ``started``
  from halfway through the delay, or from ``apply_at`` when that comes earlier: rows are never applied while it still
  says ``dispatched``.
- ``ready_at`` (end of the delay): the batch reports ``finished``, and never before.

Before ``dispatched`` a batch may report ``scheduled`` for the first ``scheduled_fraction`` of its delay (0 by
default: no source says how long Meta keeps a batch scheduled). ``BatchQueue.cancel`` and ``BatchQueue.fail`` are
test switches: a batch not yet applied never lands and reports ``canceled`` or ``error`` from then on (the status
values are those of Meta's Catalog Batch API status; when and why Meta cancels or fails a whole batch is not
documented, so these only ever happen when a test asks). ``ids_of_invalid_requests`` lists one retailer id per
row error, repeats included, as in Meta's sample answer of ``check_batch_request_status``.

A client polling the status therefore cannot tell when inside ``started`` its rows landed, as with the real
platform. The uploaded quantity overwrites the platform's cached value at ``apply_at``: orders and restocks placed
before it are erased, those after it are kept, because the value provided by an upload "is considered the source of
truth, and is always used to overwrite the value cached on our backend"
(https://developers.secure.facebook.com/docs/commerce-platform/catalog/quantity-to-sell). Batches apply and finish
in the order they were accepted, whatever the delay was when each was accepted. ``applied_at`` records, for tests
only, the instant each batch was applied; it never appears in a Graph answer.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from stocksync_dev.simulator.catalog import Catalog, invalid_field_messages, missing_fields_for_new_product

ITEM_TYPE_PRODUCT = "PRODUCT_ITEM"
BATCH_METHODS = ("CREATE", "UPDATE", "DELETE")
MAX_REQUESTS_PER_BATCH = 5000
MAX_BATCH_BODY_BYTES = 28_000_000
# check_batch_request_status returns a sample of the row errors; errors_total_count has the full number.
ERRORS_SAMPLE_SIZE = 100
# Where inside its processing delay a batch is applied, by default: halfway, as the status turns ``started``.
DEFAULT_APPLY_FRACTION = 0.5


class BatchStatus(StrEnum):
    SCHEDULED = "scheduled"
    DISPATCHED = "dispatched"
    STARTED = "started"
    FINISHED = "finished"
    CANCELED = "canceled"
    ERROR = "error"


@dataclass(frozen=True)
class BatchRow:
    line: int
    method: str
    retailer_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class EnvelopeError:
    """A request rejected at upload (answered in ``validation_status``); it is not part of the batch."""

    retailer_id: str | None
    message: str


@dataclass(frozen=True)
class RowError:
    line: int
    retailer_id: str
    message: str


def split_requests(requests: list[Any]) -> tuple[list[BatchRow], list[EnvelopeError]]:
    """Separate well-formed requests (method + data with data.id) from those malformed at the envelope level."""
    rows: list[BatchRow] = []
    rejected: list[EnvelopeError] = []
    for line, request in enumerate(requests):
        data = request.get("data") if isinstance(request, dict) else None
        retailer_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(retailer_id, int) and not isinstance(retailer_id, bool):
            retailer_id = str(retailer_id)
        if not isinstance(retailer_id, str) or not retailer_id:
            retailer_id = None
        method = request.get("method") if isinstance(request, dict) else None
        if not isinstance(data, dict):
            rejected.append(EnvelopeError(None, f"Request {line}: data must be an object holding the product fields"))
        elif retailer_id is None:
            rejected.append(EnvelopeError(None, f"Request {line}: data.id (the retailer id) is required"))
        elif method not in BATCH_METHODS:
            rejected.append(
                EnvelopeError(retailer_id, f"Request {line}: method must be one of {', '.join(BATCH_METHODS)}")
            )
        else:
            rows.append(BatchRow(line, method, retailer_id, data))
    return rows, rejected


def apply_row(catalog: Catalog, row: BatchRow, allow_upsert: bool) -> list[str]:
    """Apply one row to the catalog; the messages say why it was not applied (empty when it was)."""
    fields = {name: value for name, value in row.data.items() if name != "id"}
    messages = invalid_field_messages(fields)
    if messages:
        return messages
    not_found = [f"Product not found: {row.retailer_id}"]
    if row.method == "DELETE":
        if row.retailer_id not in catalog:
            return not_found
        catalog.delete(row.retailer_id)
    elif row.retailer_id in catalog:
        catalog.update(row.retailer_id, fields)
    elif row.method == "UPDATE" and not allow_upsert:
        return not_found
    elif missing := missing_fields_for_new_product(fields):
        if row.method == "UPDATE":
            return not_found
        return [f"Missing required field(s) for a new product: {', '.join(missing)}"]
    else:
        catalog.create(row.retailer_id, fields)
    return []


@dataclass
class BatchJob:
    handle: str
    accepted_at: datetime
    apply_at: datetime
    ready_at: datetime
    allow_upsert: bool
    rows: list[BatchRow]
    errors: list[RowError] = field(default_factory=list)
    # Set when the rows were applied (to ``apply_at``: processing is lazy, but happens at that simulated instant).
    applied_at: datetime | None = None
    finished: bool = False
    # Until when it reports ``scheduled`` (``accepted_at``: never).
    scheduled_until: datetime | None = None
    # Set by the test switches: the final status (canceled or error) and, for error, the message reported.
    outcome: BatchStatus | None = None
    outcome_message: str | None = None

    @property
    def started_at(self) -> datetime:
        """Halfway through the delay, or the application point if earlier: rows only land while ``started``."""
        return min(self.accepted_at + (self.ready_at - self.accepted_at) / 2, self.apply_at)

    def status(self, now: datetime) -> BatchStatus:
        """Scheduled, then dispatched until processing starts, started until the end of the delay, then finished;
        canceled or error from the moment a test switch ended it."""
        if self.outcome is not None:
            return self.outcome
        if self.finished:
            return BatchStatus.FINISHED
        if self.scheduled_until is not None and now < min(self.scheduled_until, self.started_at):
            return BatchStatus.SCHEDULED
        return BatchStatus.DISPATCHED if now < self.started_at else BatchStatus.STARTED

    def status_report(self, now: datetime, load_ids_of_invalid_requests: bool) -> dict[str, Any]:
        invalid_ids = [error.retailer_id for error in self.errors]
        errors: list[dict[str, Any]] = [
            {"line": error.line, "id": error.retailer_id, "message": error.message}
            for error in self.errors[:ERRORS_SAMPLE_SIZE]
        ]
        if self.outcome_message is not None:
            errors.insert(0, {"message": self.outcome_message})
        return {
            "handle": self.handle,
            "status": self.status(now).value,
            "errors": errors[:ERRORS_SAMPLE_SIZE],
            "errors_total_count": len(self.errors) + (self.outcome_message is not None),
            "warnings": [],
            "warnings_total_count": 0,
            "ids_of_invalid_requests": invalid_ids if load_ids_of_invalid_requests else [],
        }

    def timeline(self) -> dict[str, Any]:
        """The batch's instants, for tests (simulator-only: Graph never reports when a batch was applied)."""
        return {
            "accepted_at": self.accepted_at,
            "apply_at": self.apply_at,
            "applied_at": self.applied_at,
            "ready_at": self.ready_at,
            "finished": self.finished,
        }


def check_apply_fraction(fraction: float | None) -> float | None:
    """A fraction of the processing delay in [0, 1], or None for a seeded random point per batch."""
    valid = isinstance(fraction, int | float) and not isinstance(fraction, bool) and 0 <= fraction <= 1
    if fraction is not None and not valid:
        raise ValueError(f"batch_apply_fraction must be between 0 and 1 (or None for random), got {fraction!r}")
    return fraction


class BatchQueue:
    """Accepted batches by handle; those not yet applied, and not yet finished, in acceptance order.

    The simulator's lock guards it.
    """

    def __init__(self, seed: int = 0) -> None:
        self.processing_delay = timedelta(0)
        self.apply_fraction: float | None = DEFAULT_APPLY_FRACTION
        # The share of the delay, from acceptance, during which a batch reports ``scheduled``.
        self.scheduled_fraction = 0.0
        self.seed = seed
        self._random = random.Random(seed)
        self._jobs: dict[str, BatchJob] = {}
        self._to_apply: deque[BatchJob] = deque()
        self._to_finish: deque[BatchJob] = deque()

    def reseed(self, seed: int) -> None:
        """Restart the generator of random application points (used when ``apply_fraction`` is None)."""
        self.seed = seed
        self._random = random.Random(seed)

    def accept(self, rows: list[BatchRow], allow_upsert: bool, now: datetime) -> str:
        fraction = self._random.random() if self.apply_fraction is None else self.apply_fraction
        apply_at = now + self.processing_delay * fraction
        ready_at = now + self.processing_delay
        if self._to_finish:
            # A later batch never overtakes an earlier one, even if the delay was shortened in between.
            previous = self._to_finish[-1]
            apply_at = max(apply_at, previous.apply_at)
            ready_at = max(ready_at, previous.ready_at)
        handle = f"AcSim{len(self._jobs) + 1:06d}{secrets.token_hex(6)}"
        job = BatchJob(
            handle=handle,
            accepted_at=now,
            apply_at=apply_at,
            ready_at=ready_at,
            allow_upsert=allow_upsert,
            rows=rows,
            scheduled_until=now + self.processing_delay * self.scheduled_fraction,
        )
        self._jobs[handle] = job
        self._to_apply.append(job)
        self._to_finish.append(job)
        return handle

    def get(self, handle: str) -> BatchJob | None:
        return self._jobs.get(handle)

    def cancel(self, handle: str, now: datetime) -> None:
        """Test switch: the batch reports ``canceled`` from now on; rows not applied yet never will be."""
        self._end(handle, BatchStatus.CANCELED, None, now)

    def fail(self, handle: str, now: datetime, message: str = "An unexpected error occurred") -> None:
        """Test switch: the batch reports ``error`` (with ``message`` first in its errors) from now on; rows not
        applied yet never will be."""
        self._end(handle, BatchStatus.ERROR, message, now)

    def _end(self, handle: str, outcome: BatchStatus, message: str | None, now: datetime) -> None:
        job = self._jobs.get(handle)
        if job is None:
            raise KeyError(f"no batch with handle {handle!r}")
        if job.finished or job.outcome is not None:
            raise ValueError(f"batch {handle} already ended ({job.status(now).value})")
        job.outcome, job.outcome_message = outcome, message
        job.rows = []
        job.finished = True
        if job in self._to_apply:
            self._to_apply.remove(job)
        if job in self._to_finish:
            self._to_finish.remove(job)

    def timelines(self) -> dict[str, dict[str, Any]]:
        return {handle: job.timeline() for handle, job in self._jobs.items()}

    def settle(self, now: datetime, catalog: Catalog) -> None:
        """Apply every batch whose application point has come, oldest first; finish those whose delay is over."""
        while self._to_apply and self._to_apply[0].apply_at <= now:
            job = self._to_apply.popleft()
            for row in job.rows:
                job.errors.extend(
                    RowError(row.line, row.retailer_id, message)
                    for message in apply_row(catalog, row, job.allow_upsert)
                )
            job.rows = []
            job.applied_at = job.apply_at
        while self._to_finish and self._to_finish[0].ready_at <= now:
            self._to_finish.popleft().finished = True
