"""Orders as the product sees them, whichever source they came from (docs/design.md, "Where orders come from").

An ``OrderObservation`` is one sighting of an order: by the Commerce API poller, by an order event from the
merchant's own systems, or by the warehouse saying it has accounted for the order. Sightings repeat, overlap and
arrive out of order; the ledger (``stocksync.logic.ledger``) merges them so that only progress counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from stocksync.models.base import Model

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    """An id carrying a control character (a NUL, a newline, DEL...) is a corrupt input, not a SKU: it would become a
    record no catalog item matches, pushed and refused forever. Refused, naming the character and where it is."""
    found = _CONTROL_CHARACTER.search(value)
    if found:
        raise ValueError(f"contains a control character (U+{ord(found.group()):04X} at position {found.start()})")
    return value


# The most units one input may name: a warehouse level, an order line's quantity, a fixed allocation. A DynamoDB number
# holds 38 digits, and a value past that was lost (the write failed, and with it the rest of a levels event, to the
# queue's own dead-letter queue without a reason); the counters also sum units over many orders. 10^9 keeps every
# input and every sum exact, and no merchant holds a billion units of one SKU: a larger value is a corrupt input,
# refused with its field named like any other (docs/design.md, "Bounds at the edges").
MAX_UNITS = 1_000_000_000

# Meta's bound for a catalog item's ``id`` (the retailer id): at most 100 characters (Meta's catalog "Supported fields"
# reference, https://developers.facebook.com/docs/marketing-api/catalog/reference/; docs/graph-api.md). A longer id
# names no item the catalog can hold, so every push of it would be refused: it is refused where it enters instead.
MAX_RETAILER_ID_CHARACTERS = 100
RetailerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_RETAILER_ID_CHARACTERS, strip_whitespace=True),
    AfterValidator(_no_control_characters),
]
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class OrderState(StrEnum):
    """Every state the Commerce API reports (docs/graph-api.md, "States"), in lifecycle order."""

    FB_PROCESSING = "FB_PROCESSING"
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"

    @property
    def rank(self) -> int:
        """Position in the lifecycle: a sighting of a lower rank than the ledger's is stale."""
        return _RANK[self]


_RANK = {state: index for index, state in enumerate(OrderState)}


# The ledger key of an order the ``events`` source reports for any channel but Facebook/Instagram: its id in the
# ``events:`` namespace, so a web-shop order that reuses a Meta order's id is a second order, not a sighting of the
# Meta one (docs/connectors.md, "Order ids"). Meta-polled orders, and events of orders placed on Facebook/Instagram
# (the same orders Meta reports), keep the bare id; the connectors have their own prefixes (``shopify:``...).
EVENTS_ORDER_PREFIX = "events:"


class OrderSource(StrEnum):
    """Where the ledger learned of an order first."""

    META_COMMERCE = "meta_commerce"
    EVENTS = "events"
    WAREHOUSE = "warehouse"  # only an "order synced" notice so far; the order itself not seen yet


class OrderLine(Model):
    """One SKU of an order. ``cancelled`` and ``restocked`` only ever grow, so the largest sighting wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_UNITS)]
    cancelled: Annotated[int, Field(strict=True, ge=0)] = 0
    # Units the platform put back into its own catalog copy (buyer cancellations; seller ones with restock_items).
    restocked: Annotated[int, Field(strict=True, ge=0)] = 0

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.cancelled > self.quantity:
            raise ValueError(f"cancelled ({self.cancelled}) exceeds quantity ({self.quantity})")
        if self.restocked > self.cancelled:
            raise ValueError(f"restocked ({self.restocked}) exceeds cancelled ({self.cancelled})")
        return self


class OrderObservation(Model):
    """One sighting of an order. ``state`` is None for a sighting that only says the warehouse synced it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: OrderId
    source: OrderSource
    state: OrderState | None = None
    lines: tuple[OrderLine, ...] = ()
    # True once the warehouse has accounted for the order: from then on its units are in I, not in P or C.
    synced: bool = False
    # True for orders placed on Facebook/Instagram: the platform decremented its own catalog copy for them.
    sold_on_platform: bool = False
    placed_at: AwareDatetime | None = None
    observed_at: AwareDatetime

    @model_validator(mode="after")
    def _distinct_lines(self) -> Self:
        seen: set[str] = set()
        for line in self.lines:
            if line.retailer_id in seen:
                raise ValueError(f"retailer_id {line.retailer_id!r} appears twice; merge the lines first")
            seen.add(line.retailer_id)
        return self

    @property
    def reference_time(self) -> datetime:
        """When the units were sold, for velocity: the order's own time if the source gave one."""
        return self.placed_at or self.observed_at
