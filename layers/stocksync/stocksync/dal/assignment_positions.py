"""Where the velocity-bucket re-evaluation stopped, kept in the control table so the next scheduled run resumes there.

A pass over a large catalog may need several runs; storing the position (not re-invoking) keeps the job on its
schedule's cadence and needs no queue. A finished pass clears it, so the next run starts over.
"""

from __future__ import annotations

from typing import Any

from stocksync import clock
from stocksync.dal.codec import decode, encode
from stocksync.logic.bucketing import AssignmentPosition

_NAME = "bucket-assignment#position"


class AssignmentPositions:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def load(self) -> AssignmentPosition | None:
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": _NAME}), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        stored = decode(item)
        return AssignmentPosition(bucket=stored["bucket"], after=stored.get("after"))

    def save(self, position: AssignmentPosition | None) -> None:
        """Store where to resume; None (a finished pass) clears it."""
        if position is None:
            self._client.delete_item(TableName=self._table, Key=encode({"name": _NAME}))
            return
        item = {
            "name": _NAME,
            "bucket": position.bucket,
            "after": position.after,
            "updated_at": clock.now().isoformat(),
        }
        self._client.put_item(TableName=self._table, Item=encode(item))
