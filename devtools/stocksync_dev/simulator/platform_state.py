"""Everything the simulated platform knows, behind one lock, and the operations that span catalog and orders.

Every read or write goes through ``transaction()``, which first processes the batches whose time has come: the
simulator has no background worker, so asynchronous processing happens lazily, at the first look after it is due.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from stocksync_dev.simulator.batches import BatchQueue
from stocksync_dev.simulator.catalog import Catalog, Product, invalid_field_messages
from stocksync_dev.simulator.clock import SimulatedClock, whole_seconds
from stocksync_dev.simulator.errors import OrderRefused
from stocksync_dev.simulator.faults import FaultKnobs
from stocksync_dev.simulator.inventory import DeductionMode, held_units
from stocksync_dev.simulator.order_api_removal import OrderApiRemoval
from stocksync_dev.simulator.orders import (
    Cancellation,
    CancelledBy,
    Order,
    OrderBook,
    OrderLine,
    OrderState,
    parse_order_lines,
)
from stocksync_dev.simulator.rate_limits import CallBudget


class PlatformState:
    def __init__(self, start: datetime, batch_calls_per_hour: int, *, catalog_reads_per_hour: int = 20_000) -> None:
        self.lock = threading.Lock()
        self.clock = SimulatedClock(start)
        self.catalog = Catalog()
        self.orders = OrderBook()
        self.batches = BatchQueue()
        self.batch_budget = CallBudget(batch_calls_per_hour, "batch_calls_per_hour")
        self.read_budget = CallBudget(catalog_reads_per_hour, "catalog_reads_per_hour")
        self.faults = FaultKnobs()
        self.deduction_mode = DeductionMode.MERCHANT
        self.order_api = OrderApiRemoval()  # when the order endpoints stop answering (the v26.0 changelog's dates)

    @contextmanager
    def transaction(self) -> Iterator[datetime]:
        """Hold the lock, bring batch processing up to the simulated now, and yield that now."""
        with self.lock:
            now = self.clock.now()
            self.batches.settle(now, self.catalog)
            yield now

    def add_product(self, retailer_id: str, fields: dict[str, object]) -> None:
        messages = invalid_field_messages(fields)
        if messages:
            raise ValueError("; ".join(messages))
        self.catalog.create(retailer_id, fields)

    def available(self, product: Product, now: datetime) -> int:
        """What buyers can order of ``product`` now, under the deduction mode (``inventory.py``)."""
        if self.deduction_mode is DeductionMode.MERCHANT:
            return product.quantity
        held = held_units(self.orders.with_retailer_id(product.retailer_id), product.retailer_id, now)
        return max(0, product.quantity - held)

    def place_order(self, order_id: str, lines: Iterable[tuple[str, int]], state: OrderState, now: datetime) -> None:
        """A buyer's order: all lines are sold from what is available, or none is (OrderRefused).

        In the merchant deduction mode a sale takes its units off the cached quantity; in the platform mode the
        provided quantity stays as uploaded and the order itself holds the units.
        """
        if order_id in self.orders:
            raise ValueError(f"order {order_id} already exists")
        lines = list(lines)
        products = {}
        for retailer_id, units in parse_order_lines(lines).items():
            product = self.catalog.get(retailer_id)
            if product is None:
                raise OrderRefused(retailer_id, units, 0, "no such product")
            available = self.available(product, now)
            if product.visibility != "published":
                raise OrderRefused(retailer_id, units, available, f"product is {product.visibility}")
            if units > available:
                raise OrderRefused(retailer_id, units, available, "too few units left")
            products[retailer_id] = product
        order_lines = []
        for number, (retailer_id, units) in enumerate(lines, start=1):
            product = products[retailer_id]
            if self.deduction_mode is DeductionMode.MERCHANT:
                self.catalog.sell(retailer_id, units)
            order_lines.append(
                OrderLine(
                    item_id=f"{order_id}-{number}",
                    retailer_id=retailer_id,
                    product_id=product.product_id,
                    product_name=product.name,
                    quantity=units,
                    price_per_unit=product.price,
                )
            )
        stamp = whole_seconds(now)
        self.orders.add(Order(order_id, state, created=stamp, last_updated=stamp, lines=order_lines))

    def cancel_order(
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
        """Cancel units; buyer cancellations always restock, seller ones only with ``restock_items``.

        Restocking adds to the cached quantity in the merchant deduction mode only: in the platform mode the
        cancelled units simply stop being held by the order.
        """
        cancellation = self.orders.cancel(
            order_id,
            items,
            cancelled_by=cancelled_by,
            restock_items=restock_items,
            reason_code=reason_code,
            reason_description=reason_description,
            now=now,
        )
        if cancellation.restock_items and self.deduction_mode is DeductionMode.MERCHANT:
            for units in cancellation.units:
                self.catalog.restock(units.retailer_id, units.quantity)
        return cancellation
