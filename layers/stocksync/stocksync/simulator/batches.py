"""Catalog Batch API uploads (``items_batch``): envelope checks at upload, asynchronous per-row processing.

An accepted batch waits in a queue until the simulated clock reaches its ready time, then its valid rows are
applied in request order; batches apply in the order they were accepted. The uploaded quantity overwrites the
platform's cached value at processing time, so orders placed between upload and processing are wiped out by the
overwrite, as on the real platform.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from stocksync.simulator.catalog import Catalog, invalid_field_messages, missing_fields_for_new_product

ITEM_TYPE_PRODUCT = "PRODUCT_ITEM"
BATCH_METHODS = ("CREATE", "UPDATE", "DELETE")
MAX_REQUESTS_PER_BATCH = 5000
MAX_BATCH_BODY_BYTES = 28_000_000
# check_batch_request_status returns a sample of the row errors; errors_total_count has the full number.
ERRORS_SAMPLE_SIZE = 100


class BatchStatus(StrEnum):
    DISPATCHED = "dispatched"
    STARTED = "started"
    FINISHED = "finished"


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
    ready_at: datetime
    allow_upsert: bool
    rows: list[BatchRow]
    errors: list[RowError] = field(default_factory=list)
    finished: bool = False

    def status(self, now: datetime) -> BatchStatus:
        """Dispatched for the first half of the processing delay, started for the second, then finished."""
        if self.finished:
            return BatchStatus.FINISHED
        halfway = self.accepted_at + (self.ready_at - self.accepted_at) / 2
        return BatchStatus.DISPATCHED if now < halfway else BatchStatus.STARTED

    def status_report(self, now: datetime, load_ids_of_invalid_requests: bool) -> dict[str, Any]:
        invalid_ids = list(dict.fromkeys(error.retailer_id for error in self.errors))
        return {
            "handle": self.handle,
            "status": self.status(now).value,
            "errors": [
                {"line": error.line, "id": error.retailer_id, "message": error.message}
                for error in self.errors[:ERRORS_SAMPLE_SIZE]
            ],
            "errors_total_count": len(self.errors),
            "warnings": [],
            "warnings_total_count": 0,
            "ids_of_invalid_requests": invalid_ids if load_ids_of_invalid_requests else [],
        }


class BatchQueue:
    """Accepted batches by handle; the pending ones in acceptance order. The simulator's lock guards it."""

    def __init__(self) -> None:
        self.processing_delay = timedelta(0)
        self._jobs: dict[str, BatchJob] = {}
        self._pending: deque[BatchJob] = deque()

    def accept(self, rows: list[BatchRow], allow_upsert: bool, now: datetime) -> str:
        ready_at = now + self.processing_delay
        if self._pending:
            # A later batch never overtakes an earlier one, even if the delay was shortened in between.
            ready_at = max(ready_at, self._pending[-1].ready_at)
        handle = f"AcSim{len(self._jobs) + 1:06d}{secrets.token_hex(6)}"
        job = BatchJob(handle=handle, accepted_at=now, ready_at=ready_at, allow_upsert=allow_upsert, rows=rows)
        self._jobs[handle] = job
        self._pending.append(job)
        return handle

    def get(self, handle: str) -> BatchJob | None:
        return self._jobs.get(handle)

    def settle(self, now: datetime, catalog: Catalog) -> None:
        """Process every batch whose ready time has come, oldest first."""
        while self._pending and self._pending[0].ready_at <= now:
            job = self._pending.popleft()
            for row in job.rows:
                job.errors.extend(
                    RowError(row.line, row.retailer_id, message)
                    for message in apply_row(catalog, row, job.allow_upsert)
                )
            job.rows = []
            job.finished = True
