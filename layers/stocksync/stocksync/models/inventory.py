"""Warehouse input: stock levels (I) and "order synced" notices, as the warehouse publishes them.

Levels of one SKU are totally ordered, and the SKU table keeps the greatest one it has received:

1. ``as_of``, in whole milliseconds (what the table stores): a later count wins over an earlier one;
2. then ``sequence``, which the sender may give (absent counts as 0): a warehouse that publishes two counts in the
   same millisecond, or stamps whole seconds, says which one is later;
3. then arrival: with equal ``as_of`` and equal (or absent) ``sequence`` the level that arrives later wins.

Why arrival wins a tie instead of the first level received: the steps of one sender happen in order, so the later
of two equally stamped levels is the newer count, and keeping the first would drop it for good. Why this also makes
retries safe: a redelivered level equal to the stored one is written again, so the retry re-enqueues its SKU for
recompute even when the first try crashed between the write and the enqueue. The price: a redelivered *older* level
with the same ``as_of`` and no ``sequence`` re-applies over a newer one of the same millisecond (until the next
level). Senders to whom that matters give a ``sequence``; a level with a smaller one never overwrites.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from stocksync.models.base import Model
from stocksync.models.instants import SenderInstant
from stocksync.models.orders import MAX_UNITS, OrderId, RetailerId

# A sequence is stored as a DynamoDB number (38 significant digits) and compared there; bounding it to a signed 64-bit
# integer keeps it exact in every sender's integer type too (a database sequence, a Kafka offset, epoch nanoseconds).
MAX_SEQUENCE = 2**63 - 1


class WarehouseLevel(Model):
    """Units on hand for one SKU at ``as_of``. The greatest (``as_of``, ``sequence``) wins, a tie goes to the later
    arrival (the module docstring says why); an older level never overwrites a newer one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    level: Annotated[int, Field(strict=True, ge=0, le=MAX_UNITS)]
    as_of: SenderInstant
    sequence: Annotated[int, Field(strict=True, ge=0, le=MAX_SEQUENCE)] | None = None

    @property
    def order_key(self) -> tuple[int, int]:
        """(``as_of`` in whole milliseconds, ``sequence`` or 0): levels compare by this; the greater one wins, and an
        equal one wins when it arrives later."""
        return int(self.as_of.timestamp() * 1000), self.sequence or 0


class WarehouseLevelsDetail(Model):
    """EventBridge detail of a "Warehouse Stock Levels" event: many SKUs per event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: Annotated[list[WarehouseLevel], Field(min_length=1, max_length=5000)]


class OrdersSyncedDetail(Model):
    """EventBridge detail of a "Warehouse Orders Synced" event: orders the warehouse has now accounted for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_ids: Annotated[list[OrderId], Field(min_length=1, max_length=1000)]
    as_of: SenderInstant
