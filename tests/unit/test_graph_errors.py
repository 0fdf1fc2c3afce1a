"""Graph API error classification and redaction."""

from __future__ import annotations

import pytest

from stocksync.errors import InvalidInputError, StockSyncError
from stocksync.models.graph import BusinessUseCaseUsage, GraphErrorBody, GraphUsage
from stocksync.models.graph_errors import (
    GraphApiError,
    GraphAuthError,
    GraphEndpointRemovedError,
    GraphPermissionError,
    GraphResponseError,
    GraphThrottledError,
    GraphTransientError,
    GraphValidationError,
    error_from_response,
    redact,
)


def classify(
    status: int,
    *,
    code: int | None,
    message: str = "boom",
    type: str | None = None,
    is_transient: bool = False,
    edge: str = "items_batch",
    usage: GraphUsage | None = None,
    retry_after: float | None = None,
) -> GraphApiError:
    body = GraphErrorBody(message=message, type=type, code=code, is_transient=is_transient, fbtrace_id="AbC")
    return error_from_response(
        status,
        body,
        endpoint=f"POST 1001/{edge}",
        edge=edge,
        usage=usage,
        retry_after_header=retry_after,
        secrets=("tok-SECRET",),
    )


@pytest.mark.parametrize(
    ("status", "code", "type_", "message", "expected"),
    [
        (400, 190, "OAuthException", "Error validating access token: Session has expired", GraphAuthError),
        (400, 102, "OAuthException", "Session key invalid", GraphAuthError),
        (400, 463, "OAuthException", "expired", GraphAuthError),
        (400, 467, "OAuthException", "invalid", GraphAuthError),
        (400, 2500, "OAuthException", "An active access token must be used", GraphAuthError),
        (400, 100, "GraphMethodException", "Invalid appsecret_proof provided in the API argument", GraphAuthError),
        (403, 10, "OAuthException", "Application does not have permission", GraphPermissionError),
        (403, 200, "OAuthException", "Permissions error", GraphPermissionError),
        (403, 299, "OAuthException", "Permissions error", GraphPermissionError),
        (400, 100, "GraphMethodException", "Invalid parameter", GraphValidationError),
        (400, 368, "OAuthException", "blocked", GraphValidationError),
        (404, None, None, "not found", GraphValidationError),
        (400, 4, "OAuthException", "Application request limit reached", GraphThrottledError),
        (400, 17, "OAuthException", "User request limit reached", GraphThrottledError),
        (400, 32, None, "Page request limit reached", GraphThrottledError),
        (400, 613, None, "Calls to this api have exceeded the rate limit", GraphThrottledError),
        (400, 80001, None, "too many calls to this Page", GraphThrottledError),
        (400, 80004, None, "too many calls to this ad-account", GraphThrottledError),
        (400, 80009, None, "too many calls to this catalog account", GraphThrottledError),
        (400, 80014, None, "too many batch calls for this catalog", GraphThrottledError),
        (429, None, None, "slow down", GraphThrottledError),
        (500, 1, None, "An unknown error occurred", GraphTransientError),
        (500, 2, None, "Service temporarily unavailable", GraphTransientError),
        (503, None, None, "no code at all", GraphTransientError),
        (
            400,
            12,
            "OAuthException",
            "(#12) commerce_orders is deprecated for versions v26.0 and higher",
            GraphEndpointRemovedError,
        ),
        (500, 999, None, "odd", GraphTransientError),
    ],
)
def test_classification(status: int, code: int | None, type_: str | None, message: str, expected: type) -> None:
    error = classify(status, code=code, type=type_, message=message)
    assert type(error) is expected
    assert error.code == code and error.http_status == status and error.fbtrace_id == "AbC"


def test_is_transient_flag_makes_any_code_transient() -> None:
    assert type(classify(400, code=99, is_transient=True)) is GraphTransientError


def test_unknown_edge_naming_the_requested_edge_is_a_removed_endpoint() -> None:
    for message in (
        "(#100) Tried accessing nonexisting field (commerce_orders) on node type (CommerceMerchantSettings)",
        "Unknown path components: /commerce_orders",
    ):
        for code in (100, 2500):
            error = classify(400, code=code, message=message, edge="commerce_orders")
            assert type(error) is GraphEndpointRemovedError
    assert type(classify(400, code=2500, message="Unknown path components: /foo", edge="foo")) is (
        GraphEndpointRemovedError
    )
    assert type(classify(400, code=2500, message="Unknown path components: /foo", edge="products")) is (
        GraphValidationError
    )


def test_nonexisting_field_in_the_fields_parameter_is_a_validation_error() -> None:
    message = "(#100) Tried accessing nonexisting field (colour) on node type (ProductItem)"
    assert type(classify(400, code=100, message=message, edge="products")) is GraphValidationError


def test_throttled_error_carries_the_longest_announced_wait_in_seconds() -> None:
    usage = GraphUsage(
        business_use_cases={
            "1": [BusinessUseCaseUsage(call_count=100, estimated_time_to_regain_access=3)],
            "2": [BusinessUseCaseUsage(call_count=10, estimated_time_to_regain_access=1)],
        }
    )
    error = classify(400, code=80014, usage=usage, retry_after=30)
    assert isinstance(error, GraphThrottledError)
    assert error.retry_after_seconds == 180
    assert error.usage is usage
    assert classify(429, code=None, retry_after=42).retry_after_seconds == 42  # type: ignore[attr-defined]
    assert classify(400, code=4).retry_after_seconds == 0  # type: ignore[attr-defined]


def test_message_is_redacted_and_says_where_and_what() -> None:
    error = classify(400, code=100, message="bad value in ?access_token=tok-SECRET&x=1, token tok-SECRET")
    text = str(error)
    assert "tok-SECRET" not in text
    assert text.startswith("POST 1001/items_batch: (#100) ")
    assert "access_token=REDACTED" in text and "HTTP 400" in text and "fbtrace_id AbC" in text


def test_redact_removes_query_and_form_secrets_bearer_tokens_and_literals() -> None:
    text = (
        "GET https://graph.facebook.com/v25.0/1?fields=id&access_token=EAAB123&appsecret_proof=abc123 "
        "Authorization: Bearer EAAB123 body=app-secret-xyz"
    )
    redacted = redact(text, ("EAAB123", "app-secret-xyz", ""))
    assert "EAAB123" not in redacted and "abc123" not in redacted and "app-secret-xyz" not in redacted
    assert "fields=id" in redacted
    assert "appsecret_proof=REDACTED" in redacted


def test_auth_error_knows_when_fresh_credentials_may_help() -> None:
    assert GraphAuthError("expired", code=190).credentials_may_have_rotated
    assert GraphAuthError("Invalid appsecret_proof provided in the API argument", code=100).credentials_may_have_rotated
    assert not GraphAuthError("session key invalid", code=102).credentials_may_have_rotated


def test_response_error_is_both_a_graph_error_and_an_input_error() -> None:
    error = GraphResponseError("data[3].items.data[0].quantity", "must be >= 1", raw={"id": "o"}, endpoint="GET x")
    assert isinstance(error, GraphApiError) and isinstance(error, InvalidInputError)
    assert isinstance(error, StockSyncError)
    assert error.field == "data[3].items.data[0].quantity" and error.raw == {"id": "o"}
    assert str(error) == "GET x: data[3].items.data[0].quantity: must be >= 1"
    assert "'o'" not in repr(error)  # the raw record stays an attribute, out of messages
