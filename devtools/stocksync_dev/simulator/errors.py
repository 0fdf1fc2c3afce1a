"""The simulator's errors: domain refusals for the Python API, and Graph error answers for the HTTP API.

Graph errors carry the exact body shape and HTTP status the real Graph API uses
(``{"error": {"message", "type", "code", "error_subcode"?, "is_transient"?, "fbtrace_id"}}``), so a client's error
handling is exercised against the same shapes it will meet in production.
"""

from __future__ import annotations

import secrets
from typing import Any

OAUTH_EXCEPTION = "OAuthException"
GRAPH_METHOD_EXCEPTION = "GraphMethodException"

# Messages of the throttling codes the product must honour (docs/graph-api.md, "Rate limits").
THROTTLE_MESSAGES: dict[int, str] = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80004: "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
    80009: "(#80009) There have been too many calls to this Catalog account. Wait a bit and try again.",
    80014: "(#80014) There have been too many calls for the batch uploads to this catalog account. "
    "Wait a bit and try again.",
}

_TRANSIENT_MESSAGES: dict[int, str] = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
}


class OrderRefused(Exception):
    """The platform refused a buyer's order (too few units left, product staging or unknown); nothing changed."""

    def __init__(self, retailer_id: str, requested: int, available: int, reason: str) -> None:
        super().__init__(f"order refused for {retailer_id}: {reason} (asked {requested}, {available} left)")
        self.retailer_id = retailer_id
        self.requested = requested
        self.available = available
        self.reason = reason


class OrderActionRefused(ValueError):
    """An order action that the platform does not allow in the order's current state; nothing changed."""


class UnknownOrderError(LookupError):
    """No order with this id exists on the platform."""


class GraphError(Exception):
    """One Graph API error answer: HTTP status, error body and the extra headers sent with it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 400,
        error_type: str = OAUTH_EXCEPTION,
        subcode: int | None = None,
        is_transient: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.error_type = error_type
        self.subcode = subcode
        self.is_transient = is_transient
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
        return {"error": error}


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token.")


def invalid_appsecret_proof() -> GraphError:
    return GraphError(100, "Invalid appsecret_proof provided in the API argument", error_type=GRAPH_METHOD_EXCEPTION)


def missing_appsecret_proof() -> GraphError:
    """No proof at all while the app requires one: Graph's own wording, code 100, GraphMethodException, as quoted
    from real answers in https://github.com/facebookarchive/offline-conversion-file-uploader/issues/7 and
    https://github.com/sromku/android-simple-facebook/issues/160 (the reference pages do not list it)."""
    return GraphError(
        100, "API calls from the server require an appsecret_proof argument", error_type=GRAPH_METHOD_EXCEPTION
    )


def invalid_parameter(message: str) -> GraphError:
    """Code 100: the catch-all for a bad or missing parameter, and for actions the object's state forbids."""
    return GraphError(100, f"(#100) {message}")


def missing_parameter(name: str) -> GraphError:
    return invalid_parameter(f"The parameter {name} is required")


def unknown_parameter(name: str, endpoint: str) -> GraphError:
    """A parameter the endpoint does not take (or one Meta declares that the simulator does not model).

    Code 100 naming the parameter, as Graph refuses a bad parameter; the exact wording Graph uses for an unexpected
    parameter is not documented in the reference pages, so this message is the simulator's own.
    """
    return invalid_parameter(f"Param {name} is not a valid parameter of {endpoint} on this simulator")


def unsupported_request(method: str, object_id: str) -> GraphError:
    """What Graph answers for an id that does not exist (or is not visible to the token)."""
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        error_type=GRAPH_METHOD_EXCEPTION,
        subcode=33,
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(2500, f"Unknown path components: {path}")


def commerce_orders_removed() -> GraphError:
    return GraphError(12, "(#12) commerce_orders is deprecated for versions v26.0 and higher")


def too_much_data() -> GraphError:
    return GraphError(1, "Please reduce the amount of data you're asking for, then retry your request")


def throttled(code: int, headers: dict[str, str]) -> GraphError:
    message = THROTTLE_MESSAGES.get(code, f"(#{code}) Rate limit reached")
    return GraphError(code, message, is_transient=True, headers=headers)


def transient_failure(status: int, code: int) -> GraphError:
    message = _TRANSIENT_MESSAGES.get(code, _TRANSIENT_MESSAGES[2])
    return GraphError(code, message, status=status, is_transient=True)


def internal_failure() -> GraphError:
    """A bug in the simulator itself: answered like Graph's unknown error so the client sees a retryable failure."""
    return GraphError(1, _TRANSIENT_MESSAGES[1], status=500, is_transient=True)
