"""Graph API shapes (docs/graph-api.md), parsed at the edge so nothing downstream handles raw JSON.

The models mirror the wire (``order.items.data[0]``), so a validation error's location reads like the JSON path a
person would look up in the response. Requests the client sends are typed too (``ItemUpdate``, ``CancelLine``,
``OrderAcknowledgement``), so callers cannot put a retailer id where Meta does not expect it.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    StringConstraints,
    field_validator,
    model_validator,
)

from stocksync.errors import InvalidInputError
from stocksync.models.base import Model
from stocksync.models.instants import not_in_future
from stocksync.models.orders import OrderId, OrderState, RetailerId

# A positive unit count as Meta sends it: a JSON integer (strict: "3", 2.0 or true are malformed, not coerced).
Units = Annotated[int, Field(strict=True, ge=1)]
GraphId = Annotated[str, Field(min_length=1)]


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Meta writes "2026-11-01T10:00:00+0000"; a time without an offset is malformed, not silently local.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class _Wire(Model):
    """Response models ignore fields they do not use: Meta adds fields without a version bump."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- Commerce orders (docs/graph-api.md, "Commerce orders") -------------------------------------------------------


class OrderStatus(_Wire):
    state: OrderState


class CommerceOrderItem(_Wire):
    """One order line; several units of a SKU are one line with ``quantity`` > 1."""

    id: GraphId
    retailer_id: RetailerId
    product_id: str | None = None
    quantity: Units


class _EdgePaging(_Wire):
    next: str | None = None


class CommerceOrderItems(_Wire):
    data: list[CommerceOrderItem]
    # A nested edge is itself paged; ``next`` here means the order has more lines than this response carries.
    paging: _EdgePaging | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        # Counting part of an order would under-count pending units; refuse it so the order is dead-lettered.
        if self.paging is not None and self.paging.next is not None:
            raise ValueError("the order has more lines than one nested page (items.paging.next is set)")
        return self


class CancelledItem(_Wire):
    retailer_id: RetailerId
    quantity: Units


class CancelledItems(_Wire):
    data: list[CancelledItem]


class CancelReasonCode(StrEnum):
    """Reason codes Meta accepts on a seller cancellation (docs/graph-api.md, "Cancellation")."""

    CUSTOMER_REQUESTED = "CUSTOMER_REQUESTED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INVALID_ADDRESS = "INVALID_ADDRESS"
    SUSPICIOUS_ORDER = "SUSPICIOUS_ORDER"
    CANCEL_REASON_OTHER = "CANCEL_REASON_OTHER"


class CancelReason(_Wire):
    # Kept as text: a code Meta adds later must not make the whole order unreadable.
    reason_code: str
    reason_description: str | None = None


class CommerceOrderCancellation(_Wire):
    id: GraphId
    items: CancelledItems
    # True when the platform put the units back into its own catalog copy.
    restock_items: bool
    cancel_reason: CancelReason | None = None


class CommerceOrderCancellations(_Wire):
    data: list[CommerceOrderCancellation]


class CommerceOrder(_Wire):
    """An order as ``GET /{cms_id}/commerce_orders`` returns it with ``DEFAULT_ORDER_FIELDS``."""

    id: OrderId
    order_status: OrderStatus
    # Sender-stamped: a future ``created`` would date the order's move after every push, a future ``last_updated``
    # would carry the poll's watermark past orders not listed yet (models/instants.py).
    created: Annotated[UtcDatetime, AfterValidator(not_in_future)]
    last_updated: Annotated[UtcDatetime, AfterValidator(not_in_future)]
    # Required: an order without lines would count as zero units, which is never true.
    items: CommerceOrderItems
    # Meta leaves the edge out when there is nothing on it.
    cancellations: CommerceOrderCancellations = CommerceOrderCancellations(data=[])

    @property
    def state(self) -> OrderState:
        return self.order_status.state


