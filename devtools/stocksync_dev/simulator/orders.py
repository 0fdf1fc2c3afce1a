"""Commerce orders on the simulated platform: their lines, states, cancellations and the listing index.

States only move forward (FB_PROCESSING -> CREATED -> IN_PROGRESS -> COMPLETED), every change stamps
``last_updated``, and an order whose units are all cancelled is COMPLETED, as on the real platform. Stock is not
touched here: the platform state decides what a sale or a cancellation does to the catalog.

An order is *confirmed* when it first reaches IN_PROGRESS (acknowledged through the API, or moved there by a test
standing in for Commerce Manager) or a later state; ``confirmed_at`` keeps that instant, because in the platform
deduction mode a confirmed order keeps holding its units for 30 minutes from it (``inventory.py``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from stocksync_dev.simulator.clock import unix_seconds, whole_seconds
from stocksync_dev.simulator.errors import OrderActionRefused, UnknownOrderError

CANCEL_REASON_CODES = (
    "CUSTOMER_REQUESTED",
    "OUT_OF_STOCK",
    "INVALID_ADDRESS",
    "SUSPICIOUS_ORDER",
    "CANCEL_REASON_OTHER",
)
# A seller may cancel an order stuck in FB_PROCESSING only once it is this old (docs/graph-api.md, "States").
SELLER_CANCEL_WAIT_IN_FB_PROCESSING = timedelta(hours=24)


class OrderState(StrEnum):
    FB_PROCESSING = "FB_PROCESSING"
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"

    @property
    def rank(self) -> int:
        return list(OrderState).index(self)


class CancelledBy(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


@dataclass
class OrderLine:
    item_id: str
    retailer_id: str
    product_id: str
    product_name: str | None
    quantity: int
    price_per_unit: str | None
    cancelled: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.cancelled


@dataclass(frozen=True)
class CancelledUnits:
    item_id: str
    retailer_id: str
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Cancellation:
    cancellation_id: str
    cancelled_by: CancelledBy
    units: tuple[CancelledUnits, ...]
    restock_items: bool
    reason_code: str
    reason_description: str | None
    created: datetime


@dataclass
class Order:
    order_id: str
    state: OrderState
    created: datetime
    last_updated: datetime
    lines: list[OrderLine]
    cancellations: list[Cancellation] = field(default_factory=list)
    merchant_order_reference: str | None = None
    confirmed_at: datetime | None = None

    @property
    def is_confirmed(self) -> bool:
        return self.state.rank >= OrderState.IN_PROGRESS.rank

    def units_of(self, retailer_id: str) -> int:
        """Units of ``retailer_id`` ordered and not cancelled (shipped ones included)."""
        return sum(line.remaining for line in self.lines if line.retailer_id == retailer_id)

    def retailer_id_of_item(self, item_id: str) -> str | None:
        """The retailer id of the order line ``item_id`` (the CommerceOrderItem id), None if no line has it."""
        return next((line.retailer_id for line in self.lines if line.item_id == item_id), None)

    @property
    def listing_key(self) -> tuple[int, str]:
        """Listing order: last_updated ascending, then id."""
        return unix_seconds(self.last_updated), self.order_id

    def cancellable_units(self) -> Counter[str]:
        """Units not yet shipped or cancelled, by retailer_id. A COMPLETED order has shipped everything left."""
        units: Counter[str] = Counter()
        if self.state is not OrderState.COMPLETED:
            for line in self.lines:
                units[line.retailer_id] += line.remaining
        return +units

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.order_id,
            "state": self.state.value,
            "created": self.created,
            "last_updated": self.last_updated,
            "merchant_order_reference": self.merchant_order_reference,
            "confirmed_at": self.confirmed_at,
            "items": [
                {
                    "id": line.item_id,
                    "retailer_id": line.retailer_id,
                    "quantity": line.quantity,
                    "cancelled_quantity": line.cancelled,
                }
                for line in self.lines
            ],
            "cancellations": [
                {
                    "id": cancellation.cancellation_id,
                    "by": cancellation.cancelled_by.value,
                    "items": [{"retailer_id": u.retailer_id, "quantity": u.quantity} for u in cancellation.units],
                    "restock_items": cancellation.restock_items,
                    "reason_code": cancellation.reason_code,
                    "reason_description": cancellation.reason_description,
                    "created": cancellation.created,
                }
                for cancellation in self.cancellations
            ],
        }


ORDER_FILTERS: dict[str, Callable[[Order], bool]] = {
    "HAS_CANCELLATIONS": lambda order: bool(order.cancellations),
    "NO_CANCELLATIONS": lambda order: not order.cancellations,
    # The simulator models neither refunds nor shipments.
    "HAS_REFUNDS": lambda order: False,
    "NO_REFUNDS": lambda order: True,
    "HAS_FULFILLMENTS": lambda order: False,
    "NO_SHIPMENTS": lambda order: True,
}


@dataclass(frozen=True)
class OrderQuery:
    """The commerce_orders listing filters: states OR-ed, filters AND-ed, bounds on last_updated (unix seconds)."""

    states: frozenset[OrderState]
    filters: tuple[str, ...] = ()
    updated_after: int | None = None
    updated_before: int | None = None

    def matches(self, order: Order) -> bool:
        return order.state in self.states and all(ORDER_FILTERS[name](order) for name in self.filters)


def parse_order_lines(lines: Iterable[tuple[str, int]]) -> Counter[str]:
    """Units per retailer_id; each quantity must be a positive int."""
    units: Counter[str] = Counter()
    for retailer_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise ValueError(f"quantity for {retailer_id} must be a positive int, got {quantity!r}")
        units[retailer_id] += quantity
    return units


class OrderBook:
    """All orders by id, plus an index sorted by listing key. Not thread-safe: the simulator's lock guards it."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._index: list[tuple[int, str]] = []
        # Orders by the retailer ids they hold, so a SKU's held units are summed without reading every order.
        self._by_retailer_id: dict[str, list[Order]] = {}

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def get(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrderError(f"no order {order_id}")
        return order

    def add(self, order: Order) -> None:
        if order.order_id in self._orders:
            raise ValueError(f"order {order.order_id} already exists")
        if order.is_confirmed and order.confirmed_at is None:
            order.confirmed_at = order.created
        self._orders[order.order_id] = order
        insort(self._index, order.listing_key)
        for retailer_id in dict.fromkeys(line.retailer_id for line in order.lines):
            self._by_retailer_id.setdefault(retailer_id, []).append(order)

    def with_retailer_id(self, retailer_id: str) -> list[Order]:
        """Every order (any state) with a line for ``retailer_id``."""
        return self._by_retailer_id.get(retailer_id, [])

    def move(self, order_id: str, state: OrderState, now: datetime) -> None:
        order = self.get(order_id)
        if state.rank <= order.state.rank:
            raise OrderActionRefused(f"order {order_id} is {order.state}: states only move forward, not to {state}")
        order.state = state
        self._confirm_if_due(order, now)
        self._touch(order, now)

    def acknowledge(self, order_id: str, merchant_order_reference: str, now: datetime) -> None:
        order = self.get(order_id)
        if order.state is not OrderState.CREATED:
            raise OrderActionRefused(
                f"Order {order_id} cannot be acknowledged: it is in state {order.state}, "
                "and only orders in state CREATED can be acknowledged"
            )
        order.state = OrderState.IN_PROGRESS
        order.merchant_order_reference = merchant_order_reference
        self._confirm_if_due(order, now)
        self._touch(order, now)

    def cancel(
        self,
        order_id: str,
        items: Iterable[tuple[str, int]] | None,
        *,
        cancelled_by: CancelledBy,
        restock_items: bool,
        reason_code: str,
        reason_description: str | None,
        now: datetime,
    ) -> Cancellation:
        """Cancel unshipped units (``items=None``: all that remain); all or nothing. The caller restocks."""
        order = self.get(order_id)
        if reason_code not in CANCEL_REASON_CODES:
            raise OrderActionRefused(f"reason_code must be one of {', '.join(CANCEL_REASON_CODES)}, got {reason_code}")
        cancellable = order.cancellable_units()
        requested = cancellable if items is None else parse_order_lines(items)
        if not requested:
            raise OrderActionRefused(f"order {order_id} has no units left to cancel")
        for retailer_id, units in requested.items():
            if units > cancellable[retailer_id]:
                raise OrderActionRefused(
                    f"cannot cancel {units} units of {retailer_id} in order {order_id}: "
                    f"only {cancellable[retailer_id]} remain unshipped and not cancelled"
                )
        cancelled: list[CancelledUnits] = []
        for line in order.lines:
            units = min(requested[line.retailer_id], line.remaining)
            if units:
                line.cancelled += units
                requested[line.retailer_id] -= units
                cancelled.append(CancelledUnits(line.item_id, line.retailer_id, line.product_id, units))
        cancellation = Cancellation(
            cancellation_id=f"{order_id}-cancellation-{len(order.cancellations) + 1}",
            cancelled_by=cancelled_by,
            units=tuple(cancelled),
            restock_items=cancelled_by is CancelledBy.BUYER or restock_items,
            reason_code=reason_code,
            reason_description=reason_description,
            created=whole_seconds(now),
        )
        order.cancellations.append(cancellation)
        if not order.cancellable_units():
            order.state = OrderState.COMPLETED
        self._touch(order, now)
        return cancellation

    def page(self, query: OrderQuery, after_key: tuple[int, str] | None, limit: int) -> tuple[list[Order], bool]:
        """Up to ``limit`` matching orders after the cursor key, in listing order, and whether more match."""
        start = 0
        if query.updated_after is not None:
            start = bisect_left(self._index, (query.updated_after + 1, ""))
        if after_key is not None:
            start = max(start, bisect_right(self._index, after_key))
        found: list[Order] = []
        for position in range(start, len(self._index)):
            updated, order_id = self._index[position]
            if query.updated_before is not None and updated >= query.updated_before:
                break
            order = self._orders[order_id]
            if query.matches(order):
                if len(found) == limit:
                    return found, True
                found.append(order)
        return found, False

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {order_id: order.as_dict() for order_id, order in self._orders.items()}

    @staticmethod
    def _confirm_if_due(order: Order, now: datetime) -> None:
        if order.is_confirmed and order.confirmed_at is None:
            order.confirmed_at = whole_seconds(now)

    def _touch(self, order: Order, now: datetime) -> None:
        del self._index[bisect_left(self._index, order.listing_key)]
        order.last_updated = whole_seconds(now)
        insort(self._index, order.listing_key)
