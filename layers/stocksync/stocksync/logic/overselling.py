"""Over-selling: which orders a SKU cannot fill, and which of them to cancel when the merchant allows it.

A SKU is over-sold when the units promised to buyers and not yet in the warehouse level exceed alloc(I)
(``StockFigures.shortfall``). The warehouse fills orders oldest first, so the orders at risk are the newest ones
whose units cover the shortfall. With auto-cancel on (off by default), those of them the seller may cancel
(Commerce orders in CREATED or IN_PROGRESS: Meta refuses seller cancellations in FB_PROCESSING) are cancelled newest
first with reason OUT_OF_STOCK, never more units in total than the shortfall, and without restocking: the units do
not exist.

Idempotency: the cancellation key is derived from the order, the SKU and the units of that line the ledger already
knows as cancelled. A redelivery, or a second recompute before the poller has seen the cancellation, sends the same
key, and Meta answers the first call again instead of cancelling twice. Once the ledger shows the cancellation the
shortfall has shrunk by it, and a new key can only cancel what is still missing.

This runs on the rare path: one scan of the ledger's open rows per batch or sweep page that found over-sold SKUs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from stocksync.errors import StockSyncError
from stocksync.logic.ledger import LedgerPart, contributions
from stocksync.logic.stock_formula import PendingUnits, StockFigures
from stocksync.models.orders import OrderSource, OrderState
from stocksync.models.settings import DeductionMode

_CANCELLABLE_STATES = frozenset({OrderState.CREATED, OrderState.IN_PROGRESS})
_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/stocksync/out-of-stock-cancellation")
_OLDEST = datetime.min.replace(tzinfo=UTC)
# An event must stay far below EventBridge's 256 KB entry limit, even for a SKU with thousands of open orders.
MAX_ORDERS_PER_EVENT = 50


@dataclass(frozen=True, slots=True)
class OrderAtRisk:
    """One open order's units of one SKU that count against its stock."""

    order_id: str
    state: OrderState | None
    units: int
    placed_at: datetime | None
    source: OrderSource
    cancelled_so_far: int  # units of this line the ledger already knows as cancelled

    @property
    def cancellable(self) -> bool:
        return self.source is OrderSource.META_COMMERCE and self.state in _CANCELLABLE_STATES

    def describe(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "state": self.state.value if self.state else None,
            "units": self.units,
            "placed_at": self.placed_at.isoformat() if self.placed_at else None,
            "source": self.source.value,
        }


def owed_orders(
    rows: Iterable[LedgerPart], retailer_ids: set[str], mode: DeductionMode
) -> dict[str, list[OrderAtRisk]]:
    """Per wanted SKU, the open orders whose units count in its owed units (the same rule as its counters)."""
    found: dict[str, list[OrderAtRisk]] = {}
    for row in rows:
        for retailer_id, delta in contributions(row).items():
            if retailer_id not in retailer_ids:
                continue
            pending = PendingUnits(delta.processing, delta.created, delta.acknowledged)
            units = pending.owed(mode)
            if units <= 0:
                continue
            found.setdefault(retailer_id, []).append(
                OrderAtRisk(
                    order_id=row.order_id,
                    state=row.state,
                    units=units,
                    placed_at=row.placed_at,
                    source=row.source,
                    cancelled_so_far=row.lines[retailer_id].cancelled,
                )
            )
    return found


def orders_at_risk(orders: Sequence[OrderAtRisk], shortfall: int) -> list[OrderAtRisk]:
    """The newest orders whose units cover the shortfall (newest first): the ones the warehouse cannot fill."""
    at_risk: list[OrderAtRisk] = []
    covered = 0
    for order in sorted(orders, key=lambda o: (o.placed_at or _OLDEST, o.order_id), reverse=True):
        if covered >= shortfall:
            break
        at_risk.append(order)
        covered += order.units
    return at_risk


