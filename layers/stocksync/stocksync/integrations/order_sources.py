"""Order sources: where sightings come from (docs/design.md, "Where orders come from").

Two adapters feed the same ledger. ``MetaCommerceOrders`` polls the Commerce Order Management API (removed by Meta
from every Graph API version on 2026-10-27; kept for the simulator, historic replays and accounts still on it).
``merchant_order_event`` turns an order event that the merchant's own systems publish on the bus into the same
``OrderObservation``. Nothing downstream knows which one an order came from, except the ledger, which records it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from stocksync.errors import (
    InvalidInputError,
    SourceCursorRejectedError,
    SourceRemovedError,
    SourceThrottledError,
    describe_validation_error,
)
from stocksync.logic.order_polling import SourcePage
from stocksync.logic.shop_orders import PLATFORM_CHANNELS, IdentityMapping, ShopLine, ShopOrder, sighting
from stocksync.models.base import Model
from stocksync.models.graph import CommerceOrder
from stocksync.models.graph_errors import (
    GraphEndpointRemovedError,
    GraphThrottledError,
    GraphTransientError,
    GraphValidationError,
    says_object_unreachable,
)
from stocksync.models.instants import SenderInstant
from stocksync.models.orders import (
    EVENTS_ORDER_PREFIX,
    OrderLine,
    OrderObservation,
    OrderSource,
    OrderState,
    RetailerId,
)

OPEN_STATES = (OrderState.FB_PROCESSING, OrderState.CREATED, OrderState.IN_PROGRESS)
ALL_STATES = tuple(OrderState)


class GraphOrdersClient(Protocol):
    """The part of GraphApiClient the adapter uses (a port, so unit tests pass a fake)."""

    def list_commerce_orders(self, cms_id: str, **kwargs: Any) -> Iterator[Any]: ...


def observation_from_commerce_order(order: CommerceOrder, *, observed_at: datetime) -> OrderObservation:
    """Sum lines and cancellations per SKU (an order may list one SKU on several lines)."""
    quantities: dict[str, int] = defaultdict(int)
    cancelled: dict[str, int] = defaultdict(int)
    restocked: dict[str, int] = defaultdict(int)
    for item in order.items.data:
        quantities[item.retailer_id] += item.quantity
    for cancellation in order.cancellations.data:
        for item in cancellation.items.data:
            if item.retailer_id not in quantities:
                raise InvalidInputError(
                    f"cancellations.data.items[{item.retailer_id}]",
                    f"order {order.id} cancels a SKU it does not contain",
                )
            cancelled[item.retailer_id] += item.quantity
            if cancellation.restock_items:
                restocked[item.retailer_id] += item.quantity
    lines = []
    for retailer_id, quantity in quantities.items():
        if cancelled[retailer_id] > quantity:
            raise InvalidInputError(
                f"cancellations[{retailer_id}].quantity",
                f"order {order.id} cancels {cancelled[retailer_id]} of {quantity} units",
            )
        lines.append(
            OrderLine(
                retailer_id=retailer_id,
                quantity=quantity,
                cancelled=cancelled[retailer_id],
                restocked=restocked[retailer_id],
            )
        )
    return OrderObservation(
        order_id=order.id,
        source=OrderSource.META_COMMERCE,
        state=order.state,
        lines=tuple(lines),
        sold_on_platform=True,
        placed_at=order.created,
        observed_at=observed_at,
    )


class MetaCommerceOrders:
    """The ``meta_commerce`` adapter: ``GET /{cms_id}/commerce_orders``, every state, every page."""

    def __init__(self, client: GraphOrdersClient, cms_id: str) -> None:
        self._client = client
        self._cms_id = cms_id

    def pages(
        self, *, updated_after: datetime | None, after: str | None, observed_at: datetime
    ) -> Iterator[SourcePage]:
        # The first poll has no watermark: it reads the orders still open (history adds nothing to P, C or K).
        states = ALL_STATES if updated_after is not None else OPEN_STATES
        listing = self._client.list_commerce_orders(
            self._cms_id, states=list(states), updated_after=updated_after, after=after
        )
        first = True
        while True:
            try:
                page = next(listing)
            except StopIteration:
                return
            except GraphValidationError as error:
                # "Unsupported get request" (code 100, subcode 33) for the configured commerce account: the account
                # is not a parameter, so the edge is what is gone (or the cms_id/permission is wrong: the same
                # alarm). Checked before the cursor, since a resumed listing can meet the removal too.
                if says_object_unreachable(error):
                    raise SourceRemovedError(f"meta_commerce: {error}") from None
                # Code 100 (invalid parameter) on the first page of a resumed listing: the cursor is the only
                # parameter a resumed listing sends differently. Any other refusal is not blamed on it.
                if first and after is not None and error.code == 100:
                    raise SourceCursorRejectedError(f"meta_commerce: page cursor rejected: {error}") from None
                raise
            except GraphEndpointRemovedError as error:
                raise SourceRemovedError(f"meta_commerce: {error}") from None
            except (GraphThrottledError, GraphTransientError) as error:
                wait = getattr(error, "retry_after_seconds", 60.0)
                raise SourceThrottledError(f"meta_commerce: {error}", retry_after_seconds=wait) from None
            first = False
            result = SourcePage(observations=[], after=page.after, has_next=page.has_next)
            result.rejected.extend((record.raw, str(record.error)) for record in page.rejected)
            for order in page.orders:
                if result.latest_update is None or order.last_updated > result.latest_update:
                    result.latest_update = order.last_updated
                try:
                    result.observations.append(observation_from_commerce_order(order, observed_at=observed_at))
                except InvalidInputError as error:
                    result.rejected.append((order.model_dump(mode="json"), str(error)))
                except ValidationError as error:
                    result.rejected.append((order.model_dump(mode="json"), describe_validation_error(error)))
            yield result


# --- the ``events`` adapter ------------------------------------------------------------------------------------------

# The merchant's vocabulary, mapped onto the Commerce state model (Meta's own names are accepted as they are).
MERCHANT_STATES = {
    "pending": OrderState.FB_PROCESSING,  # awaiting payment / risk checks
    "placed": OrderState.CREATED,  # final, not yet in the warehouse
    "accepted": OrderState.IN_PROGRESS,  # the warehouse took it
    "completed": OrderState.COMPLETED,  # done or cancelled
    "cancelled": OrderState.COMPLETED,
}


def _state(value: Any) -> Any:
    if isinstance(value, str):
        known = MERCHANT_STATES.get(value.lower())
        if known is not None:
            return known
    return value


class MerchantOrderItem(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    quantity: Annotated[int, Field(strict=True, ge=1)]
    cancelled: Annotated[int, Field(strict=True, ge=0)] = 0


class MerchantOrderEvent(Model):
    """Detail of an "Order Changed" event on the product's bus (schema in README, sample in events/)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Room for the ``events:`` prefix within the ledger's 128 characters.
    order_id: Annotated[
        str, StringConstraints(min_length=1, max_length=128 - len(EVENTS_ORDER_PREFIX), strip_whitespace=True)
    ]
    state: Annotated[OrderState, BeforeValidator(_state)]
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    items: list[MerchantOrderItem] = []
    placed_at: SenderInstant | None = None
    occurred_at: SenderInstant


