"""The one Graph API client: every call the product makes to Meta goes through ``GraphApiClient``.

Why it looks the way it does:

- One ``requests.Session`` with a pooled ``HTTPAdapter``: a warm Lambda reuses its TLS connections.
- Every call carries ``access_token`` and ``appsecret_proof`` (docs/graph-api.md, "Authentication"); POSTs send
  them in the form body so they stay out of URLs. Nothing logged or raised contains them (``graph_errors.redact``).
- Transient failures (5xx, codes 1/2, ``is_transient``, network errors) are retried with exponential backoff and full
  jitter, at most ``max_attempts`` sends, then ``GraphTransientError``.
- Throttling is honoured: the wait Meta announces in ``X-Business-Use-Case-Usage`` (minutes) is slept inline only
  when it is short (``max_inline_wait``); otherwise ``GraphThrottledError`` is raised at once so a Lambda can hand
  the work back to its queue with that delay instead of sleeping for minutes.
- Code 190 (token expired or rotated) triggers one forced fetch of the credentials and one retry; a token still
  refused counts ``GraphTokenRejected`` (alarmed) and raises.
- Every POST the product makes is safe to repeat (absolute quantities, or an ``idempotency_key``), so a POST whose
  answer was lost is retried like a GET.
"""

from __future__ import annotations

import base64
import json
import random as _random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import requests
from aws_lambda_powertools.utilities import parameters
from pydantic import TypeAdapter, ValidationError
from requests.adapters import HTTPAdapter

from stocksync.errors import InvalidInputError
from stocksync.integrations.graph_credentials import (
    CredentialsProvider,
    GraphCredentials,
    SecretReferenceCredentialsProvider,
)
from stocksync.integrations.graph_parsing import parse_model, parse_records, parse_usage
from stocksync.models.graph import (
    AcknowledgeOrdersResult,
    BatchRequestStatus,
    CancelLine,
    CancelReasonCode,
    CatalogProduct,
    CatalogRetailerId,
    CommerceOrder,
    CommerceOrderPage,
    GraphErrorBody,
    GraphErrorResponse,
    GraphUsage,
    ItemsBatchResult,
    ItemUpdate,
    ListResponse,
    OrderAcknowledgement,
    ProductPage,
    SuccessResponse,
)
from stocksync.models.graph_errors import (
    HTTP_TOO_MANY_REQUESTS,
    GraphApiError,
    GraphAuthError,
    GraphResponseError,
    GraphThrottledError,
    GraphTransientError,
    error_from_response,
    redact,
)
from stocksync.models.orders import OrderState
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics

DEFAULT_ORDER_FIELDS = (
    "id,order_status,created,last_updated,"
    "items{id,retailer_id,product_id,quantity},"
    "cancellations{id,items{retailer_id,quantity},restock_items,cancel_reason}"
)
DEFAULT_PRODUCT_FIELDS = "id,retailer_id,quantity_to_sell_on_facebook,visibility"
MAX_BATCH_REQUESTS = 5000  # items_batch limit per call (docs/graph-api.md, "Catalog: pushing stock")
# Our bound on the retailer ids of one filtered products listing (Graph documents none; the ids go in each page's URL).
MAX_FILTER_RETAILER_IDS = 100
_AUTH_PARAMS = frozenset({"access_token", "appsecret_proof"})
_FILTER_RETAILER_ID: TypeAdapter[str] = TypeAdapter(CatalogRetailerId)
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

Params = Mapping[str, Any]
Method = Literal["GET", "POST"]


def _pooled_session() -> requests.Session:
    session = requests.Session()
    # Retries are ours (they understand Graph error codes); urllib3's own are off.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _encode(params: Params) -> dict[str, str]:
    """Graph API parameter encoding: JSON for lists and objects, lowercase booleans, text for the rest."""
    overlap = _AUTH_PARAMS & params.keys()
    if overlap:
        raise InvalidInputError(sorted(overlap)[0], "set by the client; do not pass it")
    encoded: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, bool):
            encoded[name] = "true" if value else "false"
        elif isinstance(value, list | tuple | dict):
            encoded[name] = json.dumps(value, separators=(",", ":"))
        else:
            encoded[name] = str(value)
    return encoded


