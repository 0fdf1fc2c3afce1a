"""How the platform's objects look in Graph JSON: orders, their items and cancellations, catalog products.

Each node type lists the fields a client may ask for; the renderers return exactly the requested ones. Timestamps
are ``2026-11-01T10:00:00+0000``, money is ``{"amount": "9.99", "currency": "USD"}``, and fields without a value
are left out, as Graph does.
"""

from __future__ import annotations

from typing import Any

from stocksync_dev.simulator.catalog import LEGACY_QUANTITY_FIELD, QUANTITY_FIELD, Product
from stocksync_dev.simulator.clock import graph_timestamp
from stocksync_dev.simulator.graph_fields import FieldSpec, NodeType
from stocksync_dev.simulator.orders import Cancellation, CancelledUnits, Order, OrderLine

CANCELLED_ITEM = NodeType(
    name="CommerceOrderCancellationItem",
    fields=frozenset({"id", "retailer_id", "product_id", "quantity"}),
    default_fields=("retailer_id", "quantity"),
)
CANCELLATION = NodeType(
    name="CommerceOrderCancellation",
    fields=frozenset({"id", "restock_items", "cancel_reason", "created"}),
    default_fields=("id",),
    edges={"items": CANCELLED_ITEM},
)
ORDER_ITEM = NodeType(
    name="CommerceOrderItem",
    fields=frozenset({"id", "retailer_id", "product_id", "product_name", "quantity", "price_per_unit"}),
    default_fields=("id", "retailer_id", "product_id", "quantity"),
)
ORDER = NodeType(
    name="CommerceOrder",
    fields=frozenset(
        {"id", "order_status", "created", "last_updated", "channel", "merchant_order_id", "is_test_order"}
    ),
    default_fields=("id", "order_status", "created", "last_updated"),
    edges={"items": ORDER_ITEM, "cancellations": CANCELLATION},
)
PRODUCT = NodeType(
    name="ProductItem",
    fields=frozenset(
        {
            "id",
            "retailer_id",
            "name",
            "price",
            QUANTITY_FIELD,
            LEGACY_QUANTITY_FIELD,
            "visibility",
            "availability",
            "description",
            "brand",
            "condition",
            "url",
            "image_url",
        }
    ),
    default_fields=("id",),
)

# ``GET /{catalog_id}``: the ProductCatalog fields the simulator can answer, a subset of those Meta's SDK declares
# (facebook-business 26.0.3, ``ProductCatalog.Field``; https://developers.facebook.com/docs/marketing-api/reference/product-catalog/).
# Without ``fields`` Graph answers a node's default fields; ``id`` and ``name`` is what Graph's nodes usually give,
# an assumption the reference page does not spell out for this node.
CATALOG = NodeType(
    name="ProductCatalog",
    fields=frozenset({"id", "name", "product_count", "vertical", "is_catalog_segment", "feed_count"}),
    default_fields=("id", "name"),
)
# One element of ``check_batch_request_status``: the fields Meta's SDK declares for CheckBatchRequestStatus
# (facebook-business 26.0.3). The reference page's sample answers them all, so all of them are the default.
BATCH_STATUS = NodeType(
    name="CheckBatchRequestStatus",
    fields=frozenset(
        {
            "handle",
            "status",
            "errors",
            "errors_total_count",
            "warnings",
            "warnings_total_count",
            "ids_of_invalid_requests",
        }
    ),
    default_fields=(
        "handle",
        "status",
        "errors",
        "errors_total_count",
        "warnings",
        "warnings_total_count",
        "ids_of_invalid_requests",
    ),
)


def money(price: str | None) -> dict[str, str] | None:
    """``"9.99 USD"`` (the catalog's price format) as Graph's money object."""
    if price is None:
        return None
    amount, _, currency = price.partition(" ")
    return {"amount": amount, "currency": currency}


def order_json(order: Order, spec: FieldSpec) -> dict[str, Any]:
    values = {
        "id": order.order_id,
        "order_status": {"state": order.state.value},
        "created": graph_timestamp(order.created),
        "last_updated": graph_timestamp(order.last_updated),
        "channel": "facebook",
        "merchant_order_id": order.merchant_order_reference,
        "is_test_order": False,
    }
    out = _pick(values, spec)
    if (items := spec.get("items")) is not None:
        out["items"] = {"data": [item_json(line, items) for line in order.lines]}
    if (cancellations := spec.get("cancellations")) is not None:
        out["cancellations"] = {"data": [cancellation_json(c, cancellations) for c in order.cancellations]}
    return out


def item_json(line: OrderLine, spec: FieldSpec) -> dict[str, Any]:
    values = {
        "id": line.item_id,
        "retailer_id": line.retailer_id,
        "product_id": line.product_id,
        "product_name": line.product_name,
        "quantity": line.quantity,
        "price_per_unit": money(line.price_per_unit),
    }
    return _pick(values, spec)


def cancellation_json(cancellation: Cancellation, spec: FieldSpec) -> dict[str, Any]:
    reason: dict[str, str] = {"reason_code": cancellation.reason_code}
    if cancellation.reason_description is not None:
        reason["reason_description"] = cancellation.reason_description
    values = {
        "id": cancellation.cancellation_id,
        "restock_items": cancellation.restock_items,
        "cancel_reason": reason,
        "created": graph_timestamp(cancellation.created),
    }
    out = _pick(values, spec)
    if (items := spec.get("items")) is not None:
        out["items"] = {"data": [cancelled_item_json(units, items) for units in cancellation.units]}
    return out


def cancelled_item_json(units: CancelledUnits, spec: FieldSpec) -> dict[str, Any]:
    values = {
        "id": units.item_id,
        "retailer_id": units.retailer_id,
        "product_id": units.product_id,
        "quantity": units.quantity,
    }
    return _pick(values, spec)


def product_json(product: Product, spec: FieldSpec) -> dict[str, Any]:
    return _pick(product.as_dict(), spec)


def picked(values: dict[str, Any], spec: FieldSpec) -> dict[str, Any]:
    """The requested fields of a node whose values are already computed (fields without a value left out)."""
    return _pick(values, spec)


def _pick(values: dict[str, Any], spec: FieldSpec) -> dict[str, Any]:
    return {name: values[name] for name in spec if values.get(name) is not None}
