"""One batch of the recompute queue (the recompute_stock function's use case): a SKU whose inputs changed, or a
SKU's own settings from the bus.

Two shapes share the queue because both end in the same recompute of one SKU:

- ``{"retailer_id": "...", "reason": "..."}`` from the ledger, the warehouse input and the bucket assignment;
- a "SKU Settings Changed" EventBridge event (routed here by a bus rule; the CLI's ``discontinue`` applies the same
  change directly), whose detail is a ``SkuSettingsChange``: applied first, then the SKU is recomputed.

The batch's SKU records are read up front in batched, consistent reads; a settings change returns the SKU's new
record from its own update.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from stocksync.errors import InvalidInputError
from stocksync.logic.recompute import Evaluation, StateReads
from stocksync.models.bus import BusEvent
from stocksync.models.recompute import RecomputeRequest
from stocksync.models.sku import SkuSettingsChange, SkuState
from stocksync.observability import logger, metrics

SETTINGS_DETAIL_TYPE = "SKU Settings Changed"


@dataclass(frozen=True, slots=True)
class RecomputeMessage:
    retailer_id: str
    settings_change: SkuSettingsChange | None = None


def parse_recompute_message(body: str, buckets: Collection[str]) -> RecomputeMessage:
    """Raises json.JSONDecodeError, pydantic ValidationError or InvalidInputError, each naming what is wrong."""
    raw: Any = json.loads(body)
    if isinstance(raw, dict) and "detail-type" in raw:
        event = BusEvent.model_validate(raw)
        if event.detail_type != SETTINGS_DETAIL_TYPE:
            raise InvalidInputError("detail-type", f"expected {SETTINGS_DETAIL_TYPE!r}, got {event.detail_type!r}")
        change = SkuSettingsChange.model_validate(event.detail)
        if change.bucket is not None and change.bucket not in buckets:
            raise InvalidInputError("detail.bucket", f"unknown bucket {change.bucket!r}; known: {sorted(buckets)}")
        return RecomputeMessage(change.retailer_id, change)
    return RecomputeMessage(RecomputeRequest.model_validate(raw).retailer_id)


class SettingsStore(Protocol):
    def read_states(self, retailer_ids: Iterable[str]) -> StateReads: ...

    def apply_settings(self, change: SkuSettingsChange) -> SkuState | None: ...


class SkuRecompute(Protocol):
    def add(self, state: SkuState, *, redelivered: bool = False) -> Evaluation | None: ...


class RecomputeQueueBatch:
    """One SQS batch of the recompute queue: ``prefetch`` the records, then ``handle`` each message."""

    def __init__(self, skus: SettingsStore, recompute: SkuRecompute, *, buckets: Collection[str]) -> None:
        self._skus = skus
        self._recompute = recompute
        self._buckets = buckets
        self._reads = StateReads()
        self._done: set[str] = set()
        self._messages: dict[str, list[str]] = {}  # retailer id -> ids of the messages that asked for it

    def prefetch(self, bodies: Iterable[str]) -> None:
        """Read every SKU the batch names in as few calls as possible (bad messages are left to ``handle``)."""
        wanted = set()
        for body in bodies:
            try:
                wanted.add(parse_recompute_message(body, self._buckets).retailer_id)
            except (ValueError, InvalidInputError):  # JSONDecodeError and ValidationError are ValueErrors
                continue
        self._reads = self._skus.read_states(wanted)

    def handle(self, message_id: str, body: str, *, redelivered: bool = False) -> None:
        """One message; raises what ``parse_recompute_message`` raises, or InvalidInputError for an unreadable SKU
        record, so the caller dead-letters it with the reason. ``redelivered``: SQS delivered it before."""
        message = parse_recompute_message(body, self._buckets)
        retailer_id = message.retailer_id
        self._messages.setdefault(retailer_id, []).append(message_id)
        state = None
        if message.settings_change is not None:
            state = self._skus.apply_settings(message.settings_change)  # None: an older change or a repeat
            if state is None:
                # Never silent (docs/design.md, "Bounds at the edges"): a change older than the one applied is
                # ignored as a whole, and said so; a redelivered repeat is counted the same way.
                logger.info(
                    "settings change not newer than the one applied: ignored",
                    extra={"retailer_id": retailer_id, "as_of": message.settings_change.as_of.isoformat()},
                )
                metrics.add_metric(name="SettingsChangesStale", unit="Count", value=1)
        elif retailer_id in self._done:
            return  # the same SKU twice in one batch: recomputed already
        if state is None:
            if retailer_id in self._reads.invalid:
                raise InvalidInputError("sku", f"SKU record {retailer_id}: {self._reads.invalid[retailer_id]}")
            # A SKU without a record has no warehouse level: reported as such, nothing published.
            state = self._reads.states.get(retailer_id) or SkuState(retailer_id=retailer_id)
        self._recompute.add(state, redelivered=redelivered)
        self._done.add(retailer_id)

    def message_ids(self, retailer_ids: Iterable[str]) -> list[str]:
        """The messages that asked for these SKUs: the ones to deliver again when their push was not sent."""
        return [message_id for retailer_id in retailer_ids for message_id in self._messages.get(retailer_id, [])]
