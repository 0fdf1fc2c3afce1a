"""GraphApiClient against a scripted in-memory transport (a requests adapter): no sockets, no real sleeps."""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from stocksync.errors import InvalidInputError
from stocksync.integrations.graph_api import MAX_BATCH_REQUESTS, GraphApiClient, product_path
from stocksync.integrations.graph_credentials import GraphCredentials, StaticCredentialsProvider
from stocksync.models.graph import BatchStatus, CancelLine, CancelReasonCode, ItemUpdate, OrderAcknowledgement
from stocksync.models.graph_errors import (
    GraphApiError,
    GraphAuthError,
    GraphEndpointRemovedError,
    GraphPermissionError,
    GraphResponseError,
    GraphThrottledError,
    GraphTransientError,
    GraphValidationError,
)
from stocksync.models.orders import OrderState

BASE = "http://graph.test"
TOKEN = "tok-SECRET-1"
APP_SECRET = "app-SECRET-1"

Answer = requests.Response | Exception | Callable[[requests.PreparedRequest], requests.Response]


def credentials(token: str = TOKEN, app_secret: str = APP_SECRET) -> GraphCredentials:
    return GraphCredentials.model_validate({"access_token": token, "app_secret": app_secret})


def proof(token: str = TOKEN, app_secret: str = APP_SECRET) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    return answer


def graph_error(
    status: int, code: int | None, message: str = "boom", headers: Mapping[str, str] | None = None, **extra: Any
) -> requests.Response:
    return response(status, {"error": {"message": message, "code": code, "fbtrace_id": "Tr4ce", **extra}}, headers)


def buc(*entries: tuple[str, float, float]) -> dict[str, str]:
    """X-Business-Use-Case-Usage with (id, call_count, minutes to regain access) entries."""
    usage: dict[str, list[dict[str, Any]]] = {}
    for object_id, calls, minutes in entries:
        usage.setdefault(object_id, []).append(
            {
                "type": "catalog_batch",
                "call_count": calls,
                "total_cputime": 1,
                "total_time": 1,
                "estimated_time_to_regain_access": minutes,
            }
        )
    return {"X-Business-Use-Case-Usage": json.dumps(usage)}


