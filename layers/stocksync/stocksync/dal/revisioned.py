"""Optimistic concurrency for the small control-table items several invocations rewrite whole (the call budgets and
the pacer, the observed processing times): each read carries the item's ``revision``, and a write succeeds only if
the revision is still the one read. Why not a transaction or a lock: one item, one PutItem, and a conflict costs
just a re-read; the writers are a few invocations, not a crowd."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.codec import encode


def put_if_revision(client: Any, table: str, item: Mapping[str, Any], revision: int) -> bool:
    """Write ``item`` with ``revision + 1`` if the stored item is still at ``revision`` (0: absent); False when
    another writer came first (the caller reads again)."""
    condition = "attribute_not_exists(revision)" if revision == 0 else "revision = :expected"
    request: dict[str, Any] = {
        "TableName": table,
        "Item": encode({**item, "revision": revision + 1}),
        "ConditionExpression": condition,
    }
    if revision:
        request["ExpressionAttributeValues"] = encode({":expected": revision})
    try:
        client.put_item(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
