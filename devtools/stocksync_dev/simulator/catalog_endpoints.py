"""The catalog endpoints: items_batch uploads, their status, the catalog reads, the single-product update.

items_batch is the expensive one: up to 5,000 requests per call, parsed and checked outside the lock so that
concurrent callers only queue for the moment the batch is accepted. The catalog reads (the products listing, with
its retailer-id ``filter``, and ``GET /{product_item_id}``, the node Meta's SDK reads with ``ProductItem.api_get``,
https://developers.facebook.com/docs/marketing-api/reference/product-item) spend their own budget, not the uploads'
(``rate_limits.py``).

Single-object calls, as Meta's SDK makes them (facebook-business 26.0.3):

- ``POST /{product_item_id}`` (``ProductItem.api_update``): updates the product's fields and answers
  ``{"success": true}``, the answer Graph's node updates give (ProductItem reference, Updating section,
  https://developers.facebook.com/docs/marketing-api/reference/product-item/; that page could not be read from
  this session, so the shape is the usual one of Graph updates, not checked against it). The parameters taken
  are those the SDK declares for ``api_update`` (``PRODUCT_UPDATE_PARAMS``); the simulator stores the ones it
  does not model verbatim.
- ``GET /{catalog_id}`` (``ProductCatalog.api_get``): the node with ``fields`` honoured
  (https://developers.facebook.com/docs/marketing-api/reference/product-catalog/); ``product_count`` counts every
  product the catalog holds, staging ones included (no source read here says whether hidden products count).
- ``check_batch_request_status`` honours ``fields`` like any Graph edge, over the fields the SDK declares for
  ``CheckBatchRequestStatus``
  (https://developers.facebook.com/docs/marketing-api/reference/product-catalog/check_batch_request_status/).
  The SDK declares handle, load_ids_of_invalid_requests and error_priority as its parameters, not ``fields``;
  whether Graph narrows this answer to the asked fields could not be checked, and the simulator does, since that
  is what ``fields`` does on every edge.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from stocksync_dev.simulator.auth import SECRET_PARAMS
from stocksync_dev.simulator.batches import ITEM_TYPE_PRODUCT, MAX_REQUESTS_PER_BATCH, split_requests
from stocksync_dev.simulator.catalog import invalid_field_messages
from stocksync_dev.simulator.errors import (
    THROTTLE_MESSAGES,
    GraphError,
    invalid_parameter,
    missing_parameter,
    unsupported_request,
)
from stocksync_dev.simulator.graph_fields import resolve_fields
from stocksync_dev.simulator.graph_request import GraphRequest, check_params, flag, json_value, required_text
from stocksync_dev.simulator.graph_views import BATCH_STATUS, CATALOG, PRODUCT, picked, product_json
from stocksync_dev.simulator.paging import decode_cursor, invalid_cursor, page_limit, paged_response
from stocksync_dev.simulator.platform_state import PlatformState
from stocksync_dev.simulator.product_filter import retailer_id_filter
from stocksync_dev.simulator.rate_limits import CallBudget, minutes_to_regain, usage_headers

BATCH_USAGE_TYPE = "catalog_batch"
READ_USAGE_TYPE = "catalog_management"
# The products edge pages like the orders listing by default, but lets a client ask for bigger pages.
MAX_PRODUCTS_PAGE = 1000
# The parameters of ``ProductItem.api_update`` in Meta's SDK (facebook-business 26.0.3), plus ``title``, the
# batch API's name for ``name`` that the product's own real-time updates may use.
PRODUCT_UPDATE_PARAMS = frozenset(
    [
        "additional_image_urls",
        "additional_variant_attributes",
        "age_group",
        "android_app_name",
        "android_class",
        "android_package",
        "android_url",
        "availability",
        "brand",
        "category",
        "category_specific_fields",
        "checkout_url",
        "color",
        "commerce_tax_category",
        "condition",
        "currency",
        "custom_data",
        "custom_label_0",
        "custom_label_1",
        "custom_label_2",
        "custom_label_3",
        "custom_label_4",
        "custom_number_0",
        "custom_number_1",
        "custom_number_2",
        "custom_number_3",
        "custom_number_4",
        "description",
        "expiration_date",
        "fb_product_category",
        "gender",
        "gtin",
        "image_url",
        "importer_address",
        "importer_name",
        "inventory",
        "ios_app_name",
        "ios_app_store_id",
        "ios_url",
        "ipad_app_name",
        "ipad_app_store_id",
        "ipad_url",
        "iphone_app_name",
        "iphone_app_store_id",
        "iphone_url",
        "launch_date",
        "live_special_price",
        "manufacturer_info",
        "manufacturer_part_number",
        "marked_for_product_launch",
        "material",
        "mobile_link",
        "name",
        "ordering_index",
        "origin_country",
        "pattern",
        "price",
        "product_priority_0",
        "product_priority_1",
        "product_priority_2",
        "product_priority_3",
        "product_priority_4",
        "product_type",
        "quantity_to_sell_on_facebook",
        "retailer_id",
        "return_policy_days",
        "rich_text_description",
        "sale_price",
        "sale_price_end_date",
        "sale_price_start_date",
        "short_description",
        "size",
        "start_date",
        "url",
        "visibility",
        "wa_compliance_category",
        "windows_phone_app_id",
        "windows_phone_app_name",
        "windows_phone_url",
        "title",
    ]
)
CATALOG_VERTICAL = "commerce"
BATCH_BUDGET_CODE = 80014
READ_BUDGET_CODE = 80009


class CatalogEndpoints:
    def __init__(self, state: PlatformState, catalog_id: str, page_size: int) -> None:
        self._state = state
        self._catalog_id = catalog_id
        self._page_size = page_size

    def items_batch(self, request: GraphRequest) -> dict[str, Any]:
        item_type = request.params.get("item_type")
        if not item_type:
            raise missing_parameter("item_type")
        if item_type != ITEM_TYPE_PRODUCT:
            raise invalid_parameter(f"Param item_type must be {ITEM_TYPE_PRODUCT} on this simulator, got {item_type!r}")
        requests = json_value(request.params, "requests")
        if not isinstance(requests, list) or not requests:
            raise invalid_parameter("Param requests must be a non-empty JSON array")
        if len(requests) > MAX_REQUESTS_PER_BATCH:
            raise invalid_parameter(
                f"Param requests holds {len(requests)} requests; at most {MAX_REQUESTS_PER_BATCH} are allowed per call"
            )
        allow_upsert = flag(request.params, "allow_upsert", default=True)
        rows, rejected = split_requests(requests)
        with self._state.transaction() as now:
            self._spend(self._state.batch_budget, BATCH_USAGE_TYPE, BATCH_BUDGET_CODE, now)
            handles = [self._state.batches.accept(rows, allow_upsert, now)] if rows else []
        return {
            "handles": handles,
            "validation_status": [
                {"retailer_id": error.retailer_id, "errors": [{"message": error.message}]} for error in rejected
            ],
        }

    def batch_status(self, request: GraphRequest) -> dict[str, Any]:
        spec = resolve_fields(BATCH_STATUS, request.params.get("fields"))
        handle = required_text(request.params, "handle")
        load_ids = flag(request.params, "load_ids_of_invalid_requests", default=False)
        with self._state.transaction() as now:
            # Status polls count against catalog management (80009), as Meta's reference lists for this edge.
            self._spend(self._state.read_budget, READ_USAGE_TYPE, READ_BUDGET_CODE, now)
            job = self._state.batches.get(handle)
            if job is None:
                raise invalid_parameter(f"Invalid handle {handle!r}: no batch request with this handle")
            return {"data": [picked(job.status_report(now, load_ids), spec)]}

    def products(self, request: GraphRequest) -> dict[str, Any]:
        """``GET /{catalog_id}/products``: products in retailer_id order, cursor-paged, optionally filtered."""
        spec = resolve_fields(PRODUCT, request.params.get("fields"))
        limit = page_limit(request.params, self._page_size, max(self._page_size, MAX_PRODUCTS_PAGE))
        retailer_ids = retailer_id_filter(request.params)
        after = request.params.get("after")
        after_retailer_id = None
        if after:
            key = decode_cursor(str(after))
            if not isinstance(key[0], str):
                raise invalid_cursor(str(after))
            after_retailer_id = key[0]
        with self._state.transaction() as now:
            self._spend(self._state.read_budget, READ_USAGE_TYPE, READ_BUDGET_CODE, now)
            products, has_more = self._state.catalog.page(after_retailer_id, limit, retailer_ids)
            data = [product_json(product, spec) for product in products]
        keys = [(product.retailer_id,) for product in products]
        return paged_response(data, keys, has_more, request.base_url + request.path, request.query)

    def product_item(self, request: GraphRequest, product_id: str) -> dict[str, Any]:
        """``GET /{product_item_id}``: one product by its Facebook id, with the fields the products edge offers."""
        spec = resolve_fields(PRODUCT, request.params.get("fields"))
        with self._state.transaction() as now:
            product = self._state.catalog.by_product_id(product_id)
            if product is None:
                raise unsupported_request(request.method, product_id)
            self._spend(self._state.read_budget, READ_USAGE_TYPE, READ_BUDGET_CODE, now)
            return product_json(product, spec)

    def catalog_node(self, request: GraphRequest) -> dict[str, Any]:
        """``GET /{catalog_id}``: the catalog itself, with the requested fields."""
        spec = resolve_fields(CATALOG, request.params.get("fields"))
        with self._state.transaction() as now:
            self._spend(self._state.read_budget, READ_USAGE_TYPE, READ_BUDGET_CODE, now)
            product_count = len(self._state.catalog.snapshot())
        values = {
            "id": self._catalog_id,
            "name": f"stocksync simulator catalog {self._catalog_id}",
            "product_count": product_count,
            "vertical": CATALOG_VERTICAL,
            "is_catalog_segment": False,
            "feed_count": 0,
        }
        return picked(values, spec)

    def _spend(self, budget: CallBudget, usage_type: str, code: int, now: datetime) -> None:
        """Count one call against ``budget``, or refuse it with ``code`` while the budget is spent."""
        wait = budget.time_to_regain(now)
        if wait is not None:
            headers = usage_headers(self._catalog_id, usage_type, 100, regain_minutes=minutes_to_regain(wait))
            raise GraphError(code, THROTTLE_MESSAGES[code], is_transient=True, headers=headers)
        budget.record(now)

    def update_product(self, request: GraphRequest, node: str) -> dict[str, Any]:
        """``POST /catalog:{catalog_id}:{base64url(retailer_id)}``: the real-time update of one product."""
        retailer_id = self._retailer_id_of(request, node)
        fields = self._update_fields(request, "the single-product update")
        with self._state.transaction():
            if retailer_id not in self._state.catalog:
                raise invalid_parameter(f"Product not found: {retailer_id}")
            self._state.catalog.update(retailer_id, fields)
        return {"success": True}

    def update_product_item(self, request: GraphRequest, product_id: str) -> dict[str, Any]:
        """``POST /{product_item_id}`` (the SDK's ``ProductItem.api_update``): the same update, by Facebook id."""
        fields = self._update_fields(request, "ProductItem")
        with self._state.transaction():
            product = self._state.catalog.by_product_id(product_id)
            if product is None:
                raise unsupported_request(request.method, product_id)
            if "retailer_id" in fields and fields["retailer_id"] != product.retailer_id:
                raise invalid_parameter("Param retailer_id cannot be changed on this simulator")
            self._state.catalog.update(product.retailer_id, fields)
        return {"success": True}

    @staticmethod
    def _update_fields(request: GraphRequest, endpoint: str) -> dict[str, Any]:
        check_params(request.params, PRODUCT_UPDATE_PARAMS, endpoint)
        fields = {name: value for name, value in request.params.items() if name not in SECRET_PARAMS}
        messages = invalid_field_messages(fields)
        if messages:
            raise invalid_parameter("; ".join(messages))
        return fields

    def _retailer_id_of(self, request: GraphRequest, node: str) -> str:
        parts = node.split(":")
        if len(parts) != 3 or parts[0] != "catalog" or parts[1] != self._catalog_id or not parts[2]:
            raise unsupported_request(request.method, node)
        encoded = parts[2]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise invalid_parameter(f"{encoded!r} is not a base64url-encoded retailer id") from error
