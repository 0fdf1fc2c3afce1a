"""Turning Graph API responses into models, with errors that name the JSON path of the bad field.

A paged edge is validated record by record: a bad record becomes a ``RejectedRecord`` (raw JSON + typed error) and
the good ones of its page are still returned, so one malformed order never stalls the poller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from stocksync.models.graph import AppUsage, BusinessUseCaseUsage, GraphUsage, ListResponse, RejectedRecord
from stocksync.models.graph_errors import GraphResponseError
from stocksync.observability import logger

APP_USAGE_HEADER = "X-App-Usage"
BUSINESS_USAGE_HEADER = "X-Business-Use-Case-Usage"
_BUSINESS_USAGE = TypeAdapter(dict[str, list[BusinessUseCaseUsage]])
_SHOWN_INPUT_CHARS = 60
M = TypeVar("M", bound=BaseModel)


def json_path(prefix: str, loc: Sequence[int | str]) -> str:
    """``json_path("data[3]", ("items", "data", 0, "quantity"))`` -> ``"data[3].items.data[0].quantity"``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def _problem(error: ErrorDetails) -> str:
    value = error.get("input")
    if error["type"] == "missing" or not isinstance(value, str | int | float | bool):
        return error["msg"]
    return f"{error['msg']} (got {repr(value)[:_SHOWN_INPUT_CHARS]})"


def parse_model(model: type[M], raw: Any, *, field: str, endpoint: str) -> M:
    """``raw`` validated as ``model``; a GraphResponseError naming the first bad field's path otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise GraphResponseError(json_path(field, first["loc"]), _problem(first), raw=raw, endpoint=endpoint) from None


def parse_records(model: type[M], page: ListResponse, *, endpoint: str) -> tuple[list[M], list[RejectedRecord]]:
    """Every record of ``page`` as ``model``, split into the valid ones and the rejected ones."""
    valid: list[M] = []
    rejected: list[RejectedRecord] = []
    for index, raw in enumerate(page.data):
        try:
            valid.append(parse_model(model, raw, field=f"data[{index}]", endpoint=endpoint))
        except GraphResponseError as error:
            rejected.append(RejectedRecord(raw=raw, error=error))
    return valid, rejected


def parse_usage(headers: Mapping[str, str]) -> GraphUsage | None:
    """Usage from the rate-limit headers, or None when the response carried neither.

    A malformed header is logged and ignored: it must not fail a call that otherwise succeeded.
    """
    app_header = headers.get(APP_USAGE_HEADER)
    business_header = headers.get(BUSINESS_USAGE_HEADER)
    if not app_header and not business_header:
        return None
    app: AppUsage | None = None
    business: dict[str, list[BusinessUseCaseUsage]] = {}
    if app_header:
        try:
            app = AppUsage.model_validate_json(app_header)
        except ValidationError:
            logger.warning("Ignoring a malformed usage header", extra={"header": APP_USAGE_HEADER})
    if business_header:
        try:
            business = _BUSINESS_USAGE.validate_json(business_header)
        except ValidationError:
            logger.warning("Ignoring a malformed usage header", extra={"header": BUSINESS_USAGE_HEADER})
    return GraphUsage(app=app, business_use_cases=business)
