"""Over-selling: orders at risk, the cancellation plan (newest first, never beyond the shortfall), idempotency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from stocksync.errors import StockSyncError
from stocksync.logic.ledger import LedgerPart, LineRecord
from stocksync.logic.overselling import (
    OrderAtRisk,
    OverSellingResponder,
    OverSold,
    cancellation_plan,
    idempotency_key,
    orders_at_risk,
    owed_orders,
)
from stocksync.logic.stock_formula import Allocation, PendingUnits, stock_figures
from stocksync.models.orders import OrderSource, OrderState
from stocksync.models.settings import DeductionMode

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MERCHANT, PLATFORM = DeductionMode.MERCHANT, DeductionMode.PLATFORM


def row(
    order_id: str,
    lines: Mapping[str, int],
    *,
    state: OrderState = OrderState.CREATED,
    minute: int = 0,
    source: OrderSource = OrderSource.META_COMMERCE,
    cancelled: int = 0,
    synced: bool = False,
) -> LedgerPart:
    return LedgerPart(
        order_id=order_id,
        part=0,
        parts=1,
        source=source,
        state=state,
        synced=synced,
        sold_on_platform=source is OrderSource.META_COMMERCE,
        lines={sku: LineRecord(ordered=units + cancelled, cancelled=cancelled) for sku, units in lines.items()},
        placed_at=T0 + timedelta(minutes=minute),
        revision=1,
    )


def test_owed_orders_follow_the_counters_rules_per_mode() -> None:
    rows = [
        row("o1", {"A": 2}, state=OrderState.FB_PROCESSING),
        row("o2", {"A": 1, "B": 5}),
        row("o3", {"A": 4}, state=OrderState.IN_PROGRESS),  # K: owed only in the platform mode
        row("o4", {"A": 9}, synced=True),  # in the warehouse level already
        row("o5", {"A": 3}, state=OrderState.COMPLETED),
        row("o6", {"A": 0}, cancelled=2),  # fully cancelled
    ]
    merchant = owed_orders(rows, {"A"}, MERCHANT)
    assert [(order.order_id, order.units) for order in merchant["A"]] == [("o1", 2), ("o2", 1)]
    assert "B" not in merchant
    platform = owed_orders(rows, {"A"}, PLATFORM)
    assert [(order.order_id, order.units) for order in platform["A"]] == [("o1", 2), ("o2", 1), ("o3", 4)]


def at_risk_order(order_id: str, units: int, minute: int, state: OrderState = OrderState.CREATED) -> OrderAtRisk:
    return OrderAtRisk(
        order_id=order_id,
        state=state,
        units=units,
        placed_at=T0 + timedelta(minutes=minute),
        source=OrderSource.META_COMMERCE,
        cancelled_so_far=0,
    )


def test_orders_at_risk_are_the_newest_ones_covering_the_shortfall() -> None:
    orders = [at_risk_order("old", 5, 0), at_risk_order("mid", 2, 5), at_risk_order("new", 1, 9)]
    assert [o.order_id for o in orders_at_risk(orders, 1)] == ["new"]
    assert [o.order_id for o in orders_at_risk(orders, 2)] == ["new", "mid"]
    assert [o.order_id for o in orders_at_risk(orders, 3)] == ["new", "mid"]
    assert [o.order_id for o in orders_at_risk(orders, 4)] == ["new", "mid", "old"]
    assert orders_at_risk(orders, 0) == []


def test_the_plan_cancels_newest_first_and_never_more_than_the_shortfall() -> None:
    orders = [at_risk_order("new", 3, 9), at_risk_order("mid", 4, 5), at_risk_order("old", 5, 0)]
    plan = cancellation_plan(orders_at_risk(orders, 5), 5)
    assert [(order.order_id, units) for order, units in plan] == [("new", 3), ("mid", 2)]  # mid: partly
    assert sum(units for _, units in plan) == 5


def test_an_order_that_cannot_be_cancelled_is_not_replaced_by_an_older_one() -> None:
    orders = [
        at_risk_order("new", 2, 9, state=OrderState.FB_PROCESSING),  # Meta refuses seller cancellations here
        at_risk_order("mid", 4, 5),
        at_risk_order("old", 5, 0),
    ]
    plan = cancellation_plan(orders_at_risk(orders, 3), 3)
    assert [(order.order_id, units) for order, units in plan] == [("mid", 1)]


def test_orders_from_the_merchants_own_channels_are_never_cancelled_on_meta() -> None:
    order = OrderAtRisk("web-1", OrderState.CREATED, 3, T0, OrderSource.EVENTS, 0)
    assert cancellation_plan([order], 3) == []


def test_the_idempotency_key_changes_only_once_the_ledger_saw_the_cancellation() -> None:
    first = idempotency_key("o1", "A", 0)
    assert first == idempotency_key("o1", "A", 0)
    assert first != idempotency_key("o1", "A", 2) and first != idempotency_key("o1", "B", 0)


class Alerts:
    def __init__(self) -> None:
        self.details: list[Mapping[str, Any]] = []

    def over_sold(self, details: Sequence[Mapping[str, Any]]) -> None:
        self.details.extend(details)


class Canceller:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str, int, str]] = []
        self.fail = fail or set()

    def cancel_out_of_stock(self, order_id: str, retailer_id: str, units: int, *, idempotency_key: str) -> None:
        self.calls.append((order_id, retailer_id, units, idempotency_key))
        if order_id in self.fail:
            raise StockSyncError(f"order {order_id}: throttled")


def over_sold(retailer_id: str, level: int, pending: PendingUnits, mode: DeductionMode = MERCHANT) -> OverSold:
    figures = stock_figures(level, pending, Allocation(), threshold=0, mode=mode)
    assert figures.over_sold
    return OverSold(retailer_id, "fast", figures, pending)


ROWS = [
    row("o1", {"A": 3}, minute=0),
    row("o2", {"A": 2, "B": 1}, minute=1),
    row("o3", {"A": 2}, minute=2, state=OrderState.FB_PROCESSING),
    row("o4", {"A": 1}, minute=3),
]


def test_an_event_names_the_sku_and_its_orders_at_risk_without_cancelling_by_default() -> None:
    alerts, scans = Alerts(), []

    def open_rows() -> list[LedgerPart]:
        scans.append(1)
        return ROWS

    responder = OverSellingResponder(open_rows, alerts, None, mode=MERCHANT, now=T0)
    report = responder.respond([over_sold("A", 5, PendingUnits(2, 6, 0)), over_sold("B", 0, PendingUnits(0, 1, 0))])
    assert len(scans) == 1  # one scan of the open rows for every over-sold SKU of the run
    assert (report.skus, report.units_at_risk, report.cancelled_units) == (2, 4, 0)
    detail = alerts.details[0]
    assert detail["retailer_id"] == "A" and detail["shortfall"] == 3 and detail["cancelled"] == []
    assert [order["order_id"] for order in detail["orders_at_risk"]] == ["o4", "o3"]
    assert detail["orders_at_risk_total"] == 2
    assert alerts.details[1]["retailer_id"] == "B"
    assert [order["order_id"] for order in alerts.details[1]["orders_at_risk"]] == ["o2"]


def test_auto_cancel_cancels_the_newest_cancellable_orders_up_to_the_shortfall() -> None:
    alerts, canceller = Alerts(), Canceller()
    responder = OverSellingResponder(lambda: ROWS, alerts, canceller, mode=MERCHANT, now=T0)
    report = responder.respond([over_sold("A", 4, PendingUnits(2, 6, 0))])  # shortfall 4: o4 (1), o3 (2), o2 (1)
    assert [(order, sku, units) for order, sku, units, _ in canceller.calls] == [("o4", "A", 1), ("o2", "A", 1)]
    assert report.cancelled_units == 2  # o3 is in FB_PROCESSING: not cancellable, and not replaced
    assert alerts.details[0]["cancelled"] == [{"order_id": "o4", "units": 1}, {"order_id": "o2", "units": 1}]
    # A redelivery sends the very same keys, so Meta answers the first call again instead of cancelling twice.
    again = Canceller()
    OverSellingResponder(lambda: ROWS, Alerts(), again, mode=MERCHANT, now=T0).respond(
        [over_sold("A", 4, PendingUnits(2, 6, 0))]
    )
    assert again.calls == canceller.calls


def test_a_failed_cancellation_is_reported_and_the_others_go_on() -> None:
    canceller = Canceller(fail={"o4"})
    responder = OverSellingResponder(lambda: ROWS, Alerts(), canceller, mode=MERCHANT, now=T0)
    report = responder.respond([over_sold("A", 4, PendingUnits(2, 6, 0))])
    assert report.cancel_failures == [("o4", "order o4: throttled")]
    assert report.cancelled_units == 1 and len(canceller.calls) == 2
