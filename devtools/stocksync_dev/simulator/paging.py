"""Graph cursor paging: opaque cursors, the ``limit`` rule, and the ``paging`` block with its ``next`` URL.

A cursor encodes the sort key of a row, not a position, so rows that change while a client pages (an order
updated, a product created) never make it skip or repeat a row it has not seen yet.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from stocksync_dev.simulator.errors import GraphError, invalid_parameter


def encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as error:
        raise invalid_cursor(cursor) from error
    if not isinstance(key, list) or not key:
        raise invalid_cursor(cursor)
    return key


def invalid_cursor(cursor: str) -> GraphError:
    return invalid_parameter(f"The after cursor {cursor!r} is not valid")


def page_limit(params: Mapping[str, Any], default: int, maximum: int) -> int:
    """The page size a client asked for; Graph silently caps it at the edge's maximum."""
    raw = params.get("limit")
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError) as error:
        raise invalid_parameter(f"Param limit must be a positive integer, got {raw!r}") from error
    if limit <= 0:
        raise invalid_parameter(f"Param limit must be a positive integer, got {raw!r}")
    return min(limit, maximum)


def paged_response(
    data: list[dict[str, Any]],
    keys: list[tuple[Any, ...]],
    has_more: bool,
    next_url_base: str,
    query: Mapping[str, str],
) -> dict[str, Any]:
    """``{"data", "paging"}``; ``paging.next`` only when more rows follow, and no ``paging`` for an empty page."""
    if not data:
        return {"data": []}
    after = encode_cursor(keys[-1])
    paging: dict[str, Any] = {"cursors": {"before": encode_cursor(keys[0]), "after": after}}
    if has_more:
        paging["next"] = f"{next_url_base}?{urlencode({**query, 'after': after})}"
    return {"data": data, "paging": paging}