def _unix_seconds(name: str, moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidInputError(name, "naive datetime; pass a timezone-aware (UTC) time")
    return int(moment.timestamp())


def _retry_after_header(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _filter_retailer_ids(retailer_ids: Sequence[str]) -> list[str]:
    """The ids of a products filter, checked like the ids read back (``CatalogRetailerId``), without repeats."""
    if isinstance(retailer_ids, str):
        raise InvalidInputError("retailer_ids", "pass a sequence of retailer ids, not one string")
    unique = list(dict.fromkeys(retailer_ids))
    if not unique:
        raise InvalidInputError("retailer_ids", "name at least one retailer id (an empty filter matches nothing)")
    if len(unique) > MAX_FILTER_RETAILER_IDS:
        raise InvalidInputError(
            "retailer_ids", f"at most {MAX_FILTER_RETAILER_IDS} per listing, not {len(unique)}; split the list"
        )
    for retailer_id in unique:
        try:
            _FILTER_RETAILER_ID.validate_python(retailer_id)
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]["msg"]
            raise InvalidInputError("retailer_ids", f"{retailer_id!r}: {problem}") from None
    return unique


def product_path(catalog_id: str, retailer_id: str) -> str:
    """Node of one catalog item for real-time updates: ``catalog:{catalog_id}:{base64url(retailer_id)}``."""
    encoded = base64.urlsafe_b64encode(retailer_id.encode()).decode().rstrip("=")
    return f"catalog:{catalog_id}:{encoded}"


class GraphApiClient:
    """Graph API calls as typed methods; see the module docstring for the retry and throttling rules."""

    def __init__(
        self,
        base_url: str,
        api_version: str,
        credentials_provider: CredentialsProvider,
        *,
        session: requests.Session | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_inline_wait: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        timeout: tuple[float, float] = (3.05, 30),
    ) -> None:
        if max_attempts < 1:
            raise InvalidInputError("max_attempts", "must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._api_version = api_version.strip("/")
        self._credentials = credentials_provider
        self._session = session if session is not None else _pooled_session()
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_inline_wait = max_inline_wait
        self._sleep = sleep
        self._random = random
        self._timeout = timeout
        self.last_usage: GraphUsage | None = None

    def __repr__(self) -> str:
        return f"GraphApiClient({self._base_url}/{self._api_version})"

    @property
    def api_version(self) -> str:
        return self._api_version

    @property
    def usage_percent(self) -> float:
        """Highest share (0-100+) of any rate-limit budget in the last usage headers seen; slow down near 100."""
        return self.last_usage.max_percent if self.last_usage is not None else 0.0

    # --- generic calls --------------------------------------------------------------------------------------------

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """``GET /{version}/{path}``: the decoded JSON object."""
        return self._call("GET", path, params or {})

    def post(self, path: str, data: Params | None = None) -> dict[str, Any]:
        """``POST /{version}/{path}`` with a form body: the decoded JSON object."""
        return self._call("POST", path, data or {})

    def paginate(self, path: str, params: Params | None = None) -> Iterator[ListResponse]:
        """Pages of a cursor-paged edge, one ``ListResponse`` at a time (records still raw), until no ``next``.

        Pages (not records) are yielded so a caller can persist ``page.after`` once it has applied a page, and resume
        there after a crash. The next page is requested with ``after=<cursors.after>`` on the same path and
        parameters: the ``next`` URL itself is not followed, because it embeds the token.
        """
        query = dict(params or {})
        endpoint = f"GET {path}"
        seen: set[str] = set()
        while True:
            page = parse_model(ListResponse, self.get(path, query), field="", endpoint=endpoint)
            yield page
            if not page.has_next:
                return
            cursor = page.after
            if cursor is None:
                raise GraphResponseError(
                    "paging.cursors.after", "a next page is announced without a cursor", endpoint=endpoint
                )
            if cursor in seen:
                raise GraphResponseError(
                    "paging.cursors.after", "the cursor repeats; paging would never end", endpoint=endpoint
                )
            seen.add(cursor)
            query["after"] = cursor

    # --- Commerce orders ------------------------------------------------------------------------------------------

    def list_commerce_orders(
        self,
        cms_id: str,
        *,
        states: Sequence[OrderState],
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        fields: str = DEFAULT_ORDER_FIELDS,
        limit: int | None = None,
        after: str | None = None,
    ) -> Iterator[CommerceOrderPage]:
        """Orders in any of ``states`` (OR), page by page, oldest change first; lazy: no call until iterated.

        ``states`` is required because Meta silently defaults to CREATED only. ``fields`` must keep the lines
        (``items{...}``); without them every order is rejected. A malformed order goes to ``page.rejected``.
        """
        if not states:
            raise InvalidInputError("states", "name at least one order state")
        params: dict[str, Any] = {"state": ",".join(OrderState(state).value for state in states), "fields": fields}
        if updated_after is not None:
            params["updated_after"] = _unix_seconds("updated_after", updated_after)
        if updated_before is not None:
            params["updated_before"] = _unix_seconds("updated_before", updated_before)
        if limit is not None:
            params["limit"] = limit
        if after is not None:
            params["after"] = after
        # Arguments are checked now, at the call; the pages are fetched as the caller iterates.
        return self._order_pages(f"{cms_id}/commerce_orders", params)

    def _order_pages(self, path: str, params: Params) -> Iterator[CommerceOrderPage]:
        for page in self.paginate(path, params):
            orders, rejected = parse_records(CommerceOrder, page, endpoint=f"GET {path}")
            yield CommerceOrderPage(orders=orders, rejected=rejected, after=page.after, has_next=page.has_next)

    def acknowledge_orders(
        self, cms_id: str, orders: Sequence[OrderAcknowledgement], *, idempotency_key: str
    ) -> AcknowledgeOrdersResult:
        """Moves CREATED orders to IN_PROGRESS in one call; each order may fail alone (see ``result.failed``).

        A repeat with the same ``idempotency_key`` gets the first answer again and changes nothing.
        """
        if not orders:
            raise InvalidInputError("orders", "acknowledge at least one order")
        path = f"{cms_id}/acknowledge_orders"
        data = {"idempotency_key": idempotency_key, "orders": [order.model_dump() for order in orders]}
        return parse_model(AcknowledgeOrdersResult, self.post(path, data), field="", endpoint=f"POST {path}")

    def cancel_order(
        self,
        order_id: str,
        items: Sequence[CancelLine] | None,
        *,
        reason_code: CancelReasonCode,
        reason_description: str,
        restock_items: bool,
        idempotency_key: str,
    ) -> None:
        """Seller cancellation of ``items`` (None: the whole order). ``restock_items`` gives units back to Meta."""
        data: dict[str, Any] = {
            "cancel_reason": {
                "reason_code": CancelReasonCode(reason_code).value,
                "reason_description": reason_description,
            },
            "restock_items": restock_items,
            "idempotency_key": idempotency_key,
        }
        if items is not None:
            data["items"] = [line.model_dump() for line in items]
        self._expect_success(f"{order_id}/cancellations", data)

    # --- Catalog --------------------------------------------------------------------------------------------------

    def items_batch(
        self,
        catalog_id: str,
        requests: Sequence[ItemUpdate],
        *,
        item_type: str = "PRODUCT_ITEM",
        allow_upsert: bool = False,
    ) -> ItemsBatchResult:
        """Queues up to 5000 item updates; check the returned handle with ``check_batch_request_status``.

        ``allow_upsert`` defaults to False: an UPDATE for a SKU missing from the catalog must fail, not create a
        half-empty product.
        """
        if not 1 <= len(requests) <= MAX_BATCH_REQUESTS:
            raise InvalidInputError("requests", f"send 1 to {MAX_BATCH_REQUESTS} updates per call, not {len(requests)}")
        path = f"{catalog_id}/items_batch"
        data = {
            "item_type": item_type,
            "allow_upsert": allow_upsert,
            "requests": [update.to_request() for update in requests],
        }
        return parse_model(ItemsBatchResult, self.post(path, data), field="", endpoint=f"POST {path}")

    def check_batch_request_status(
        self, catalog_id: str, handle: str, load_ids_of_invalid_requests: bool = True
    ) -> BatchRequestStatus:
        """Where the batch behind ``handle`` stands; with the retailer ids of rejected rows by default."""
        path = f"{catalog_id}/check_batch_request_status"
        endpoint = f"GET {path}"
        params = {"handle": handle, "load_ids_of_invalid_requests": load_ids_of_invalid_requests}
        page = parse_model(ListResponse, self.get(path, params), field="", endpoint=endpoint)
        for index, raw in enumerate(page.data):
            if isinstance(raw, dict) and raw.get("handle") == handle:
                return parse_model(BatchRequestStatus, raw, field=f"data[{index}]", endpoint=endpoint)
        raise GraphResponseError("data", f"no status for handle {handle!r}", raw=page.data, endpoint=endpoint)

    def update_product(self, catalog_id: str, retailer_id: str, fields: Mapping[str, str | int]) -> None:
        """Real-time update of one item (no batch handle to check): for a single urgent change such as a sell-out."""
        if not fields:
            raise InvalidInputError("fields", "name at least one field to update")
        self._expect_success(product_path(catalog_id, retailer_id), dict(fields))

    def list_products(
        self,
        catalog_id: str,
        fields: str = DEFAULT_PRODUCT_FIELDS,
        *,
        limit: int | None = None,
        retailer_ids: Sequence[str] | None = None,
        after: str | None = None,
    ) -> Iterator[ProductPage]:
        """The catalog's products, page by page in retailer_id order; lazy: no call until iterated.

        ``retailer_ids`` reads back only those SKUs, through Graph's ``filter={"retailer_id":{"is_any":[...]}}``
        (https://developers.facebook.com/docs/marketing-api/reference/product-catalog/products); an id the catalog
        does not hold is simply absent. At most ``MAX_FILTER_RETAILER_IDS`` per listing: the filter travels in the
        URL of every page, and Graph documents no bound for ``is_any``, so callers split longer lists.
        ``after`` resumes a listing at a page's ``after`` cursor saved earlier (say, when throttling cut an audit
        short); pass the same ``fields``, ``retailer_ids`` and ``limit`` as the listing it came from. Every page
        carries its own ``after`` and ``has_next``, so a caller can save its place after applying each page. A record
        that does not parse goes to ``page.rejected`` and never stops the rest of its page.
        """
        params: dict[str, Any] = {"fields": fields}
        if limit is not None:
            if limit < 1:
                raise InvalidInputError("limit", f"ask for at least 1 product per page, not {limit}")
            params["limit"] = limit
        if retailer_ids is not None:
            params["filter"] = {"retailer_id": {"is_any": _filter_retailer_ids(retailer_ids)}}
        if after is not None:
            if not after:
                raise InvalidInputError("after", "an empty cursor resumes nothing; pass None to start at the top")
            params["after"] = after
        # Arguments are checked now, at the call; the pages are fetched as the caller iterates.
        return self._product_pages(f"{catalog_id}/products", params)

    def _product_pages(self, path: str, params: Params) -> Iterator[ProductPage]:
        for page in self.paginate(path, params):
            products, rejected = parse_records(CatalogProduct, page, endpoint=f"GET {path}")
            yield ProductPage(products=products, rejected=rejected, after=page.after, has_next=page.has_next)

    # --- transport ------------------------------------------------------------------------------------------------

    def _expect_success(self, path: str, data: Params) -> None:
        answer = parse_model(SuccessResponse, self.post(path, data), field="", endpoint=f"POST {path}")
        if not answer.success:
            raise GraphResponseError("success", "Meta answered success=false", endpoint=f"POST {path}")

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        return self._random() * min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))

    def _call(self, method: Method, path: str, params: Params) -> dict[str, Any]:
        encoded = _encode(params)
        endpoint = f"{method} {path}"
        credentials = self._credentials.get()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, path, encoded, credentials, endpoint)
            except GraphAuthError as error:
                if refreshed or not error.credentials_may_have_rotated:
                    _count_rejected_token(error)
                    raise
                refreshed = True
                fresh = self._credentials.get(force_fetch=True)
                if fresh == credentials:
                    _count_rejected_token(error)
                    raise
                logger.warning(
                    "Graph API rejected the credentials; retrying once with fresh ones",
                    extra={"endpoint": endpoint, "code": error.code},
                )
                credentials = fresh
            except GraphThrottledError as error:
                wait = error.retry_after_seconds if error.retry_after_seconds > 0 else self._backoff(attempt)
                error.retry_after_seconds = wait
                if wait > self._max_inline_wait or attempt >= self._max_attempts:
                    raise
                logger.warning(
                    "Graph API throttled; waiting before retrying",
                    extra={"endpoint": endpoint, "code": error.code, "wait_seconds": wait, "attempt": attempt},
                )
                self._sleep(wait)
            except GraphTransientError as error:
                if attempt >= self._max_attempts:
                    raise
                delay = self._backoff(attempt)
                logger.warning(
                    "Graph API call failed transiently; retrying",
                    extra={"endpoint": endpoint, "error": str(error), "delay_seconds": delay, "attempt": attempt},
                )
                self._sleep(delay)

    def _send(
        self, method: Method, path: str, params: dict[str, str], credentials: GraphCredentials, endpoint: str
    ) -> dict[str, Any]:
        token = credentials.access_token.get_secret_value()
        proof = credentials.appsecret_proof()
        secrets = (token, proof, credentials.app_secret.get_secret_value())
        signed = {**params, "access_token": token, "appsecret_proof": proof}
        url = f"{self._base_url}/{self._api_version}/{path.lstrip('/')}"
        try:
            response = self._session.request(
                method,
                url,
                params=signed if method == "GET" else None,
                data=signed if method == "POST" else None,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except _NETWORK_ERRORS as exc:
            # ``from None``: the original exception's text holds the full URL, token included.
            raise GraphTransientError(
                f"network failure: {type(exc).__name__}: {redact(str(exc), secrets)}", endpoint=endpoint
            ) from None
        except requests.RequestException as exc:
            raise GraphApiError(
                f"request failed: {type(exc).__name__}: {redact(str(exc), secrets)}", endpoint=endpoint
            ) from None
        return self._read(response, endpoint, path, secrets)

    def _read(self, response: requests.Response, endpoint: str, path: str, secrets: Sequence[str]) -> dict[str, Any]:
        status = response.status_code
        usage = parse_usage(response.headers)
        if usage is not None:
            self.last_usage = usage
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if 200 <= status < 300:
            if not isinstance(payload, dict):
                raise GraphResponseError("body", "not a JSON object", http_status=status, endpoint=endpoint)
            return payload
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = parse_model(GraphErrorResponse, payload, field="", endpoint=endpoint).error
        elif status >= 500 or status == HTTP_TOO_MANY_REQUESTS:
            # A proxy or load balancer answered without Meta's error object: classify by status alone.
            error = GraphErrorBody(message=f"HTTP {status} without an error object")
        else:
            raise GraphResponseError(
                "error", f"HTTP {status} without an error object", http_status=status, endpoint=endpoint
            )
        raise error_from_response(
            status,
            error,
            endpoint=endpoint,
            edge=path.rstrip("/").rsplit("/", 1)[-1],
            usage=usage,
            retry_after_header=_retry_after_header(response.headers),
            secrets=secrets,
        )


@lru_cache(maxsize=4)
def _client_for(base_url: str, api_version: str, credentials_reference: str) -> GraphApiClient:
    return GraphApiClient(base_url, api_version, SecretReferenceCredentialsProvider(credentials_reference))


def graph_client_from_settings(settings: Settings) -> GraphApiClient:
    """The process's client for these settings, built once per warm Lambda; nothing is fetched until the first call."""
    return _client_for(settings.graph_base_url, settings.graph_api_version, settings.graph_credentials)


def clear_graph_client_cache() -> None:
    """Forget the cached clients (tests; a settings change in a long-running process), and Powertools' parameter
    providers with them: each holds the boto3 client it was made with, and after its cache's max age a re-fetch of
    the credentials went to that client's endpoint, an earlier local stack's stopped moto (tune's week-long replays,
    several in one process, failed there with "cannot read secretsmanager:...")."""
    _client_for.cache_clear()
    parameters.clear_caches()


def _count_rejected_token(error: GraphAuthError) -> None:
    """A token Meta refuses even after a fresh read of the stored credentials (code 190: revoked, expired, the app
    removed) stops every call until someone issues a new one: one ``GraphTokenRejected`` per invocation that met it,
    which GraphTokenRejectedAlarm watches. Each caller gives up at once (no retry loop; SQS's own redelivery and the
    schedules' next ticks are the only repeats), so the alarm, not a retry storm, is what says so."""
    if error.credentials_may_have_rotated:
        metrics.add_metric(name="GraphTokenRejected", unit="Count", value=1)
