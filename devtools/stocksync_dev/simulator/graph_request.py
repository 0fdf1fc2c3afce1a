"""One Graph call as the simulator sees it, and the parameter parsing every endpoint shares.

Parameters come from the query string and from the body, which is form-encoded (JSON-valued parameters such as
``requests`` arrive as JSON strings) or, as Graph also accepts, a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from stocksync_dev.simulator.auth import SECRET_PARAMS
from stocksync_dev.simulator.errors import GraphError, invalid_parameter, missing_parameter, unknown_parameter


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str  # as sent, without the query string (used to build paging.next)
    version: tuple[int, int] | None  # None when the path carries no version
    segments: tuple[str, ...]  # the path after the version
    query: dict[str, str]
    params: dict[str, Any]  # query and body parameters merged
    base_url: str


@dataclass
class GraphResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_query(query_string: str) -> dict[str, str]:
    return dict(parse_qsl(query_string, keep_blank_values=True))


def parse_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if (content_type or "").split(";")[0].strip().lower() == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise invalid_parameter("The request body is not valid JSON") from error
        if not isinstance(parsed, dict):
            raise invalid_parameter("A JSON request body must be an object of parameters")
        return parsed
    try:
        return parse_query(body.decode())
    except UnicodeDecodeError as error:
        raise invalid_parameter("The request body is not UTF-8 form data") from error


def required_text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    return str(value)


def flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise invalid_parameter(f"Param {name} must be a boolean, got {value!r}")


def json_value(params: Mapping[str, Any], name: str) -> Any:
    """A JSON-valued parameter: a JSON string from a form, or the value itself from a JSON body."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as error:
        raise invalid_parameter(f"Param {name} must be valid JSON") from error


def name_list(params: Mapping[str, Any], name: str) -> list[str] | None:
    """A list-valued parameter given as ``A,B`` or as a JSON array; None when absent."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = json_value(params, name)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return value
    raise invalid_parameter(f"Param {name} must be a comma-separated list or a JSON array of strings")


def unix_time(params: Mapping[str, Any], name: str) -> int | None:
    """A time parameter in unix seconds: given as a timestamp or as an ISO 8601 date/datetime.

    Meta's SDK declares ``updated_after``/``updated_before`` as ``datetime`` (facebook-business 26.0.3,
    ``CommerceMerchantSettings.get_commerce_orders``) and passes a Python datetime through, which ``requests``
    sends as ``str(datetime)`` (``2026-11-01 10:00:00+00:00``); Graph takes strtotime-style strings for such
    parameters. A datetime without an offset is taken as UTC (an assumption: no reference page says which zone).
    """
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError as error:
        raise invalid_parameter(
            f"Param {name} must be a unix timestamp in seconds or an ISO 8601 datetime, got {value!r}"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def check_params(params: Mapping[str, Any], allowed: frozenset[str], endpoint: str) -> None:
    """Refuse the first parameter (in name order) that ``endpoint`` does not take, with code 100 naming it."""
    for name in sorted(params):
        if name not in allowed and name not in SECRET_PARAMS:
            raise unknown_parameter(name, endpoint)


def error_response(error: GraphError) -> GraphResponse:
    return GraphResponse(error.status, error.body(), dict(error.headers))
