"""Consistent BatchGetItem over any number of keys: 100 keys per call, unprocessed keys asked again.

One loop for every repository that reads by key in bulk (SKU states, ledger rows, batch record parts), so the
100-key limit and the UnprocessedKeys retry live in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

BATCH_GET_LIMIT = 100


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    projection: str | None = None,
    on_request: Callable[[], None] = lambda: None,
) -> Iterator[dict[str, Any]]:
    """Yield the raw (still encoded) items found for ``keys``, in no particular order; missing keys yield nothing."""
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {"Keys": list(keys[start : start + BATCH_GET_LIMIT]), "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table: request}
        while pending:
            on_request()
            answer = client.batch_get_item(RequestItems=pending)
            yield from answer.get("Responses", {}).get(table, [])
            pending = answer.get("UnprocessedKeys") or {}
