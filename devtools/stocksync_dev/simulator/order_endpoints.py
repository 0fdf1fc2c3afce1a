"""The Commerce Order Management endpoints: listing, the items and cancellations edges, acknowledge, cancel.

Writes carry an ``idempotency_key``: a repeat with the same key gets the first answer again and changes nothing,
which is what lets a client retry a write whose answer it never received.

When the endpoints stop answering, and how, is ``order_api_removal.OrderApiRemoval``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from stocksync_dev.simulator.catalog import parse_quantity
from stocksync_dev.simulator.errors import (
    OrderActionRefused,
    UnknownOrderError,
    invalid_parameter,
    unsupported_request,
)
from stocksync_dev.simulator.graph_fields import resolve_fields
from stocksync_dev.simulator.graph_request import (
    GraphRequest,
    flag,
    json_value,
    name_list,
    required_text,
    unix_time,
)
from stocksync_dev.simulator.graph_views import (
    CANCELLATION,
    ORDER,
    ORDER_ITEM,
    cancellation_json,
    item_json,
    order_json,
)
from stocksync_dev.simulator.orders import (
    CANCEL_REASON_CODES,
    ORDER_FILTERS,
    SELLER_CANCEL_WAIT_IN_FB_PROCESSING,
    CancelledBy,
    Order,
    OrderQuery,
    OrderState,
)
from stocksync_dev.simulator.paging import decode_cursor, invalid_cursor, page_limit, paged_response

if TYPE_CHECKING:
    from stocksync_dev.simulator.platform_state import PlatformState

Row = TypeVar("Row")
_DEFAULT_CANCEL_REASON = "CANCEL_REASON_OTHER"


class OrderEndpoints:
    def __init__(self, state: PlatformState, page_size: int) -> None:
        self._state = state
        self._page_size = page_size
        # (edge, node id, idempotency_key) -> the answer given the first time.
        self._replays: dict[tuple[str, str, str], dict[str, Any]] = {}

    def list_orders(self, request: GraphRequest) -> dict[str, Any]:
        query = OrderQuery(
            states=_states(request),
            filters=_filters(request),
            updated_after=unix_time(request.params, "updated_after"),
            updated_before=unix_time(request.params, "updated_before"),
        )
        spec = resolve_fields(ORDER, request.params.get("fields"))
        limit = page_limit(request.params, self._page_size, self._page_size)
        after = _order_cursor(request.params.get("after"))
        with self._state.transaction():
            orders, has_more = self._state.orders.page(query, after, limit)
            data = [order_json(order, spec) for order in orders]
        keys = [order.listing_key for order in orders]
        return paged_response(data, keys, has_more, request.base_url + request.path, request.query)

    def order_items(self, request: GraphRequest, order_id: str) -> dict[str, Any]:
        spec = resolve_fields(ORDER_ITEM, request.params.get("fields"))
        with self._state.transaction():
            order = self._order(request, order_id)
            return self._edge_page(request, order.lines, lambda line: item_json(line, spec))

    def order_cancellations(self, request: GraphRequest, order_id: str) -> dict[str, Any]:
        spec = resolve_fields(CANCELLATION, request.params.get("fields"))
        with self._state.transaction():
            order = self._order(request, order_id)
            return self._edge_page(request, order.cancellations, lambda c: cancellation_json(c, spec))

    def acknowledge_order(self, request: GraphRequest, order_id: str) -> dict[str, Any]:
        reference = required_text(request.params, "merchant_order_reference")
        replay_key = ("acknowledge_order", order_id, required_text(request.params, "idempotency_key"))
        with self._state.transaction() as now:
            if replay_key in self._replays:
                return self._replays[replay_key]
            self._order(request, order_id)
            try:
                self._state.orders.acknowledge(order_id, reference, now)
            except OrderActionRefused as refusal:
                raise invalid_parameter(str(refusal)) from refusal
            answer = {"id": order_id, "state": OrderState.IN_PROGRESS.value}
            self._replays[replay_key] = answer
            return answer

    def acknowledge_orders(self, request: GraphRequest, cms_id: str) -> dict[str, Any]:
        replay_key = ("acknowledge_orders", cms_id, required_text(request.params, "idempotency_key"))
        entries = _acknowledgements(request)
        with self._state.transaction() as now:
            if replay_key in self._replays:
                return self._replays[replay_key]
            results: list[dict[str, Any]] = []
            for order_id, reference in entries:
                try:
                    self._state.orders.acknowledge(order_id, reference, now)
                except (OrderActionRefused, UnknownOrderError) as refusal:
                    error = invalid_parameter(str(refusal))
                    results.append({"id": order_id, "error": error.body()["error"]})
                else:
                    results.append({"id": order_id, "state": OrderState.IN_PROGRESS.value})
            answer = {"orders": results}
            self._replays[replay_key] = answer
            return answer

    def cancel_order(self, request: GraphRequest, order_id: str) -> dict[str, Any]:
        replay_key = ("cancellations", order_id, required_text(request.params, "idempotency_key"))
        reason_code, reason_description = _cancel_reason(request)
        restock_items = flag(request.params, "restock_items", default=False)
        items = _cancel_items(request)
        with self._state.transaction() as now:
            if replay_key in self._replays:
                return self._replays[replay_key]
            order = self._order(request, order_id)
            if order.state is OrderState.FB_PROCESSING and now - order.created < SELLER_CANCEL_WAIT_IN_FB_PROCESSING:
                raise invalid_parameter(
                    f"Order {order_id} is still being processed by Facebook (FB_PROCESSING); "
                    "the seller can cancel it only once it is CREATED, or after 24 hours"
                )
            try:
                self._state.cancel_order(
                    order_id,
                    items,
                    cancelled_by=CancelledBy.SELLER,
                    restock_items=restock_items,
                    reason_code=reason_code,
                    reason_description=reason_description,
                    now=now,
                )
            except OrderActionRefused as refusal:
                raise invalid_parameter(str(refusal)) from refusal
            answer = {"success": True}
            self._replays[replay_key] = answer
            return answer

    def _order(self, request: GraphRequest, order_id: str) -> Order:
        try:
            return self._state.orders.get(order_id)
        except UnknownOrderError as missing:
            raise unsupported_request(request.method, order_id) from missing

    def _edge_page(
        self, request: GraphRequest, rows: Sequence[Row], render: Callable[[Row], dict[str, Any]]
    ) -> dict[str, Any]:
        """A page of an order's edge; rows are only ever appended, so the row position is a stable key."""
        limit = page_limit(request.params, self._page_size, self._page_size)
        start = 0
        after = request.params.get("after")
        if after:
            key = decode_cursor(str(after))
            if not isinstance(key[0], int) or isinstance(key[0], bool) or key[0] < 0:
                raise invalid_cursor(str(after))
            start = key[0] + 1
        chunk = rows[start : start + limit]
        keys = [(start + offset,) for offset in range(len(chunk))]
        data = [render(row) for row in chunk]
        return paged_response(data, keys, start + limit < len(rows), request.base_url + request.path, request.query)


