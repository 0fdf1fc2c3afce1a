"""Which received push messages still need sending, and how they are packed into items_batch calls.

Rules (docs/design.md, invariants 2, 8 and 9):

- Per SKU only the newest version of a batch of messages matters: older copies in the same batch are superseded.
- A version below the SKU's ``published_version`` is superseded (recompute already enqueued a newer value), and one
  at or below ``confirmed_version`` is already in the catalog: neither is sent, so a late retry can never overwrite
  a newer value, and a second push of the same versions makes no call.
- SKUs of buckets served by the update feed (hybrid catalog) are never sent by the API: one path per volatile field.
- What is left is packed greedily into as few calls as the per-call size allows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stocksync.models.push import QueuedPush
from stocksync.models.sku import SkuState


@dataclass(frozen=True)
class ReceivedPush:
    """A valid push message and the id of the queue record that brought it (to report it failed, if it does)."""

    record_id: str
    message: QueuedPush

    @property
    def retailer_id(self) -> str:
        return self.message.retailer_id


def parse_push_record(record_id: str, body: str) -> ReceivedPush:
    """A queue record as a push message; raises pydantic's ValidationError naming the field when it is not one
    (then the record is dead-lettered with that reason, never retried)."""
    return ReceivedPush(record_id, QueuedPush.model_validate_json(body))


def coalesce(received: Iterable[ReceivedPush]) -> tuple[list[ReceivedPush], list[ReceivedPush]]:
    """(the newest message per SKU, in first-seen SKU order; the older or repeated copies it supersedes)."""
    newest: dict[str, ReceivedPush] = {}
    superseded: list[ReceivedPush] = []
    for push in received:
        current = newest.get(push.retailer_id)
        if current is None:
            newest[push.retailer_id] = push
        elif push.message.version > current.message.version:
            superseded.append(current)
            newest[push.retailer_id] = push
        else:
            superseded.append(push)
    return list(newest.values()), superseded


@dataclass
class PushSelection:
    """The newest messages split by what happens to them."""

    to_send: list[ReceivedPush] = field(default_factory=list)
    superseded: list[ReceivedPush] = field(default_factory=list)  # a newer version was already enqueued
    already_confirmed: list[ReceivedPush] = field(default_factory=list)  # the catalog has this version or newer
    feed_served: list[ReceivedPush] = field(default_factory=list)  # its bucket is published by the update feed
    unknown_sku: list[ReceivedPush] = field(default_factory=list)  # no SKU record: not a SKU stocksync manages


def select(
    newest: Iterable[ReceivedPush], states: Mapping[str, SkuState], feed_buckets: Collection[str] = ()
) -> PushSelection:
    """Split the newest message per SKU by the SKU's stored versions (see the module docstring)."""
    selection = PushSelection()
    for push in newest:
        state = states.get(push.retailer_id)
        version = push.message.version
        if state is None:
            selection.unknown_sku.append(push)
        elif version <= state.confirmed_version:
            selection.already_confirmed.append(push)
        elif version < state.published_version:
            selection.superseded.append(push)
        elif state.bucket in feed_buckets:
            selection.feed_served.append(push)
        else:
            selection.to_send.append(push)
    return selection


def pack(rows: Sequence[ReceivedPush], per_call: int) -> list[list[ReceivedPush]]:
    """``rows`` in calls of at most ``per_call``: ceil(len / per_call) calls, the minimum at that size."""
    if per_call < 1:
        raise ValueError(f"per_call must be at least 1, got {per_call}")
    return [list(rows[start : start + per_call]) for start in range(0, len(rows), per_call)]


def catalog_fields(message: QueuedPush, catalog_field: str) -> dict[str, str | int]:
    """The item fields one push sets: the configured quantity field and the visibility, nothing else."""
    return {catalog_field: message.value, "visibility": message.visibility.value}
