"""Shopify webhooks, as Shopify delivers them to Amazon EventBridge, into the product's ``ShopOrder``.

Shopify puts each webhook on a partner event bus (``aws.partner/shopify.com/<app id>/<name>``) as one event with
detail-type ``shopifyWebhook``: ``detail.metadata`` holds the webhook's headers (``X-Shopify-Topic``,
``X-Shopify-Webhook-Id``, ``X-Shopify-Triggered-At``, ``X-Shopify-Shop-Domain``...), ``detail.payload`` the REST
webhook payload. The models below check that edge with bounds (ids of digits, no control characters, bounded
quantities, timezone-aware times) and keep only the fields the stock needs; the mapping onto the product's state
model is docs/connectors.md, "Shopify", and ``order_state`` below.

Only the order topics (``orders/create``, ``orders/updated``, ``orders/cancelled``) carry a whole order, so only they
become a ``ShopOrder``. ``orders/edited`` (an ``order_edit``: line item ids and deltas, no SKUs) and
``refunds/create`` (a refund: only the refunded lines) are checked and noted; their effect on the order reaches the
ledger through the ``orders/updated`` Shopify sends for every edit and refund: the whole order as edited, with the
line items and units an edit added (the ledger grows the order, logic/ledger.py) and what edits and refunds removed
(``line_items[].current_quantity``). A refund applied on its own lists only the refunded lines, without the units
ordered, and could be an order's first sighting (deliveries come in any order): it would add nothing that
``orders/updated`` lacks, and could record the order as only its refunded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from stocksync.errors import InvalidInputError
from stocksync.logic.shop_orders import ShopLine, ShopOrder
from stocksync.models.base import Model
from stocksync.models.instants import SenderInstant
from stocksync.models.orders import OrderState

M = TypeVar("M", bound=Model)

DETAIL_TYPE = "shopifyWebhook"
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled"})
NOTED_TOPICS = frozenset({"orders/edited", "refunds/create"})
TOPICS = ORDER_TOPICS | NOTED_TOPICS
ORDER_ID_PREFIX = "shopify:"
# A Shopify order holds a few hundred lines at most; the bound only keeps a malformed payload from costing memory.
MAX_LINE_ITEMS = 5_000
MAX_UNITS = 1_000_000

# Financial statuses while the payment is not settled: the order is still being processed (P, like FB_PROCESSING).
UNSETTLED_PAYMENT = frozenset({"pending", "authorized"})


def _id_text(value: Any) -> Any:
    """Shopify ids are JSON numbers (REST) or strings of digits; both become the string of digits."""
    if isinstance(value, bool):
        return value  # refused by the pattern below (a bool is an int in Python)
    if isinstance(value, int):
        return str(value)
    return value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


ShopifyId = Annotated[str, BeforeValidator(_id_text), StringConstraints(pattern=r"^[0-9]{1,20}$")]
# Printable text: no control characters (they would reach logs, dead letters and the ledger's keys).
Text = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
SkuText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Sku = Annotated[SkuText | None, BeforeValidator(_blank_is_none)]
Status = Annotated[str, StringConstraints(max_length=40, pattern=r"^[a-z_]*$")]
Units = Annotated[int, Field(strict=True, ge=0, le=MAX_UNITS)]


class ShopifyMetadata(Model):
    """The webhook's headers, as Shopify copies them into ``detail.metadata``."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    topic: Literal["orders/create", "orders/updated", "orders/cancelled", "orders/edited", "refunds/create"] = Field(
        alias="X-Shopify-Topic"
    )
    webhook_id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")] = Field(
        alias="X-Shopify-Webhook-Id"
    )
    triggered_at: SenderInstant | None = Field(default=None, alias="X-Shopify-Triggered-At")
    shop_domain: Annotated[str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9.-]+$")] | None = Field(
        default=None, alias="X-Shopify-Shop-Domain"
    )