def _states(request: GraphRequest) -> frozenset[OrderState]:
    names = name_list(request.params, "state") or [OrderState.CREATED.value]
    try:
        return frozenset(OrderState(name.upper()) for name in names)
    except ValueError as error:
        raise invalid_parameter(f"Param state must be among {', '.join(OrderState)}, got {names}") from error


def _filters(request: GraphRequest) -> tuple[str, ...]:
    names = tuple(name.upper() for name in name_list(request.params, "filters") or [])
    unknown = [name for name in names if name not in ORDER_FILTERS]
    if unknown:
        raise invalid_parameter(f"Param filters must be among {', '.join(ORDER_FILTERS)}, got {unknown}")
    return names


def _order_cursor(after: Any) -> tuple[int, str] | None:
    if not after:
        return None
    key = decode_cursor(str(after))
    if len(key) != 2 or not isinstance(key[0], int) or not isinstance(key[1], str):
        raise invalid_cursor(str(after))
    return key[0], key[1]


def _acknowledgements(request: GraphRequest) -> list[tuple[str, str]]:
    entries = json_value(request.params, "orders")
    if not isinstance(entries, list) or not entries:
        raise invalid_parameter("Param orders must be a non-empty JSON array of {id, merchant_order_reference}")
    parsed = []
    for entry in entries:
        order_id = entry.get("id") if isinstance(entry, dict) else None
        reference = entry.get("merchant_order_reference") if isinstance(entry, dict) else None
        if not isinstance(order_id, str) or not order_id or not isinstance(reference, str) or not reference:
            raise invalid_parameter(f"Each entry of orders needs an id and a merchant_order_reference, got {entry!r}")
        parsed.append((order_id, reference))
    return parsed


def _cancel_reason(request: GraphRequest) -> tuple[str, str | None]:
    reason = json_value(request.params, "cancel_reason")
    if reason is None:
        return _DEFAULT_CANCEL_REASON, None
    code = reason.get("reason_code") if isinstance(reason, dict) else None
    if code not in CANCEL_REASON_CODES:
        raise invalid_parameter(f"cancel_reason.reason_code must be one of {', '.join(CANCEL_REASON_CODES)}")
    description = reason.get("reason_description")
    if description is not None and not isinstance(description, str):
        raise invalid_parameter("cancel_reason.reason_description must be a string")
    return code, description


def _cancel_items(request: GraphRequest) -> list[tuple[str, int]] | None:
    items = json_value(request.params, "items")
    if items is None:
        return None
    if not isinstance(items, list) or not items:
        raise invalid_parameter("Param items must be a non-empty JSON array of {retailer_id, quantity}")
    parsed = []
    for item in items:
        retailer_id = item.get("retailer_id") if isinstance(item, dict) else None
        quantity = parse_quantity(item.get("quantity")) if isinstance(item, dict) else None
        if not isinstance(retailer_id, str) or not retailer_id or not quantity:
            raise invalid_parameter(f"Each entry of items needs a retailer_id and a positive quantity, got {item!r}")
        parsed.append((retailer_id, quantity))
    return parsed