class RejectedRecord(Model):
    """One record of a page that failed validation: the raw JSON to dead-letter, and why it failed.

    ``error`` is a ``stocksync.models.graph_errors.GraphResponseError`` (typed here by its base so models
    stay free of transport code); its ``field`` is the record's path in the response, such as
    ``data[3].items.data[0].quantity``.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    raw: Any
    error: InvalidInputError


class CommerceOrderPage(Model):
    """One page of orders. A bad order lands in ``rejected`` and never hides the good ones of its page.

    ``after`` is the cursor that resumes right after this page; ``has_next`` says whether Meta announced more.
    """

    model_config = ConfigDict(frozen=True)

    orders: list[CommerceOrder]
    rejected: list[RejectedRecord]
    after: str | None
    has_next: bool


# --- Catalog (docs/graph-api.md, the "Catalog" sections) ----------------------------------------------------------


class ItemUpdate(Model):
    """One ``items_batch`` UPDATE: the retailer id goes into ``data.id`` on the wire, never ``retailer_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    fields: dict[str, str | int]

    @field_validator("fields")
    @classmethod
    def _no_identity(cls, fields: dict[str, str | int]) -> dict[str, str | int]:
        clash = sorted({"id", "retailer_id"} & fields.keys())
        if clash:
            raise ValueError(f"{clash} would rename the item; set retailer_id on the update instead")
        return fields

    def to_request(self) -> dict[str, Any]:
        return {"method": "UPDATE", "data": {**self.fields, "id": self.retailer_id}}


class ValidationMessage(_Wire):
    message: str


class ItemValidationStatus(_Wire):
    retailer_id: str | None = None
    errors: list[ValidationMessage] = []
    warnings: list[ValidationMessage] = []


class ItemsBatchResult(_Wire):
    """Answer of ``POST /{catalog_id}/items_batch``; no handle means nothing was ingested."""

    handles: list[str]
    validation_status: list[ItemValidationStatus] = []


class BatchStatus(StrEnum):
    SCHEDULED = "scheduled"
    DISPATCHED = "dispatched"
    STARTED = "started"
    FINISHED = "finished"
    CANCELED = "canceled"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        """Final states: polling again will not change the outcome."""
        return self in {BatchStatus.FINISHED, BatchStatus.CANCELED, BatchStatus.ERROR}


class BatchRowError(_Wire):
    line: int | None = None
    id: str | None = None
    message: str


class BatchRequestStatus(_Wire):
    """One handle's status from ``GET /{catalog_id}/check_batch_request_status``.

    ``errors`` is a sample; ``errors_total_count`` is the real count. ``ids_of_invalid_requests`` holds retailer ids
    and is only filled when asked for with ``load_ids_of_invalid_requests``.
    """

    handle: str
    status: BatchStatus
    errors: list[BatchRowError] = []
    errors_total_count: Annotated[int, Field(strict=True, ge=0)] = 0
    warnings: list[BatchRowError] = []
    warnings_total_count: Annotated[int, Field(strict=True, ge=0)] = 0
    ids_of_invalid_requests: list[str] = []


# The largest integer a DynamoDB number holds exactly (38 significant digits,
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
DYNAMODB_MAX_INTEGER = 10**38 - 1


def _exact_text(value: Any) -> Any:
    """Refuse text a catalog record would be misread by: control characters, or spaces that stripping would drop
    (an id read as ``"SKU-1"`` from ``"SKU-1 "`` names a different item than the one listed)."""
    if isinstance(value, str):
        if any(unicodedata.category(character) == "Cc" for character in value):
            raise ValueError("holds a control character")
        if value != value.strip():
            raise ValueError("has leading or trailing whitespace")
    return value


# Ids and values read back from the catalog: checked before anything compares them with what the product stores.
CatalogItemId = Annotated[GraphId, BeforeValidator(_exact_text)]
CatalogRetailerId = Annotated[RetailerId, BeforeValidator(_exact_text)]
# A stock count as the catalog shows it: a JSON integer, never negative, and storable in DynamoDB exactly.
CatalogQuantity = Annotated[int, Field(strict=True, ge=0, le=DYNAMODB_MAX_INTEGER)]
# Kept as text (bounded), not an enum: a visibility the product does not know must still be seen, and repaired.
CatalogVisibility = Annotated[str, StringConstraints(min_length=1, max_length=32), BeforeValidator(_exact_text)]


class CatalogProduct(_Wire):
    """A catalog product as ``GET /{catalog_id}/products`` (or ``GET /{product_item_id}``) returns it.

    Bounded, because the catalog audit compares and stores what it reads: a record with a negative or oversized
    quantity (some integrations publish -1 for "unmanaged stock"; stocksync never does), or an id holding control
    characters, is rejected on its own (``page.rejected``) and never stops the rest of its page. ``inventory`` is
    the legacy name of the same count, read when a deployment writes that field.
    """

    id: CatalogItemId
    retailer_id: CatalogRetailerId
    quantity_to_sell_on_facebook: CatalogQuantity | None = None
    inventory: CatalogQuantity | None = None
    visibility: CatalogVisibility | None = None


