"""Graph API failures as types, so each caller reacts by kind: retry, back off, refresh, alarm or dead-letter.

Classification follows docs/graph-api.md ("Errors", "Rate limits"). Every message is built from fields Meta returns
plus the endpoint path (never its query string), and passes ``redact`` so an access token or appsecret_proof can
never reach a log line, an exception message or a dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from stocksync.errors import InvalidInputError, StockSyncError
from stocksync.models.graph import GraphErrorBody, GraphUsage

THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80004, 80009, 80014})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({102, 190, 463, 467})
TOKEN_INVALID_CODE = 190
DEPRECATED_CODE = 12
INVALID_PARAMETER_CODE = 100
UNKNOWN_PATH_CODE = 2500
MISSING_OBJECT_SUBCODE = 33  # "Unsupported get request. Object with ID ... does not exist, ..., or does not support"
HTTP_TOO_MANY_REQUESTS = 429

_SECRET_PARAM = re.compile(r"(?i)\b(access_token|appsecret_proof)=[^&\s'\"]*")
_BEARER = re.compile(r"(?i)\b(bearer|oauth)\s+[A-Za-z0-9._\-|]+")
_NONEXISTING_FIELD = re.compile(r"nonexisting field \(([^)]*)\)", re.IGNORECASE)
_UNKNOWN_PATH = "unknown path components"
_UNSUPPORTED_REQUEST = re.compile(r"^unsupported (get|post|delete) request", re.IGNORECASE)
REDACTED = "REDACTED"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without secret query/form parameters, bearer tokens and any of the literal ``secrets``."""
    text = _SECRET_PARAM.sub(rf"\1={REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class GraphApiError(StockSyncError):
    """Base of every Graph API failure; the fields are Meta's ``error`` object plus the HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        type: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.subcode = subcode
        self.type = type
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.endpoint = endpoint
        # Not super(): GraphResponseError also inherits InvalidInputError, whose __init__ takes other arguments.
        Exception.__init__(self, self._describe())

    def _describe(self) -> str:
        code = "" if self.code is None else f"(#{self.code}{'' if self.subcode is None else f'/{self.subcode}'}) "
        details = [self.type] if self.type else []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.fbtrace_id:
            details.append(f"fbtrace_id {self.fbtrace_id}")
        where = f"{self.endpoint}: " if self.endpoint else ""
        suffix = f" [{', '.join(details)}]" if details else ""
        return f"{where}{code}{self.message}{suffix}"


class GraphAuthError(GraphApiError):
    """The token (or the app secret behind appsecret_proof) is invalid, expired or revoked: alarm, do not retry."""

    @property
    def credentials_may_have_rotated(self) -> bool:
        """True when fetching the credentials again may fix it (the token or the app secret was rotated)."""
        return self.code == TOKEN_INVALID_CODE or "appsecret_proof" in self.message


class GraphPermissionError(GraphApiError):
    """The token works but lacks a permission or role on the object (codes 10, 200-299)."""


class GraphValidationError(GraphApiError):
    """Meta rejected the request itself (code 100 and other 4xx): retrying the same request cannot help."""


class GraphThrottledError(GraphApiError):
    """Meta throttled the app or a business use case; come back after ``retry_after_seconds``.

    ``retry_after_seconds`` comes from ``X-Business-Use-Case-Usage`` (or ``Retry-After``); 0 means Meta gave no
    estimate, in which case the client fills in its own backoff before raising.
    """

    def __init__(self, message: str, *, retry_after_seconds: float, usage: GraphUsage | None, **fields: Any) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.usage = usage
        super().__init__(message, **fields)


class GraphTransientError(GraphApiError):
    """A failure Meta says is temporary (5xx, codes 1 and 2, ``is_transient``) or a network failure, after retries."""


class GraphEndpointRemovedError(GraphApiError):
    """The endpoint no longer exists in this API version (code 12, or an unknown edge): stop calling it."""


def says_object_unreachable(error: GraphApiError) -> bool:
    """Code 100 "Unsupported get request" (subcode 33): the addressed object does not exist, the token cannot see
    it, or it does not support the call. For an id the caller made up this is a bad id; for a configured node whose
    edge Meta removed it is the removal (``order_sources`` decides, knowing which node it addressed)."""
    if error.code != INVALID_PARAMETER_CODE:
        return False
    return error.subcode == MISSING_OBJECT_SUBCODE or bool(_UNSUPPORTED_REQUEST.match(error.message))


class GraphResponseError(GraphApiError, InvalidInputError):
    """A response (or one record of it) that is not what the API promises; ``field`` is its path in the JSON.

    ``raw`` is the offending record, so a caller can dead-letter that one record and keep the rest.
    """

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        raw: Any = None,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.field = field
        self.problem = problem
        self.raw = raw
        GraphApiError.__init__(self, f"{field}: {problem}", http_status=http_status, endpoint=endpoint)


def _is_removed_endpoint(error: GraphErrorBody, edge: str) -> bool:
    """Our reading of Graph's answers for a removed or unknown edge (none is documented for a removal):

    - code 12 ("... is deprecated for versions ..."), whatever the message;
    - code 2500 or 100 "Unknown path components: /X" naming the requested edge (2500 is also "An active access
      token must be used ...", and an unknown path elsewhere is not this endpoint's removal);
    - code 100 or 2500 "Tried accessing nonexisting field (X)" where X is the requested edge: the same message
      naming a field of ``fields=`` is a bad parameter, not a removal.
    Code 100 otherwise is a bad parameter. "Unsupported get request" (subcode 33) is left to the caller
    (``says_object_unreachable``): only it knows whether the object it addressed must exist.
    """
    if error.code == DEPRECATED_CODE:
        return True
    if error.code not in {INVALID_PARAMETER_CODE, UNKNOWN_PATH_CODE} or not edge:
        return False
    message = error.message.lower()
    named = _NONEXISTING_FIELD.search(message)
    if named is not None:
        return named.group(1).strip() == edge.lower()
    return _UNKNOWN_PATH in message and edge.lower() in message


def _error_class(error: GraphErrorBody, http_status: int, edge: str) -> type[GraphApiError]:
    code = error.code
    if _is_removed_endpoint(error, edge):
        return GraphEndpointRemovedError
    if code in THROTTLE_CODES or http_status == HTTP_TOO_MANY_REQUESTS:
        return GraphThrottledError
    if code in TRANSIENT_CODES or error.is_transient or http_status >= 500:
        return GraphTransientError
    token_problem = error.type == "OAuthException" and "access token" in error.message.lower()
    if code in AUTH_CODES or token_problem or "appsecret_proof" in error.message:
        return GraphAuthError
    if code == 10 or (code is not None and 200 <= code <= 299):
        return GraphPermissionError
    if code == INVALID_PARAMETER_CODE or 400 <= http_status < 500:
        return GraphValidationError
    return GraphApiError


def error_from_response(
    http_status: int,
    error: GraphErrorBody,
    *,
    endpoint: str,
    edge: str,
    usage: GraphUsage | None,
    retry_after_header: float | None,
    secrets: Iterable[str],
) -> GraphApiError:
    """The typed error for a failed call. ``edge`` is the last path segment, to recognise a removed endpoint."""
    cls = _error_class(error, http_status, edge)
    fields: dict[str, Any] = {
        "code": error.code,
        "subcode": error.error_subcode,
        "type": error.type,
        "fbtrace_id": error.fbtrace_id,
        "http_status": http_status,
        "endpoint": endpoint,
    }
    message = redact(error.message, secrets) or "no message"
    if cls is GraphThrottledError:
        regain = usage.regain_access_seconds if usage is not None else 0.0
        wait = max(regain, retry_after_header or 0.0)
        return GraphThrottledError(message, retry_after_seconds=wait, usage=usage, **fields)
    return cls(message, **fields)