class ShopifyDetail(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: ShopifyMetadata
    payload: dict[str, Any]


class ShopifyEvent(Model):
    """The EventBridge event (the body of each SQS record)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: Text = ""
    detail_type: Literal["shopifyWebhook"] = Field(alias="detail-type")
    source: Annotated[str, StringConstraints(max_length=256, pattern=r"^aws\.partner/shopify\.com/[^\x00-\x1f\x7f]+$")]
    detail: ShopifyDetail


class ShopifyLineItem(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ShopifyId
    sku: Sku = None
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_UNITS)]
    # Units left after order edits and refunds removed some (REST Admin API 2024-01 and later); absent: none removed.
    current_quantity: Units | None = None

    @model_validator(mode="after")
    def _current_within_quantity(self) -> Self:
        if self.current_quantity is not None and self.current_quantity > self.quantity:
            raise ValueError(f"current_quantity ({self.current_quantity}) exceeds quantity ({self.quantity})")
        return self


class ShopifyOrder(Model):
    """The fields of a REST order payload (orders/create, orders/updated, orders/cancelled) the stock needs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ShopifyId
    created_at: SenderInstant
    updated_at: SenderInstant
    cancelled_at: AwareDatetime | None = None
    financial_status: Status | None = None
    fulfillment_status: Status | None = None
    source_name: Text | None = None
    line_items: Annotated[list[ShopifyLineItem], Field(max_length=MAX_LINE_ITEMS)]


class ShopifyRefundLine(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line_item_id: ShopifyId
    quantity: Units
    restock_type: Literal["no_restock", "cancel", "return", "legacy_restock"] = "no_restock"


class ShopifyRefund(Model):
    """A refunds/create payload: only the refunded lines, not the order."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ShopifyId
    order_id: ShopifyId
    created_at: SenderInstant
    refund_line_items: Annotated[list[ShopifyRefundLine], Field(max_length=MAX_LINE_ITEMS)] = []


class ShopifyLineDelta(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ShopifyId
    delta: Units


class ShopifyEditedLines(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    additions: Annotated[list[ShopifyLineDelta], Field(max_length=MAX_LINE_ITEMS)] = []
    removals: Annotated[list[ShopifyLineDelta], Field(max_length=MAX_LINE_ITEMS)] = []


class ShopifyOrderEditBody(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ShopifyId
    order_id: ShopifyId
    created_at: SenderInstant
    committed_at: SenderInstant | None = None
    line_items: ShopifyEditedLines = ShopifyEditedLines()


class ShopifyOrderEdit(Model):
    """An orders/edited payload: which line items an edit added or removed (ids and deltas), no SKUs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_edit: ShopifyOrderEditBody


@dataclass(frozen=True, slots=True)
class ShopifyDelivery:
    """One webhook delivery: its headers, and the order it shows (None for the topics that carry no whole order)."""

    topic: str
    webhook_id: str
    order_id: str  # "shopify:<id>", for the logs and dead letters of every topic
    triggered_at: datetime | None
    shop_domain: str | None
    order: ShopOrder | None
    note: str = ""


def order_state(order: ShopifyOrder) -> OrderState:
    """The product's state of a Shopify order (docs/connectors.md, "Shopify", has the table and the reasons).

    Cancelled, fulfilled or (legacy) restocked orders are done: COMPLETED counts nowhere. An open order counts
    against stock until it ships or the warehouse syncs it: FB_PROCESSING (P) while its payment is pending or only
    authorized, CREATED (C) otherwise, also when partly fulfilled, since IN_PROGRESS (K) is not subtracted in the
    default deduction mode and the unshipped units must stay counted.
    """
    if order.cancelled_at is not None or order.fulfillment_status in {"fulfilled", "restocked"}:
        return OrderState.COMPLETED
    if order.financial_status in UNSETTLED_PAYMENT:
        return OrderState.FB_PROCESSING
    return OrderState.CREATED


def shop_order(order: ShopifyOrder) -> ShopOrder:
    """The ``ShopOrder`` of a whole-order payload. A cancelled (or legacy restocked) order cancels every unit; an
    open one cancels what edits and refunds removed (``quantity - current_quantity``). Cancelled units only grow in
    the ledger, so an older delivery showing fewer never undoes a newer one."""
    cancel_all = order.cancelled_at is not None or order.fulfillment_status == "restocked"
    lines = tuple(
        ShopLine(
            line_ref=item.id,
            sku=item.sku,
            quantity=item.quantity,
            cancelled=item.quantity
            if cancel_all
            else item.quantity - (item.quantity if item.current_quantity is None else item.current_quantity),
        )
        for item in order.line_items
    )
    return ShopOrder(
        order_id=f"{ORDER_ID_PREFIX}{order.id}",
        state=order_state(order),
        lines=lines,
        updated_at=order.updated_at,
        placed_at=order.created_at,
        # Never a platform channel: Shopify orders are checkout orders Meta did not take off its catalog copy. Were
        # one, the product would only under-sell (it pushes a value the catalog already shows lower).
        channel="shopify",
    )


def parse_delivery(body: str) -> ShopifyDelivery:
    """One SQS record's body (the EventBridge event) into a delivery. Raises ``ValidationError`` or
    ``InvalidInputError`` naming the field (``detail.payload.<field>`` for the payload) for bad input."""
    event = ShopifyEvent.model_validate_json(body)
    metadata = event.detail.metadata
    payload = event.detail.payload
    common = {
        "topic": metadata.topic,
        "webhook_id": metadata.webhook_id,
        "triggered_at": metadata.triggered_at,
        "shop_domain": metadata.shop_domain,
    }
    if metadata.topic in ORDER_TOPICS:
        order = _validated(ShopifyOrder, payload)
        return ShopifyDelivery(**common, order_id=f"{ORDER_ID_PREFIX}{order.id}", order=shop_order(order))
    if metadata.topic == "refunds/create":
        refund = _validated(ShopifyRefund, payload)
        restocked = sorted({line.restock_type for line in refund.refund_line_items})
        return ShopifyDelivery(
            **common,
            order_id=f"{ORDER_ID_PREFIX}{refund.order_id}",
            order=None,
            note=f"refund {refund.id} of {len(refund.refund_line_items)} line(s), restock {restocked or ['none']}",
        )
    edit = _validated(ShopifyOrderEdit, payload).order_edit
    return ShopifyDelivery(
        **common,
        order_id=f"{ORDER_ID_PREFIX}{edit.order_id}",
        order=None,
        note=(
            f"order edit {edit.id}: {len(edit.line_items.additions)} addition(s), "
            f"{len(edit.line_items.removals)} removal(s)"
        ),
    )


def https_order(topic: str, payload: Any) -> ShopOrder | None:
    """The order of a Shopify webhook delivered over HTTPS (the signed endpoint, integrations/webhook_signatures.py):
    the same payload as on EventBridge, its topic in the ``X-Shopify-Topic`` header. None for the topics that carry
    no whole order (edits and refunds arrive with the orders/updated Shopify sends alongside)."""
    if topic not in ORDER_TOPICS:
        return None
    if not isinstance(payload, dict):
        raise InvalidInputError("detail.payload", "must be a JSON object")
    return shop_order(_validated(ShopifyOrder, payload))


def _validated(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        issues = error.errors(include_url=False)
        first = issues[0]
        location = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise InvalidInputError(
            f"detail.payload.{location}" if location else "detail.payload", first["msg"] + more
        ) from None
