"""What buyers can order against: the platform's two ways of netting orders out of the quantity a merchant provides.

Meta keeps two counts per product: the *provided* quantity (what the merchant uploads; every upload overwrites it)
and the *available* quantity (what buyers can purchase, which "takes under consideration not processed orders")
(https://developers.facebook.com/docs/marketing-api/catalog/guides/inventory,
https://developers.secure.facebook.com/docs/commerce-platform/catalog/quantity-to-sell). How exactly the two relate
is described in the "Product Life Cycle" section of those pages, whose text we could not retrieve, so the simulator
offers both readings, selected by its ``deduction_mode`` (the same names as the product's ``DeductionMode``):

``merchant`` (the default; the simulator's original behaviour)
    One cached count. An order takes its units off it, a restocking cancellation (a buyer's, or a seller's with
    ``restock_items``) puts them back, and an upload overwrites it, erasing the orders and restocks that came before
    the upload was applied. The products listing shows that count.

``platform`` (Meta's newer inventory documentation)
    The catalog keeps the provided value exactly as uploaded; orders and cancellations never change it. Buyers can
    order against ``available = provided - held``, where ``held`` is the units (ordered, not cancelled) of orders not
    yet confirmed (FB_PROCESSING, CREATED) plus those of orders confirmed less than 30 minutes ago: a confirmed
    (acknowledged) order leaves the count 30 minutes after confirmation, the window in which the merchant is expected
    to upload a value that accounts for it. An order asking for more than is available is refused, as in the
    merchant mode. Cancelled units leave ``held`` at once, whoever cancelled and whatever ``restock_items`` said: the
    provided value is the merchant's to set, so there is nothing else to restock.

    The products listing's ``quantity_to_sell_on_facebook`` (and ``inventory``) shows the **provided** value: it is
    the field the merchant writes, and a read-back must be comparable with what was pushed. What buyers can order is
    exposed to tests by ``CommercePlatformSimulator.available(retailer_id)``, never in a Graph answer.

Confirmation is the order's first move to IN_PROGRESS or later (``POST /{order_id}/acknowledge_order``,
``POST /{cms_id}/acknowledge_orders``, or a test moving the order), at the simulated time of that move.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from stocksync_dev.simulator.orders import Order

# A confirmed order keeps holding its units this long after confirmation, in the platform deduction mode.
CONFIRMED_ORDER_HOLD = timedelta(minutes=30)


class DeductionMode(StrEnum):
    MERCHANT = "merchant"
    PLATFORM = "platform"


def holds_units(order: Order, now: datetime) -> bool:
    """Whether the platform deduction mode still subtracts this order's units at ``now``."""
    if not order.is_confirmed:
        return True
    return order.confirmed_at is not None and now < order.confirmed_at + CONFIRMED_ORDER_HOLD


def held_units(orders: Iterable[Order], retailer_id: str, now: datetime) -> int:
    """Units of ``retailer_id`` in the orders that still hold them at ``now``."""
    return sum(order.units_of(retailer_id) for order in orders if holds_units(order, now))
