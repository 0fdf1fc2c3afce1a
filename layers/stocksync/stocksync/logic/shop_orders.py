"""Orders from a web shop (Shopify, WooCommerce, any system that signs its webhooks) into the ledger's sightings.

Each connector parses its platform's payload into a ``ShopOrder``: the shop's own ids and SKUs, the state mapped
onto the product's lifecycle, each line's ordered, cancelled and restocked units, and the time the content was true
(the platform's ``updated_at``). This module turns that into an ``OrderObservation`` through the merchant's SKU
mapping, the same sighting the ``events`` order source produces, so every connector takes the ledger's one path
(logic/order_ingest.py), with its guarantees: a repeated delivery changes nothing, and an older delivery never undoes
a newer one (a state never moves back, cancelled and restocked units only grow).

A line the product cannot place (no SKU in the shop, or a SKU the mapping does not know) is reported, never
silently dropped, and never blocks the rest of the order: the caller dead-letters it with the order and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState

# The channels whose orders the platform itself subtracted from its catalog copy (and restocks on cancellation).
PLATFORM_CHANNELS = frozenset({"facebook", "instagram"})


@dataclass(frozen=True, slots=True)
class ShopLine:
    """One line item as the shop reports it. ``line_ref`` is the shop's own line id (for the reports)."""

    line_ref: str
    sku: str | None
    quantity: int
    cancelled: int = 0
    restocked: int = 0


@dataclass(frozen=True, slots=True)
class ShopOrder:
    """One delivery's view of an order. ``order_id`` is already namespaced by the connector (``shopify:<id>``)."""

    order_id: str
    state: OrderState
    lines: tuple[ShopLine, ...]
    updated_at: datetime
    placed_at: datetime | None = None
    channel: str = "web"


@dataclass(frozen=True, slots=True)
class UnplacedLine:
    """A line that did not reach the ledger, and why (its order and line named for the dead letter)."""

    order_id: str
    line_ref: str
    sku: str | None
    reason: str


@dataclass
class ShopSighting:
    observation: OrderObservation
    unplaced: list[UnplacedLine] = field(default_factory=list)


class SkuMapping(Protocol):
    """The catalog's ``retailer_id`` of a shop SKU, or None when the shop's SKU has no catalog item."""

    def retailer_id(self, sku: str) -> str | None: ...


class IdentityMapping:
    """The default: the shop's SKU is the catalog's ``retailer_id``."""

    def retailer_id(self, sku: str) -> str | None:
        return sku


class TableMapping:
    """An explicit mapping (from the merchant's CSV); SKUs it does not list fall back to themselves only when
    ``fallback_to_identity``, since a shop whose ids differ would otherwise count a sale against a wrong item."""

    def __init__(self, table: Mapping[str, str], *, fallback_to_identity: bool = False) -> None:
        self._table = dict(table)
        self._fallback = fallback_to_identity

    def retailer_id(self, sku: str) -> str | None:
        mapped = self._table.get(sku)
        if mapped is None and self._fallback:
            return sku
        return mapped


def sighting(order: ShopOrder, mapping: SkuMapping, *, observed_at: datetime) -> ShopSighting:
    """The ledger sighting of ``order``, lines merged by catalog item; lines that cannot be placed beside it.

    Dated when its content was true (``updated_at``, never later than ``observed_at``, the time it is processed),
    like an order event (docs/catalog.md).
    """
    on_platform = order.channel.lower() in PLATFORM_CHANNELS
    totals: dict[str, list[int]] = {}
    unplaced: list[UnplacedLine] = []
    for line in order.lines:
        if not line.sku:
            unplaced.append(UnplacedLine(order.order_id, line.line_ref, None, "line item has no SKU"))
            continue
        retailer_id = mapping.retailer_id(line.sku)
        if retailer_id is None:
            unplaced.append(UnplacedLine(order.order_id, line.line_ref, line.sku, "SKU not in the SKU mapping"))
            continue
        total = totals.setdefault(retailer_id, [0, 0, 0])
        total[0] += line.quantity
        total[1] += line.cancelled
        total[2] += line.restocked
    observation = OrderObservation(
        order_id=order.order_id,
        source=OrderSource.EVENTS,
        state=order.state,
        lines=tuple(
            OrderLine(
                retailer_id=retailer_id,
                quantity=quantity,
                cancelled=cancelled,
                # Only the platform's own orders were subtracted from (and are restocked into) its catalog copy.
                restocked=min(restocked, cancelled) if on_platform else 0,
            )
            for retailer_id, (quantity, cancelled, restocked) in totals.items()
        ),
        sold_on_platform=on_platform,
        placed_at=order.placed_at,
        observed_at=min(observed_at, order.updated_at),
    )
    return ShopSighting(observation, unplaced)