class ScriptedGraph(BaseAdapter):
    """Answers each request with the next scripted answer and records what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: deque[Answer] = deque()
        self.sent: list[requests.PreparedRequest] = []
        self.send_options: list[dict[str, Any]] = []

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        self.send_options.append(kwargs)
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        result = answer if isinstance(answer, requests.Response) else answer(request)
        result.request = request
        result.url = request.url or ""
        return result

    def close(self) -> None:
        """Nothing to release."""

    def query(self, index: int) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.sent[index].url or "").query).items()}

    def form(self, index: int) -> dict[str, str]:
        body = self.sent[index].body or ""
        text = body.decode() if isinstance(body, bytes) else body
        return {k: v[0] for k, v in parse_qs(text).items()}

    def path(self, index: int) -> str:
        return urlsplit(self.sent[index].url or "").path


class RotatingCredentials:
    """A provider whose forced fetch returns the next credentials in line (a rotated token)."""

    def __init__(self, *sequence: GraphCredentials) -> None:
        self._sequence = list(sequence)
        self.forced_fetches = 0

    def get(self, *, force_fetch: bool = False) -> GraphCredentials:
        if force_fetch:
            self.forced_fetches += 1
            if len(self._sequence) > 1:
                self._sequence.pop(0)
        return self._sequence[0]


@pytest.fixture
def graph() -> ScriptedGraph:
    return ScriptedGraph()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(graph: ScriptedGraph, sleeps: list[float]) -> Callable[..., GraphApiClient]:
    def build(provider: Any = None, **options: Any) -> GraphApiClient:
        session = requests.Session()
        session.mount(BASE, graph)
        defaults: dict[str, Any] = {"session": session, "sleep": sleeps.append, "random": lambda: 0.5}
        return GraphApiClient(
            BASE, "v25.0", provider or StaticCredentialsProvider(credentials()), **{**defaults, **options}
        )

    return build


@pytest.fixture
def client(make_client: Callable[..., GraphApiClient]) -> GraphApiClient:
    return make_client()


# --- signing and encoding ---------------------------------------------------------------------------------------------


def test_get_is_signed_with_token_and_appsecret_proof_on_the_configured_version(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(response(200, {"id": "1001"}))
    assert client.get("1001", {"fields": "id,name", "summary": True}) == {"id": "1001"}
    assert graph.path(0) == "/v25.0/1001"
    assert graph.query(0) == {"fields": "id,name", "summary": "true", "access_token": TOKEN, "appsecret_proof": proof()}
    assert graph.send_options[0]["timeout"] == (3.05, 30)


def test_post_keeps_secrets_out_of_the_url_and_encodes_json(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(response(200, {"success": True}))
    client.post("2001/things", {"list": [{"a": 1}], "flag": False, "n": 3})
    assert urlsplit(graph.sent[0].url or "").query == ""
    assert graph.form(0) == {
        "list": '[{"a":1}]',
        "flag": "false",
        "n": "3",
        "access_token": TOKEN,
        "appsecret_proof": proof(),
    }


def test_caller_cannot_smuggle_its_own_token(client: GraphApiClient) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.get("me", {"access_token": "other"})
    assert caught.value.field == "access_token"


def test_default_session_pools_connections_and_leaves_retries_to_the_client() -> None:
    client = GraphApiClient(BASE, "v25.0", StaticCredentialsProvider(credentials()))
    adapter = client._session.get_adapter("https://graph.facebook.com/v25.0/me")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter.max_retries.total == 0
    assert adapter is client._session.get_adapter("https://graph.facebook.com/v25.0/other")


# --- transient failures -----------------------------------------------------------------------------------------------


def test_transient_errors_back_off_exponentially_with_full_jitter(
    graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]
) -> None:
    graph.queue(
        graph_error(500, 2, is_transient=True),
        graph_error(500, 1),
        response(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}),
        response(200, {"ok": True}),
    )
    assert client.get("x") == {"ok": True}
    # random() = 0.5 of min(cap, 0.5 * 2^(n-1)): 0.5*0.5, 0.5*1, 0.5*2
    assert sleeps == [0.25, 0.5, 1.0]


def test_backoff_is_capped(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient], sleeps: list[float]
) -> None:
    client = make_client(backoff_base=1.0, backoff_cap=3.0, random=lambda: 1.0, max_attempts=5)
    graph.queue(*[graph_error(500, 2) for _ in range(4)], response(200, {}))
    client.get("x")
    assert sleeps == [1.0, 2.0, 3.0, 3.0]


def test_gives_up_after_max_attempts_with_a_transient_error(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient], sleeps: list[float]
) -> None:
    client = make_client(max_attempts=3)
    graph.queue(*[graph_error(503, 2, "Service temporarily unavailable") for _ in range(3)])
    with pytest.raises(GraphTransientError) as caught:
        client.get("x")
    assert len(graph.sent) == 3 and len(sleeps) == 2
    assert caught.value.code == 2 and caught.value.http_status == 503


def test_is_transient_flag_on_a_4xx_is_retried(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(graph_error(400, 99, is_transient=True), response(200, {"ok": 1}))
    assert client.get("x") == {"ok": 1}


def test_network_failures_are_retried_and_never_leak_the_token(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient]
) -> None:
    client = make_client(max_attempts=2)
    leaky = f"Max retries exceeded with url: /v25.0/x?access_token={TOKEN}&appsecret_proof={proof()}"
    graph.queue(requests.ConnectionError(leaky), requests.ReadTimeout(leaky))
    with pytest.raises(GraphTransientError) as caught:
        client.get("x")
    printed = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in printed and proof() not in printed
    assert "ReadTimeout" in str(caught.value) and "access_token=REDACTED" in str(caught.value)


def test_timeout_then_success(graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]) -> None:
    graph.queue(requests.ConnectTimeout("slow"), response(200, {"ok": 1}))
    assert client.get("x") == {"ok": 1}
    assert sleeps == [0.25]


# --- throttling -------------------------------------------------------------------------------------------------------


def test_short_announced_throttle_is_waited_inline(
    graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]
) -> None:
    graph.queue(
        graph_error(400, 80014, "too many batch calls", buc(("1001", 100, 0.25))),
        response(200, {"handles": ["h"]}, buc(("1001", 40, 0))),
    )
    assert client.post("1001/items_batch") == {"handles": ["h"]}
    assert sleeps == [15.0]  # 0.25 minutes
    assert client.usage_percent == 40


def test_long_throttle_is_raised_at_once_with_the_wait_in_seconds(
    graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]
) -> None:
    graph.queue(graph_error(400, 80014, "too many batch calls", buc(("1001", 100, 2), ("2001", 100, 5))))
    with pytest.raises(GraphThrottledError) as caught:
        client.post("1001/items_batch")
    assert caught.value.retry_after_seconds == 300  # the longest of the entries, minutes -> seconds
    assert sleeps == [] and len(graph.sent) == 1
    assert client.usage_percent == 100


def test_throttle_without_an_estimate_backs_off(
    graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]
) -> None:
    graph.queue(
        graph_error(400, 4, "Application request limit reached", {"X-App-Usage": '{"call_count": 100}'}),
        response(200, {}),
    )
    client.get("x")
    assert sleeps == [0.25]


def test_http_429_honours_retry_after(graph: ScriptedGraph, client: GraphApiClient, sleeps: list[float]) -> None:
    graph.queue(response(429, b"", {"Retry-After": "7"}), response(200, {}))
    client.get("x")
    assert sleeps == [7.0]


def test_throttle_that_outlasts_the_attempts_is_raised(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient], sleeps: list[float]
) -> None:
    client = make_client(max_attempts=2)
    graph.queue(*[graph_error(400, 17, "User request limit reached", buc(("1", 90, 0.1))) for _ in range(2)])
    with pytest.raises(GraphThrottledError) as caught:
        client.get("x")
    assert sleeps == [6.0] and caught.value.retry_after_seconds == 6.0


def test_usage_is_tracked_from_successful_answers(graph: ScriptedGraph, client: GraphApiClient) -> None:
    assert client.usage_percent == 0
    graph.queue(response(200, {}, {"X-App-Usage": '{"call_count": 12, "total_cputime": 87, "total_time": 3}'}))
    client.get("x")
    assert client.usage_percent == 87
    assert client.last_usage is not None and client.last_usage.app is not None


# --- credentials ------------------------------------------------------------------------------------------------------


def test_expired_token_is_fetched_again_once_and_the_call_retried(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient]
) -> None:
    provider = RotatingCredentials(credentials("old-token"), credentials("new-token"))
    client = make_client(provider)
    graph.queue(
        graph_error(400, 190, "Error validating access token: Session has expired", type="OAuthException"),
        response(200, {"ok": 1}),
    )
    assert client.get("x") == {"ok": 1}
    assert provider.forced_fetches == 1
    assert [graph.query(i)["access_token"] for i in range(2)] == ["old-token", "new-token"]
    assert graph.query(1)["appsecret_proof"] == proof("new-token")


def test_token_still_rejected_after_the_refresh_is_an_auth_error(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient]
) -> None:
    provider = RotatingCredentials(credentials("old-token"), credentials("new-token"))
    client = make_client(provider)
    graph.queue(*[graph_error(400, 190, "Invalid OAuth access token", type="OAuthException") for _ in range(2)])
    with pytest.raises(GraphAuthError) as caught:
        client.get("x")
    assert provider.forced_fetches == 1 and len(graph.sent) == 2
    assert caught.value.code == 190


def test_unchanged_credentials_are_not_retried(
    graph: ScriptedGraph, make_client: Callable[..., GraphApiClient]
) -> None:
    provider = RotatingCredentials(credentials())
    client = make_client(provider)
    graph.queue(graph_error(400, 190, "Invalid OAuth access token", type="OAuthException"))
    with pytest.raises(GraphAuthError):
        client.get("x")
    assert provider.forced_fetches == 1 and len(graph.sent) == 1


def test_error_message_echoing_the_token_is_redacted(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(graph_error(400, 190, f"Malformed access token {TOKEN} (proof {proof()})", type="OAuthException"))
    with pytest.raises(GraphAuthError) as caught:
        client.get("x")
    for text in (str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))):
        assert TOKEN not in text and proof() not in text and APP_SECRET not in text


# --- error types ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (graph_error(403, 200, "Permissions error", type="OAuthException"), GraphPermissionError),
        (graph_error(400, 100, "Invalid parameter", type="GraphMethodException"), GraphValidationError),
        (
            graph_error(400, 12, "(#12) commerce_orders is deprecated for versions v26.0 and higher"),
            GraphEndpointRemovedError,
        ),
        (response(200, b"not json"), GraphResponseError),
        (response(200, [1, 2]), GraphResponseError),
        (response(404, b"<html>nope</html>"), GraphResponseError),
        (response(400, {"error": {"message": {"nested": "odd"}}}), GraphResponseError),
    ],
)
def test_each_failure_has_its_type_and_is_not_retried(
    graph: ScriptedGraph, client: GraphApiClient, answer: requests.Response, expected: type[GraphApiError]
) -> None:
    graph.queue(answer)
    with pytest.raises(expected) as caught:
        client.get("2001/commerce_orders")
    assert len(graph.sent) == 1
    assert caught.value.endpoint == "GET 2001/commerce_orders"


def test_removed_edge_detected_from_unknown_path_message(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(graph_error(400, 100, "Unknown path components: /commerce_orders", type="OAuthException"))
    with pytest.raises(GraphEndpointRemovedError):
        next(client.list_commerce_orders("2001", states=[OrderState.CREATED]))


# --- paging -----------------------------------------------------------------------------------------------------------


def page(data: list[Any], after: str | None, more: bool) -> requests.Response:
    paging: dict[str, Any] = {"cursors": {"before": "b", "after": after}}
    if more:
        paging["next"] = f"{BASE}/v25.0/x?access_token={TOKEN}&after={after}"
    return response(200, {"data": data, "paging": paging})


def test_paginate_follows_the_after_cursor_until_no_next(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(page([1, 2], "c1", True), page([3], "c2", True), page([4], "c3", False))
    pages = list(client.paginate("1001/products", {"fields": "id"}))
    assert [p.data for p in pages] == [[1, 2], [3], [4]]
    assert [p.after for p in pages] == ["c1", "c2", "c3"]
    assert [p.has_next for p in pages] == [True, True, False]
    assert "after" not in graph.query(0)
    assert [graph.query(i)["after"] for i in (1, 2)] == ["c1", "c2"]
    assert all(graph.query(i)["fields"] == "id" for i in range(3))


def test_paginate_stops_on_a_next_without_cursor_or_a_repeating_cursor(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(response(200, {"data": [], "paging": {"next": "http://x"}}))
    with pytest.raises(GraphResponseError) as caught:
        list(client.paginate("p"))
    assert caught.value.field == "paging.cursors.after"
    graph.queue(page([1], "same", True), page([2], "same", True))
    with pytest.raises(GraphResponseError, match="repeats"):
        list(client.paginate("p"))


def test_page_without_data_is_a_response_error(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(response(200, {"paging": {}}))
    with pytest.raises(GraphResponseError) as caught:
        list(client.paginate("p"))
    assert caught.value.field == "data"


# --- domain calls -----------------------------------------------------------------------------------------------------


def order(order_id: str, quantity: Any = 1, state: str = "CREATED") -> dict[str, Any]:
    return {
        "id": order_id,
        "order_status": {"state": state},
        "created": "2026-11-01T10:00:00+0000",
        "last_updated": "2026-11-01T10:05:00+0000",
        "items": {"data": [{"id": f"{order_id}-l", "retailer_id": "SKU-1", "product_id": "9", "quantity": quantity}]},
    }


def test_list_commerce_orders_pages_with_cursors_and_rejects_bad_orders_alone(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(
        page([order("o-1"), order("o-2", quantity="lots"), order("o-3", state="LOST")], "c1", True),
        page([order("o-4", state="FB_PROCESSING")], "c2", False),
    )
    pages = list(
        client.list_commerce_orders(
            "2001",
            states=[OrderState.FB_PROCESSING, OrderState.CREATED],
            updated_after=datetime(2026, 11, 1, tzinfo=UTC),
            limit=25,
            after="c0",
        )
    )
    assert [[o.id for o in p.orders] for p in pages] == [["o-1"], ["o-4"]]
    assert [(r.raw["id"], r.error.field) for r in pages[0].rejected] == [
        ("o-2", "data[1].items.data[0].quantity"),
        ("o-3", "data[2].order_status.state"),
    ]
    assert [(p.after, p.has_next) for p in pages] == [("c1", True), ("c2", False)]
    first = graph.query(0)
    assert graph.path(0) == "/v25.0/2001/commerce_orders"
    assert first["state"] == "FB_PROCESSING,CREATED"
    assert first["updated_after"] == str(int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()))
    assert first["limit"] == "25" and first["after"] == "c0"
    assert "items{id,retailer_id,product_id,quantity}" in first["fields"]
    assert graph.query(1)["after"] == "c1"


def test_list_commerce_orders_refuses_ambiguous_arguments(client: GraphApiClient) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.list_commerce_orders("2001", states=[])  # refused at the call, before any iteration
    assert caught.value.field == "states"
    with pytest.raises(InvalidInputError) as caught:
        client.list_commerce_orders("2001", states=[OrderState.CREATED], updated_before=datetime(2026, 1, 1))
    assert caught.value.field == "updated_before"


def test_acknowledge_orders_sends_the_orders_and_reports_each_outcome(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(
        response(
            200,
            {
                "orders": [
                    {"id": "o-1", "state": "IN_PROGRESS"},
                    {"id": "o-2", "error": {"message": "(#100) Order o-2 is not CREATED", "code": 100}},
                ]
            },
        )
    )
    result = client.acknowledge_orders(
        "2001",
        [
            OrderAcknowledgement(id="o-1", merchant_order_reference="WH-1"),
            OrderAcknowledgement(id="o-2", merchant_order_reference="WH-2"),
        ],
        idempotency_key="k-1",
    )
    assert result.orders[0].state is OrderState.IN_PROGRESS
    assert [order.id for order in result.failed] == ["o-2"]
    form = graph.form(0)
    assert graph.path(0) == "/v25.0/2001/acknowledge_orders"
    assert json.loads(form["orders"]) == [
        {"id": "o-1", "merchant_order_reference": "WH-1"},
        {"id": "o-2", "merchant_order_reference": "WH-2"},
    ]
    assert form["idempotency_key"] == "k-1"


def test_cancel_order_sends_reason_items_and_restock(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(response(200, {"success": True}))
    client.cancel_order(
        "o-1",
        [CancelLine(retailer_id="SKU-1", quantity=2)],
        reason_code=CancelReasonCode.OUT_OF_STOCK,
        reason_description="sold elsewhere",
        restock_items=False,
        idempotency_key="cancel-o-1",
    )
    form = graph.form(0)
    assert graph.path(0) == "/v25.0/o-1/cancellations"
    assert json.loads(form["cancel_reason"]) == {"reason_code": "OUT_OF_STOCK", "reason_description": "sold elsewhere"}
    assert json.loads(form["items"]) == [{"retailer_id": "SKU-1", "quantity": 2}]
    assert form["restock_items"] == "false" and form["idempotency_key"] == "cancel-o-1"


def test_success_false_is_a_response_error(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(response(200, {"success": False}))
    with pytest.raises(GraphResponseError) as caught:
        client.cancel_order(
            "o-1",
            None,
            reason_code=CancelReasonCode.CUSTOMER_REQUESTED,
            reason_description="",
            restock_items=True,
            idempotency_key="k",
        )
    assert caught.value.field == "success"
    assert "items" not in graph.form(0)


def test_items_batch_sends_updates_and_parses_the_handle(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(
        response(
            200, {"handles": ["h-1"], "validation_status": [{"retailer_id": "SKU-2", "errors": [{"message": "x"}]}]}
        )
    )
    result = client.items_batch(
        "1001",
        [
            ItemUpdate(retailer_id="SKU-1", fields={"quantity_to_sell_on_facebook": 3}),
            ItemUpdate(retailer_id="SKU-2", fields={"quantity_to_sell_on_facebook": 0, "visibility": "staging"}),
        ],
    )
    assert result.handles == ["h-1"]
    assert result.validation_status[0].errors[0].message == "x"
    form = graph.form(0)
    assert form["item_type"] == "PRODUCT_ITEM" and form["allow_upsert"] == "false"
    assert json.loads(form["requests"]) == [
        {"method": "UPDATE", "data": {"quantity_to_sell_on_facebook": 3, "id": "SKU-1"}},
        {"method": "UPDATE", "data": {"quantity_to_sell_on_facebook": 0, "visibility": "staging", "id": "SKU-2"}},
    ]


def test_items_batch_refuses_empty_and_oversized_batches_without_calling(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    update = ItemUpdate(retailer_id="S", fields={"quantity_to_sell_on_facebook": 1})
    for size in (0, MAX_BATCH_REQUESTS + 1):
        with pytest.raises(InvalidInputError):
            client.items_batch("1001", [update] * size)
    assert graph.sent == []


def test_check_batch_request_status(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(
        response(
            200,
            {
                "data": [
                    {
                        "handle": "h-1",
                        "status": "finished",
                        "errors": [{"line": 1, "id": "SKU-2", "message": "no such item"}],
                        "errors_total_count": 1,
                        "ids_of_invalid_requests": ["SKU-2"],
                    }
                ]
            },
        )
    )
    status = client.check_batch_request_status("1001", "h-1")
    assert status.status is BatchStatus.FINISHED and status.ids_of_invalid_requests == ["SKU-2"]
    assert graph.query(0)["handle"] == "h-1" and graph.query(0)["load_ids_of_invalid_requests"] == "true"


def test_check_batch_request_status_rejects_unknown_status_and_missing_handle(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(response(200, {"data": [{"handle": "h-1", "status": "melted"}]}), response(200, {"data": []}))
    with pytest.raises(GraphResponseError) as caught:
        client.check_batch_request_status("1001", "h-1")
    assert caught.value.field == "data[0].status"
    with pytest.raises(GraphResponseError) as caught:
        client.check_batch_request_status("1001", "h-1")
    assert caught.value.field == "data"


def test_update_product_posts_to_the_base64url_item_node(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(response(200, {"success": True}))
    client.update_product("1001", "~~~", {"quantity_to_sell_on_facebook": 0})
    assert product_path("1001", "SKU-1") == "catalog:1001:U0tVLTE"  # no "=" padding
    assert graph.path(0) == "/v25.0/catalog:1001:fn5-"  # url-safe alphabet ("+" -> "-")
    assert graph.form(0)["quantity_to_sell_on_facebook"] == "0"


def test_list_products_pages(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(
        page(
            [{"id": "1", "retailer_id": "SKU-1", "quantity_to_sell_on_facebook": 4, "visibility": "published"}],
            "c1",
            True,
        ),
        page([{"id": "2", "quantity_to_sell_on_facebook": 1}], "c2", False),
    )
    pages = list(client.list_products("1001"))
    assert pages[0].products[0].quantity_to_sell_on_facebook == 4
    assert pages[1].products == [] and pages[1].rejected[0].error.field == "data[0].retailer_id"
    assert graph.query(0)["fields"] == "id,retailer_id,quantity_to_sell_on_facebook,visibility"


def test_list_products_filters_by_retailer_id_and_resumes_from_a_saved_cursor(
    graph: ScriptedGraph, client: GraphApiClient
) -> None:
    graph.queue(page([{"id": "2", "retailer_id": "SKU-2"}], "c2", True), page([], None, False))

    listing = client.list_products("1001", retailer_ids=["SKU-1", "SKU-2", "SKU-1"], after="c1", limit=1)
    assert graph.sent == []  # lazy: nothing is called until the pages are read
    pages = list(listing)

    assert graph.query(0)["filter"] == '{"retailer_id":{"is_any":["SKU-1","SKU-2"]}}'
    assert (graph.query(0)["after"], graph.query(0)["limit"]) == ("c1", "1")
    assert (graph.query(1)["after"], graph.query(1)["filter"]) == ("c2", graph.query(0)["filter"])
    assert [(p.after, p.has_next) for p in pages] == [("c2", True), (None, False)]
    assert pages[0].products[0].retailer_id == "SKU-2"


def test_list_products_without_a_filter_sends_none(graph: ScriptedGraph, client: GraphApiClient) -> None:
    graph.queue(page([], None, False))
    list(client.list_products("1001", "id,retailer_id"))
    assert "filter" not in graph.query(0) and "after" not in graph.query(0)
    assert graph.query(0)["fields"] == "id,retailer_id"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"retailer_ids": "SKU-1"}, "retailer_ids"),
        ({"retailer_ids": []}, "retailer_ids"),
        ({"retailer_ids": [f"SKU-{n}" for n in range(101)]}, "retailer_ids"),
        ({"retailer_ids": ["SKU-1", "SKU\n2"]}, "retailer_ids"),
        ({"retailer_ids": [" SKU-1"]}, "retailer_ids"),
        ({"retailer_ids": [""]}, "retailer_ids"),
        ({"after": ""}, "after"),
        ({"limit": 0}, "limit"),
    ],
)
def test_list_products_refuses_bad_arguments_at_the_call(
    graph: ScriptedGraph, client: GraphApiClient, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        client.list_products("1001", **arguments)
    assert refused.value.field == field
    assert graph.sent == []


def test_a_product_record_out_of_bounds_is_rejected_alone(graph: ScriptedGraph, client: GraphApiClient) -> None:
    good = {"id": "1", "retailer_id": "SKU-1", "quantity_to_sell_on_facebook": 10**38 - 1, "visibility": "published"}
    graph.queue(
        page(
            [
                {**good, "quantity_to_sell_on_facebook": -1},
                {**good, "quantity_to_sell_on_facebook": 10**38},
                {**good, "quantity_to_sell_on_facebook": "3"},
                {**good, "retailer_id": "SKU\u00001"},
                {**good, "retailer_id": "SKU-1 "},
                {**good, "id": "1\r"},
                {**good, "visibility": ""},
                {**good, "inventory": -2},
                good,
                {**good, "visibility": "hidden", "inventory": 4},
            ],
            None,
            False,
        )
    )

    (only,) = list(client.list_products("1001"))

    assert [product.visibility for product in only.products] == ["published", "hidden"]
    assert only.products[0].quantity_to_sell_on_facebook == 10**38 - 1 and only.products[1].inventory == 4
    assert [rejected.error.field for rejected in only.rejected] == [
        "data[0].quantity_to_sell_on_facebook",
        "data[1].quantity_to_sell_on_facebook",
        "data[2].quantity_to_sell_on_facebook",
        "data[3].retailer_id",
        "data[4].retailer_id",
        "data[5].id",
        "data[6].visibility",
        "data[7].inventory",
    ]
