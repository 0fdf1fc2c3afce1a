"""The simulator's Graph API front door: record the call, authenticate, apply armed faults, route, add usage headers.

Paths are ``/{version}/{node}/{edge}`` (the version may be left out, as on Graph), the single-product update
``/{version}/catalog:{catalog_id}:{base64url(retailer_id)}``, and ``GET /{version}/{product_item_id}`` (one product
by its Facebook id; ``POST`` updates it), ``GET /{version}/{catalog_id}`` and ``GET /{version}/{order_id}``.
Every route takes a declared set of parameters (``ROUTE_PARAMS``, ``NODE_PARAMS``: what the endpoint's reference
page and Meta's SDK, facebook-business 26.0.3, declare and the simulator models, plus Graph's paging ``limit`` and
``after`` on listings); any other parameter is refused with code 100 naming it, so a typo or an unmodelled option
never passes silently. The commerce order endpoints answer as removed when the platform's ``order_api`` says so for
the call's version and the simulated date (``order_api_removal.OrderApiRemoval``), or everywhere once
``commerce_orders_removed`` is set.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from stocksync_dev.simulator.auth import SECRET_PARAMS, check_credentials
from stocksync_dev.simulator.batches import MAX_BATCH_BODY_BYTES
from stocksync_dev.simulator.catalog_endpoints import BATCH_USAGE_TYPE, READ_USAGE_TYPE, CatalogEndpoints
from stocksync_dev.simulator.errors import (
    GraphError,
    invalid_parameter,
    too_much_data,
    unknown_path,
    unsupported_request,
)
from stocksync_dev.simulator.graph_fields import resolve_fields
from stocksync_dev.simulator.graph_request import (
    GraphRequest,
    GraphResponse,
    check_params,
    error_response,
    json_value,
    parse_body,
    parse_query,
)
from stocksync_dev.simulator.graph_views import ORDER, order_json
from stocksync_dev.simulator.order_endpoints import OrderEndpoints
from stocksync_dev.simulator.platform_state import PlatformState
from stocksync_dev.simulator.rate_limits import LOW_USAGE_PERCENT, usage_headers

ORDER_EDGES = frozenset({"commerce_orders", "acknowledge_orders", "acknowledge_order", "items", "cancellations"})
SINGLE_PRODUCT_ENDPOINT = "catalog_item"
# How ``GET /{product_item_id}`` is counted and targeted by faults (the path itself is a different id each time).
PRODUCT_ITEM_ENDPOINT = "product_item"
# ``GET /{catalog_id}`` and ``GET /{order_id}``, counted and targeted under these names.
CATALOG_NODE_ENDPOINT = "product_catalog"
ORDER_NODE_ENDPOINT = "commerce_order"
# Status polls count with the reads: Meta lists 80009 (catalog management) for check_batch_request_status.
CATALOG_READ_ENDPOINTS = frozenset(
    {"products", "check_batch_request_status", PRODUCT_ITEM_ENDPOINT, CATALOG_NODE_ENDPOINT}
)
CATALOG_ENDPOINTS = frozenset({"items_batch", SINGLE_PRODUCT_ENDPOINT})
ORDER_USAGE_TYPE = "pages"

# Every listing takes Graph's paging ``limit``/``after``, ``fields`` and ``summary``: Meta's SDK sends
# ``summary=true`` with every edge read (its Cursor). Graph adds a ``summary`` block only on edges that define one;
# none of the reference pages of these edges documents one, so the simulator takes the parameter and adds nothing.
_LISTING = frozenset({"fields", "limit", "after", "summary"})
# The parameters each edge takes. Sources: the reference pages of commerce_orders, acknowledge_order(s),
# cancellations, items_batch, check_batch_request_status and products, and the params Meta's SDK declares for the
# same calls (``CommerceMerchantSettings.get_commerce_orders``: filters, state, updated_after, updated_before;
# facebook-business 24.0.1, the last with the order writes: ``create_acknowledge_order`` on the merchant settings
# (POST /acknowledge_orders): idempotency_key, orders; on ``CommerceOrder``: idempotency_key,
# merchant_order_reference, and ``create_cancellation``: cancel_reason, idempotency_key, items, restock_items;
# ``ProductCatalog.get_products``: filter; ``create_items_batch``: allow_upsert, item_type, requests;
# ``get_check_batch_request_status``: handle, load_ids_of_invalid_requests). SDK-declared params the simulator does
# not model (error_priority, bulk_pagination, return_only_approved_products, item_sub_type, version, ...) are
# refused rather than ignored. ``before`` is refused: the simulator only pages forward.
ROUTE_PARAMS: dict[tuple[str, str, str], frozenset[str]] = {
    ("GET", "cms", "commerce_orders"): _LISTING | {"state", "filters", "updated_after", "updated_before"},
    ("POST", "cms", "acknowledge_orders"): frozenset({"orders", "idempotency_key"}),
    ("GET", "order", "items"): _LISTING,
    ("GET", "order", "cancellations"): _LISTING,
    ("POST", "order", "cancellations"): frozenset({"cancel_reason", "restock_items", "items", "idempotency_key"}),
    ("POST", "order", "acknowledge_order"): frozenset({"merchant_order_reference", "idempotency_key"}),
    ("POST", "catalog", "items_batch"): frozenset({"item_type", "requests", "allow_upsert"}),
    ("GET", "catalog", "check_batch_request_status"): _LISTING | {"handle", "load_ids_of_invalid_requests"},
    ("GET", "catalog", "products"): _LISTING | {"filter"},
}
# Single-object reads take only ``fields`` (the SDK's optional ProductItem.api_get params such as image_width and
# ProductCatalog.api_get's segment_use_cases are not modelled); updates take the product's fields.
NODE_PARAMS = frozenset({"fields"})

_VERSION = re.compile(r"^v(\d+)\.(\d+)$")

Handler = Callable[[GraphRequest, str], dict[str, Any]]


def split_path(path: str) -> tuple[tuple[int, int] | None, tuple[str, ...]]:
    """The Graph version (None when absent) and the path segments after it."""
    segments = tuple(segment for segment in path.split("/") if segment)
    match = _VERSION.match(segments[0]) if segments else None
    if match is None:
        return None, segments
    return (int(match.group(1)), int(match.group(2))), segments[1:]


def endpoint_name(segments: tuple[str, ...]) -> str:
    """How calls are counted and faults targeted: the last path segment, ``catalog_item`` for a product update."""
    if len(segments) == 1 and segments[0].startswith("catalog:"):
        return SINGLE_PRODUCT_ENDPOINT
    return segments[-1] if segments else ""


class GraphApi:
    def __init__(
        self,
        state: PlatformState,
        *,
        catalog_id: str,
        cms_id: str,
        access_token: str,
        app_secret: str,
        require_appsecret_proof: bool,
        page_size: int,
    ) -> None:
        self._state = state
        self._catalog_id = catalog_id
        self._cms_id = cms_id
        self._access_token = access_token
        self._app_secret = app_secret
        self._require_appsecret_proof = require_appsecret_proof
        self.commerce_orders_removed = False
        self.calls: Counter[tuple[str, str]] = Counter()
        self.requests_log: list[tuple[str, str, dict[str, Any]]] = []
        orders = OrderEndpoints(state, page_size)
        catalog = CatalogEndpoints(state, catalog_id, page_size)
        self._routes: dict[tuple[str, str, str], Handler] = {
            ("GET", "cms", "commerce_orders"): lambda request, _: orders.list_orders(request),
            ("POST", "cms", "acknowledge_orders"): orders.acknowledge_orders,
            ("GET", "order", "items"): orders.order_items,
            ("GET", "order", "cancellations"): orders.order_cancellations,
            ("POST", "order", "cancellations"): lambda request, node: orders.cancel_order(
                self._with_item_ids_resolved(request, node), node
            ),
            ("POST", "order", "acknowledge_order"): orders.acknowledge_order,
            ("POST", "catalog", "items_batch"): lambda request, _: catalog.items_batch(request),
            ("GET", "catalog", "check_batch_request_status"): lambda request, _: catalog.batch_status(request),
            ("GET", "catalog", "products"): lambda request, _: catalog.products(request),
        }
        self._update_product = catalog.update_product
        self._product_item = catalog.product_item
        self._update_product_item = catalog.update_product_item
        self._catalog_node = catalog.catalog_node

    def revoke_access_token(self) -> None:
        """No token the product holds is accepted any more (a fresh random one is the only valid token)."""
        self._access_token = secrets.token_urlsafe(24)

    def handle(
        self,
        method: str,
        target: str,
        *,
        content_type: str | None,
        authorization: str | None,
        body: bytes,
        base_url: str,
    ) -> GraphResponse:
        """Answer one call; ``target`` is the request target (path and query), ``base_url`` the server's URL."""
        raw_path, _, query_string = target.partition("?")
        path = unquote(raw_path)
        version, segments = split_path(path)
        endpoint = self._endpoint(segments)
        business_id, usage_type = self._business_object(endpoint)
        query = parse_query(query_string)
        try:
            params = {**query, **self._body_params(endpoint, content_type, body)}
        except GraphError as error:
            self._record(method, path, endpoint, query)
            return self._with_usage_headers(error_response(error), business_id, usage_type)
        self._record(method, path, endpoint, params)
        request = GraphRequest(method, raw_path, version, segments, query, params, base_url)
        try:
            self._authenticate(request, authorization)
            with self._state.transaction() as now:
                fault = self._state.faults.check(endpoint, now, business_id, usage_type)
            if fault is not None:
                raise fault
            response = GraphResponse(200, self._route(request, endpoint))
        except GraphError as error:
            response = error_response(error)
        return self._with_usage_headers(response, business_id, usage_type)

    @staticmethod
    def _body_params(endpoint: str, content_type: str | None, body: bytes) -> dict[str, Any]:
        if endpoint == "items_batch" and len(body) > MAX_BATCH_BODY_BYTES:
            raise too_much_data()
        return parse_body(content_type, body)

    def _record(self, method: str, path: str, endpoint: str, params: Mapping[str, Any]) -> None:
        logged = {name: value for name, value in params.items() if name not in SECRET_PARAMS}
        with self._state.lock:
            self.calls[(method, endpoint)] += 1
            self.requests_log.append((method, path, logged))

    def _authenticate(self, request: GraphRequest, authorization: str | None) -> None:
        error = check_credentials(
            request.params,
            authorization,
            access_token=self._access_token,
            app_secret=self._app_secret,
            require_appsecret_proof=self._require_appsecret_proof,
        )
        if error is not None:
            raise error

    def _endpoint(self, segments: tuple[str, ...]) -> str:
        """``endpoint_name``, except that a product's Facebook id, the catalog's id and an order's id alone are the
        ``product_item``, ``product_catalog`` and ``commerce_order`` endpoints."""
        if len(segments) == 1:
            if segments[0] == self._catalog_id:
                return CATALOG_NODE_ENDPOINT
            with self._state.lock:
                if self._state.catalog.by_product_id(segments[0]) is not None:
                    return PRODUCT_ITEM_ENDPOINT
                if segments[0] in self._state.orders:
                    return ORDER_NODE_ENDPOINT
        return endpoint_name(segments)

    def _route(self, request: GraphRequest, endpoint: str) -> dict[str, Any]:
        segments = request.segments
        if endpoint == SINGLE_PRODUCT_ENDPOINT and request.method == "POST":
            return self._update_product(request, segments[0])
        if endpoint == PRODUCT_ITEM_ENDPOINT and request.method == "POST":
            return self._update_product_item(request, segments[0])
        if len(segments) == 1 and request.method == "GET":
            return self._node(request, endpoint, segments[0])
        if len(segments) != 2:
            raise unknown_path(request.path)
        node, edge = segments
        if edge in ORDER_EDGES and not self._orders_served(request.version):
            raise self._state.order_api.refusal(request.method, node, self._node_kind(node), edge)
        kind = self._node_kind(node)
        if kind is None:
            raise unsupported_request(request.method, node)
        handler = self._routes.get((request.method, kind, edge))
        if handler is None:
            raise unknown_path(f"/{edge}")
        check_params(request.params, ROUTE_PARAMS[(request.method, kind, edge)], edge)
        return handler(request, node)

    def _node(self, request: GraphRequest, endpoint: str, node: str) -> dict[str, Any]:
        """``GET`` of a single object: a product (ProductItem.api_get), the catalog (ProductCatalog.api_get,
        https://developers.facebook.com/docs/marketing-api/reference/product-catalog/) or an order
        (CommerceOrder.api_get; the Order API guide, "list orders and retrieve details about an order",
        https://developers.facebook.com/documentation/ads-commerce/commerce-platform/order-management/order-api),
        with the fields the orders listing serves and the same defaults (id, order_status, created, last_updated,
        per the guide's "Using the API" page). An order is part of the order API: where that API is gone the
        order answers as an object that does not exist (code 100, subcode 33), since no source documents what Graph
        answers for a removed node type. Any other single id is an object Graph cannot load: the same answer."""
        if endpoint not in (PRODUCT_ITEM_ENDPOINT, CATALOG_NODE_ENDPOINT, ORDER_NODE_ENDPOINT):
            # Graph's answer for an id it cannot load: code 100, subcode 33, "Unsupported get request".
            raise unsupported_request(request.method, node)
        check_params(request.params, NODE_PARAMS, endpoint)
        if endpoint == PRODUCT_ITEM_ENDPOINT:
            return self._product_item(request, node)
        if endpoint == CATALOG_NODE_ENDPOINT:
            return self._catalog_node(request)
        if not self._orders_served(request.version):
            raise unsupported_request(request.method, node)
        spec = resolve_fields(ORDER, request.params.get("fields"))
        with self._state.transaction():
            if node not in self._state.orders:
                raise unsupported_request(request.method, node)
            return order_json(self._state.orders.get(node), spec)

    def _with_item_ids_resolved(self, request: GraphRequest, order_id: str) -> GraphRequest:
        """Cancellation ``items`` name a line by ``retailer_id`` or by ``item_id`` (the CommerceOrderItem id), "but
        not both" (Cancellation and Refund API, items object,
        https://developers.facebook.com/documentation/ads-commerce/commerce-platform/order-management/cancellation-refund-api).
        Entries naming an item_id get that line's retailer_id, which the cancellation itself works with; an entry
        with both is refused with code 100 (the page does not give Graph's message for it)."""
        items = json_value(request.params, "items")
        if not isinstance(items, list) or not any(isinstance(i, dict) and "item_id" in i for i in items):
            return request
        with self._state.lock:
            order = self._state.orders.get(order_id) if order_id in self._state.orders else None
        if order is None:
            return request  # the cancellation answers the unknown order itself
        resolved = []
        for item in items:
            if isinstance(item, dict) and "item_id" in item:
                retailer_id = order.retailer_id_of_item(str(item["item_id"]))
                if retailer_id is None:
                    raise invalid_parameter(f"Order {order_id} has no item with item_id {item['item_id']!r}")
                if "retailer_id" in item:
                    raise invalid_parameter("Each entry of items takes a retailer_id or an item_id, not both")
                resolved.append({**{k: v for k, v in item.items() if k != "item_id"}, "retailer_id": retailer_id})
            else:
                resolved.append(item)
        return dataclasses.replace(request, params={**request.params, "items": resolved})

    def _orders_served(self, version: tuple[int, int] | None) -> bool:
        with self._state.lock:
            now = self._state.clock.now()
            return not self.commerce_orders_removed and self._state.order_api.is_served(version, now)

    def _node_kind(self, node: str) -> str | None:
        if node == self._cms_id:
            return "cms"
        if node == self._catalog_id:
            return "catalog"
        with self._state.lock:
            return "order" if node in self._state.orders else None

    def _business_object(self, endpoint: str) -> tuple[str | None, str]:
        if endpoint in CATALOG_READ_ENDPOINTS:
            return self._catalog_id, READ_USAGE_TYPE
        if endpoint in CATALOG_ENDPOINTS:
            return self._catalog_id, BATCH_USAGE_TYPE
        if endpoint in ORDER_EDGES or endpoint == ORDER_NODE_ENDPOINT:
            return self._cms_id, ORDER_USAGE_TYPE
        return None, ""

    def _with_usage_headers(self, response: GraphResponse, business_id: str | None, usage_type: str) -> GraphResponse:
        """Usage headers go on every answer; an error that brought its own (a throttle) keeps them."""
        percent = LOW_USAGE_PERCENT
        budget = {BATCH_USAGE_TYPE: self._state.batch_budget, READ_USAGE_TYPE: self._state.read_budget}.get(usage_type)
        if budget is not None:
            with self._state.lock:
                percent = max(percent, budget.usage_percent(self._state.clock.now()))
        for name, value in usage_headers(business_id, usage_type, percent).items():
            response.headers.setdefault(name, value)
        return response
