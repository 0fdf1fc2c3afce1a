"""WooCommerce order webhooks, and the generic signed-webhook shape, parsed into the shared ``ShopOrder``.

Both arrive through the signed endpoint (order_webhook) and the webhook queue; webhook_orders parses them here and
applies them through logic/shop_orders.py, the one path every web-shop connector takes into the ledger.

WooCommerce sends the REST API (v3) order resource on ``order.created`` / ``order.updated`` (``id``, ``status``,
``date_created_gmt``, ``date_modified_gmt``, ``line_items[]`` with ``id``, ``sku``, ``quantity``; ``refunds[]``
with ``id``, ``reason``, ``total`` only), and ``{"id": N}`` on ``order.deleted``. Its ``*_gmt`` times carry no
offset: they are UTC by name, and read so. Statuses map onto the product's state model as in ``WOOCOMMERCE_STATES``
(the table and the reasons are in docs/connectors.md, "WooCommerce and signed webhooks").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints

from stocksync.errors import InvalidInputError
from stocksync.integrations.shopify import https_order
from stocksync.logic.shop_orders import ShopLine, ShopOrder
from stocksync.models.base import Model
from stocksync.models.instants import SenderInstant
from stocksync.models.orders import OrderState
from stocksync.models.webhooks import WebhookDelivery

MAX_LINES = 1000
MAX_UNITS = 1_000_000
_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters
ShopId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=_ID_PATTERN)]
Units = Annotated[int, Field(strict=True, ge=1, le=MAX_UNITS)]
CancelledUnits = Annotated[int, Field(strict=True, ge=0, le=MAX_UNITS)]
WooId = Annotated[int, Field(strict=True, ge=1, le=2**53)]


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """What a shop status means for the ledger: the state, and whether every unit is cancelled."""

    state: OrderState
    all_cancelled: bool = False


# docs/connectors.md, "WooCommerce and signed webhooks", explains each row.
WOOCOMMERCE_STATES: dict[str, StatusMapping] = {
    "pending": StatusMapping(OrderState.FB_PROCESSING),  # unpaid: held in P until paid or cancelled
    "on-hold": StatusMapping(OrderState.CREATED),  # placed, payment being confirmed; WooCommerce took the stock
    "processing": StatusMapping(OrderState.CREATED),  # paid, waiting for the warehouse
    "completed": StatusMapping(OrderState.COMPLETED),  # fulfilled
    "cancelled": StatusMapping(OrderState.COMPLETED, all_cancelled=True),
    "refunded": StatusMapping(OrderState.COMPLETED, all_cancelled=True),  # fully refunded: nothing will ship
    "failed": StatusMapping(OrderState.COMPLETED, all_cancelled=True),  # payment failed or declined
}
# Statuses that hold no stock and are not orders yet: acknowledged, nothing applied.
WOOCOMMERCE_IGNORED = frozenset({"checkout-draft", "draft", "auto-draft"})

# The generic shape's states: the "Order Changed" event's vocabulary (README), plus the Commerce names themselves.
GENERIC_STATES: dict[str, StatusMapping] = {
    "pending": StatusMapping(OrderState.FB_PROCESSING),
    "placed": StatusMapping(OrderState.CREATED),
    "accepted": StatusMapping(OrderState.IN_PROGRESS),
    "completed": StatusMapping(OrderState.COMPLETED),
    "cancelled": StatusMapping(OrderState.COMPLETED, all_cancelled=True),
    **{state.value.lower(): StatusMapping(state) for state in OrderState},
}


def _utc_if_naive(value: Any) -> Any:
    """WooCommerce's ``*_gmt`` fields are UTC without an offset: give them one (an aware value is kept)."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value  # pydantic names the field and the problem
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return value


