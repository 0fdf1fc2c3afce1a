"""Messages and records of the push path: push queue -> items_batch -> batches table -> verify queue.

The push message (``PushMessage``, models/sku.py) is the contract between recompute and push_batch: a value for one
SKU at one monotonic version. Unknown fields are refused, not ignored: a producer that misspells ``version`` must see
its message dead-lettered with the field named, not pushed without a version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field

from stocksync.models.base import Model
from stocksync.models.sku import PushMessage, SkuState, Visibility


class QueuedPush(PushMessage):
    """A push queue message as push_batch reads it: recompute's ``PushMessage`` (the contract, models/sku.py) plus
    the retry count that only verify_batch sets when it sends a version back after a per-item error."""

    retries: Annotated[int, Field(strict=True, ge=0)] = 0
    # Set only by push_batch on a row the platform already accepted in the batch ``handle`` when recording that
    # batch failed: the row comes back to be recorded and scheduled for verification, never sent again
    # (logic/pushing.py, "accepted but not recorded").
    handle: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    accepted_at: AwareDatetime | None = None
    sent_at: AwareDatetime | None = None

    def body(self) -> dict[str, object]:
        """The JSON body to enqueue; ``retries`` is left out while it is 0, as recompute leaves it out."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def unsent(self) -> QueuedPush:
        """This row without the accepted batch it may carry: the value and version as recompute asked for them."""
        return self.model_copy(update={"handle": None, "accepted_at": None, "sent_at": None})


class VerifyMessage(Model):
    """Asks verify_batch to check one items_batch handle; ``attempt`` counts the checks made so far plus one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handle: Annotated[str, Field(min_length=1, max_length=256)]
    attempt: Annotated[int, Field(strict=True, ge=1)] = 1
    # The batch record's key when it is not the handle: a part of an accepted batch recorded late, from the rows
    # push_batch sent back with their handle after recording the batch failed (``BatchRecord.key``).
    record: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    # When the last check found the batch still processing: the lower bound of its processing time, recorded when
    # it settles (logic/verify_timing.py). None before any such check.
    seen_processing_at: AwareDatetime | None = None

    def body(self) -> dict[str, object]:
        """The JSON body to enqueue; ``seen_processing_at`` is left out while there is none."""
        return self.model_dump(mode="json", exclude_none=True)


class BatchEntry(Model):
    """One row of an items_batch call exactly as it was sent, kept under the call's handle for verification."""

    model_config = ConfigDict(frozen=True)

    retailer_id: str
    value: int
    version: int
    visibility: Visibility
    computed_at: datetime
    retries: int = 0
    # Kept so that a row verify_batch sends back after a per-item error still goes first (logic/push_priority.py):
    # a SKU going out of stock must not wait behind routine rows because its first push failed.
    urgent: bool = False

    @classmethod
    def from_message(cls, message: QueuedPush) -> BatchEntry:
        return cls(
            retailer_id=message.retailer_id,
            value=message.value,
            version=message.version,
            visibility=message.visibility,
            computed_at=message.computed_at,
            retries=message.retries,
            urgent=message.urgent,
        )

    def retry_message(self) -> QueuedPush:
        """The push message that sends this row again, at its own version and original change time."""
        return QueuedPush(
            retailer_id=self.retailer_id,
            value=self.value,
            version=self.version,
            visibility=self.visibility,
            computed_at=self.computed_at,
            retries=self.retries + 1,
            urgent=self.urgent,
        )


class BatchState(StrEnum):
    PENDING = "pending"  # sent; not yet verified
    DONE = "done"  # verified: rows confirmed, retried or dead-lettered
    ABANDONED = "abandoned"  # the platform kept it processing past the verify limit (alarmed)


class BatchRecord(Model):
    """What one items_batch call carried: the handle, its rows, and when the platform accepted it."""

    model_config = ConfigDict(frozen=True)

    handle: str
    accepted_at: datetime
    entries: list[BatchEntry]
    state: BatchState = BatchState.PENDING
    # When the call was sent: the platform cannot have applied the batch before (records from before this field
    # existed fall back to accepted_at).
    sent_at: datetime | None = None
    # The record's key in the batches table when it is not the handle: rows of an accepted batch recorded late, in
    # groups as SQS delivers them back, each group its own record (and its own verification) under this key.
    key: str | None = None

    @property
    def store_key(self) -> str:
        return self.key or self.handle


class ConfirmReceipt(Model):
    """What marking rows confirmed did, per retailer id.

    ``confirmed``: the SKU's confirmed version is now the row's. ``stale_corrected``: a newer version was confirmed
    first, but the platform accepted this (older) row after it, so the catalog shows this row's value; the SKU's
    confirmed value says so now and recompute will push again. ``refused``: the SKU already had this version or a
    newer one that the platform applied later (or the SKU record is gone): nothing to do.
    """

    confirmed: list[str] = []
    stale_corrected: list[str] = []
    refused: list[str] = []
    # The same version was confirmed from a batch accepted before this one: this later overwrite is the anchor now.
    re_anchored: list[str] = []
    # The new state of each SKU whose row landed (confirmed, stale_corrected or re_anchored).
    states: dict[str, SkuState] = {}