class ProductPage(Model):
    """One page of catalog products; bad records land in ``rejected`` as in ``CommerceOrderPage``."""

    model_config = ConfigDict(frozen=True)

    products: list[CatalogProduct]
    rejected: list[RejectedRecord]
    after: str | None
    has_next: bool


# --- Generic answers ------------------------------------------------------------------------------------------------


class SuccessResponse(_Wire):
    success: bool


class OrderAcknowledgement(Model):
    """One entry of a bulk acknowledgement: Meta's order id and the merchant's own reference for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: OrderId
    merchant_order_reference: Annotated[str, Field(min_length=1)]


class CancelLine(Model):
    """Units of one SKU to cancel on an order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    quantity: Units


class GraphErrorBody(_Wire):
    """The ``error`` object of a failed call (docs/graph-api.md, "Errors")."""

    message: str = ""
    type: str | None = None
    code: int | None = None
    error_subcode: int | None = None
    is_transient: bool = False
    fbtrace_id: str | None = None


class GraphErrorResponse(_Wire):
    error: GraphErrorBody


class AcknowledgedOrder(_Wire):
    """One order's outcome in a bulk acknowledgement: its new state, or the error that kept it where it was."""

    id: OrderId
    state: OrderState | None = None
    error: GraphErrorBody | None = None


class AcknowledgeOrdersResult(_Wire):
    """Answer of ``POST /{cms_id}/acknowledge_orders``; each order succeeds or fails on its own."""

    orders: list[AcknowledgedOrder]

    @property
    def failed(self) -> list[AcknowledgedOrder]:
        """Orders not acknowledged: Meta says not to process those; retry them.

        docs/graph-api.md, "Acknowledgement".
        """
        return [order for order in self.orders if order.error is not None or order.state is None]


class _Cursors(_Wire):
    before: str | None = None
    after: str | None = None


class Paging(_Wire):
    cursors: _Cursors | None = None
    next: str | None = None


class ListResponse(_Wire):
    """Envelope of every paged edge; records stay raw here so each can be validated (and rejected) on its own."""

    data: list[Any]
    paging: Paging | None = None

    @property
    def after(self) -> str | None:
        """Cursor that resumes right after this page."""
        return self.paging.cursors.after if self.paging is not None and self.paging.cursors is not None else None

    @property
    def has_next(self) -> bool:
        """Meta announces a further page with ``paging.next``; its absence is the only end-of-list signal."""
        return self.paging is not None and self.paging.next is not None


# --- Rate-limit usage headers (docs/graph-api.md, "Rate limits") ----------------------------------------------------


class AppUsage(_Wire):
    """``X-App-Usage``: percent of the app's hourly budget used."""

    call_count: NonNegativeFloat = 0
    total_cputime: NonNegativeFloat = 0
    total_time: NonNegativeFloat = 0

    @property
    def max_percent(self) -> float:
        return max(self.call_count, self.total_cputime, self.total_time)


class BusinessUseCaseUsage(AppUsage):
    """One entry of ``X-Business-Use-Case-Usage``; the time to regain access is in MINUTES."""

    type: str | None = None
    estimated_time_to_regain_access: NonNegativeFloat = 0


class GraphUsage(Model):
    """Usage reported by one response, across both headers."""

    model_config = ConfigDict(frozen=True)

    app: AppUsage | None = None
    # Keyed by business object id, as on the wire.
    business_use_cases: dict[str, list[BusinessUseCaseUsage]] = {}

    @property
    def max_percent(self) -> float:
        """The highest share of any budget used: the number to slow down by before Meta throttles."""
        percents = [entry.max_percent for entries in self.business_use_cases.values() for entry in entries]
        if self.app is not None:
            percents.append(self.app.max_percent)
        return max(percents, default=0.0)

    @property
    def regain_access_seconds(self) -> float:
        """The longest wait any business use case announced, in seconds."""
        minutes = [e.estimated_time_to_regain_access for entries in self.business_use_cases.values() for e in entries]
        return max(minutes, default=0.0) * 60