GmtTime = Annotated[SenderInstant, BeforeValidator(_utc_if_naive)]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# ------------------------------------------------------------------ WooCommerce
class WooLineItem(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: WooId
    sku: Annotated[ShopId | None, BeforeValidator(_blank_to_none)] = None
    quantity: Units


class WooOrder(Model):
    """The fields of WooCommerce's order resource the product reads (every other field is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: WooId
    status: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID_PATTERN)]
    date_created_gmt: GmtTime | None = None
    date_modified_gmt: GmtTime
    line_items: Annotated[list[WooLineItem], Field(max_length=MAX_LINES)] = []


class WooDeleted(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: WooId


def woocommerce_order(payload: Any) -> ShopOrder | None:
    """The ``ShopOrder`` of a WooCommerce order payload; None for a status that is not an order yet (a draft).

    Raises pydantic ValidationError naming the field, or InvalidInputError for a status the product cannot map.
    """
    order = WooOrder.model_validate(payload)
    status = order.status.lower()
    if status in WOOCOMMERCE_IGNORED:
        return None
    mapping = WOOCOMMERCE_STATES.get(status)
    if mapping is None:
        raise InvalidInputError(
            "status",
            f"order woocommerce:{order.id}: status {order.status!r} is not one of {sorted(WOOCOMMERCE_STATES)}",
        )
    return ShopOrder(
        order_id=f"woocommerce:{order.id}",
        state=mapping.state,
        lines=tuple(
            ShopLine(
                line_ref=str(item.id),
                sku=item.sku,
                quantity=item.quantity,
                cancelled=item.quantity if mapping.all_cancelled else 0,
            )
            for item in order.line_items
        ),
        updated_at=order.date_modified_gmt,
        placed_at=order.date_created_gmt,
        channel="woocommerce",
    )


# ------------------------------------------------------------------ generic
class GenericLine(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line_ref: ShopId
    sku: Annotated[ShopId | None, BeforeValidator(_blank_to_none)] = None
    quantity: Units
    cancelled: CancelledUnits = 0
    restocked: CancelledUnits = 0


class GenericOrder(Model):
    """The generic signed-webhook body (docs/connectors.md): the "Order Changed" detail, with SKUs and line ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: ShopId
    state: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=_ID_PATTERN)]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID_PATTERN)] = "web"
    updated_at: SenderInstant
    placed_at: SenderInstant | None = None
    lines: Annotated[list[GenericLine], Field(max_length=MAX_LINES)] = []


def generic_order(payload: Any) -> ShopOrder:
    order = GenericOrder.model_validate(payload)
    mapping = GENERIC_STATES.get(order.state.lower())
    if mapping is None:
        raise InvalidInputError(
            "state", f"order generic:{order.order_id}: state {order.state!r} is not one of {sorted(GENERIC_STATES)}"
        )
    lines = []
    for index, line in enumerate(order.lines):
        cancelled = line.quantity if mapping.all_cancelled else line.cancelled
        if cancelled > line.quantity or line.restocked > cancelled:
            raise InvalidInputError(
                f"lines.{index}",
                f"order generic:{order.order_id} line {line.line_ref}: cancelled {cancelled} and restocked "
                f"{line.restocked} must satisfy restocked <= cancelled <= quantity ({line.quantity})",
            )
        lines.append(ShopLine(line.line_ref, line.sku, line.quantity, cancelled, line.restocked))
    return ShopOrder(
        order_id=f"generic:{order.order_id}",
        state=mapping.state,
        lines=tuple(lines),
        updated_at=order.updated_at,
        placed_at=order.placed_at,
        channel=order.channel,
    )


# ------------------------------------------------------------------ a queued delivery
@dataclass(frozen=True, slots=True)
class ParsedDelivery:
    """A delivery's order, or None with the reason it carries nothing to apply (a draft, a deletion)."""

    order: ShopOrder | None
    skipped: str | None = None


def parse_delivery(delivery: WebhookDelivery) -> ParsedDelivery:
    """The order a verified delivery carries. Raises InvalidInputError / ValidationError for bad input."""
    try:
        payload = json.loads(delivery.text())
    except json.JSONDecodeError as error:
        raise InvalidInputError("body", f"not valid JSON ({error.msg} at position {error.pos})") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError("body_zlib_base64", str(error)) from None
    topic = (delivery.topic or "").lower()
    if delivery.platform == "woocommerce":
        if topic == "order.deleted":
            deleted = WooDeleted.model_validate(payload)
            return ParsedDelivery(None, f"order woocommerce:{deleted.id} deleted (its last status stays applied)")
        if topic and not topic.startswith("order."):
            return ParsedDelivery(None, f"topic {delivery.topic} is not an order topic")
        order = woocommerce_order(payload)
        return ParsedDelivery(order, None if order is not None else "draft order: holds no stock")
    if delivery.platform == "generic":
        return ParsedDelivery(generic_order(payload))
    if delivery.platform == "shopify":
        order = https_order(topic, payload)
        return ParsedDelivery(order, None if order is not None else f"topic {delivery.topic} carries no whole order")
    raise InvalidInputError("platform", f"{delivery.platform} deliveries are verified but not parsed here")