def cancellation_plan(at_risk: Sequence[OrderAtRisk], shortfall: int) -> list[tuple[OrderAtRisk, int]]:
    """Units to cancel per order, newest first, only orders the seller may cancel, never more than the shortfall.

    An order that cannot be cancelled keeps its place: its units still count as unfilled, so an older order is
    never cancelled in its stead (it may well be fillable).
    """
    plan: list[tuple[OrderAtRisk, int]] = []
    remaining = shortfall
    for order in at_risk:
        if remaining <= 0:
            break
        units = min(order.units, remaining)
        if order.cancellable:
            plan.append((order, units))
        remaining -= units
    return plan


def idempotency_key(order_id: str, retailer_id: str, cancelled_so_far: int) -> str:
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{order_id}\n{retailer_id}\n{cancelled_so_far}"))


@dataclass(frozen=True, slots=True)
class OverSold:
    """One SKU found over-sold by a recompute."""

    retailer_id: str
    bucket: str
    figures: StockFigures
    pending: PendingUnits


class OrderCanceller(Protocol):
    def cancel_out_of_stock(self, order_id: str, retailer_id: str, units: int, *, idempotency_key: str) -> None:
        """Seller cancellation of ``units`` of one line, reason OUT_OF_STOCK, no restock. Raises StockSyncError."""
        ...


class OverSellingAlerts(Protocol):
    def over_sold(self, details: Sequence[Mapping[str, Any]]) -> None:
        """Publish one "Over-Selling Detected" event per detail."""
        ...


@dataclass
class OverSellingReport:
    skus: int = 0
    units_at_risk: int = 0
    cancelled_units: int = 0
    cancel_failures: list[tuple[str, str]] = field(default_factory=list)  # (order_id, why)


class OverSellingResponder:
    """Names the orders at risk in an event per over-sold SKU, and cancels the newest ones when allowed."""

    def __init__(
        self,
        open_rows: Callable[[], Iterable[LedgerPart]],
        alerts: OverSellingAlerts,
        canceller: OrderCanceller | None,
        *,
        mode: DeductionMode,
        now: datetime,
    ) -> None:
        self._open_rows = open_rows
        self._alerts = alerts
        self._canceller = canceller  # None: auto-cancel is off
        self._mode = mode
        self._now = now

    def respond(self, cases: Sequence[OverSold]) -> OverSellingReport:
        report = OverSellingReport()
        if not cases:
            return report
        owed = owed_orders(self._open_rows(), {case.retailer_id for case in cases}, self._mode)
        details = []
        for case in cases:
            at_risk = orders_at_risk(owed.get(case.retailer_id, []), case.figures.shortfall)
            cancelled = [] if self._canceller is None else self._cancel(self._canceller, case, at_risk, report)
            report.skus += 1
            report.units_at_risk += case.figures.shortfall
            details.append(self._detail(case, at_risk, cancelled))
        self._alerts.over_sold(details)
        return report

    @staticmethod
    def _cancel(
        canceller: OrderCanceller, case: OverSold, at_risk: Sequence[OrderAtRisk], report: OverSellingReport
    ) -> list[dict[str, Any]]:
        cancelled = []
        for order, units in cancellation_plan(at_risk, case.figures.shortfall):
            key = idempotency_key(order.order_id, case.retailer_id, order.cancelled_so_far)
            try:
                canceller.cancel_out_of_stock(order.order_id, case.retailer_id, units, idempotency_key=key)
            except StockSyncError as error:  # the next recompute retries with the same key
                report.cancel_failures.append((order.order_id, str(error)))
                continue
            report.cancelled_units += units
            cancelled.append({"order_id": order.order_id, "units": units})
        return cancelled

    def _detail(self, case: OverSold, at_risk: Sequence[OrderAtRisk], cancelled: list[dict]) -> dict[str, Any]:
        return {
            "retailer_id": case.retailer_id,
            "bucket": case.bucket,
            "deduction_mode": self._mode.value,
            "allocated": case.figures.allocated,
            "pending_processing": case.pending.processing,
            "pending_created": case.pending.created,
            "acknowledged_unsynced": case.pending.acknowledged,
            "shortfall": case.figures.shortfall,
            "orders_at_risk": [order.describe() for order in at_risk[:MAX_ORDERS_PER_EVENT]],
            "orders_at_risk_total": len(at_risk),
            "cancelled": cancelled,
            "detected_at": self._now.isoformat(),
        }