def merchant_order_event(detail: Any, *, observed_at: datetime) -> OrderObservation:
    """Validate an order event's detail; raises pydantic ValidationError naming the bad field.

    The sighting is dated when its content was true (``occurred_at``, never later than ``observed_at``, the time it
    is processed): a restock the next event shows happened after this content, not after its processing, and the
    catalog model must not place it later than it was (docs/catalog.md)."""
    event = MerchantOrderEvent.model_validate(detail)
    on_platform = event.channel.lower() in PLATFORM_CHANNELS
    order = ShopOrder(
        # A Facebook/Instagram order is the one Meta reports under the same id: one key, so both count it once.
        # Any other channel's id lives in the events namespace, so it never merges into a Meta order.
        order_id=event.order_id if on_platform else f"{EVENTS_ORDER_PREFIX}{event.order_id}",
        state=event.state,
        lines=tuple(
            # Buyer-side cancellations of platform orders are restocked by the platform itself.
            ShopLine(str(index), item.retailer_id, item.quantity, item.cancelled, restocked=item.cancelled)
            for index, item in enumerate(event.items)
        ),
        updated_at=event.occurred_at,
        placed_at=event.placed_at,
        channel=event.channel,
    )
    # The event names catalog items itself: nothing to map, and no line without one.
    return sighting(order, IdentityMapping(), observed_at=observed_at).observation
