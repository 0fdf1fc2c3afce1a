"""The control table: one small record per named thing the product steers by (poll cursors, source switches)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stocksync import clock
from stocksync.dal.codec import decode, encode
from stocksync.logic.order_polling import PollCursor


def _cursor_name(source: str) -> str:
    return f"poll-cursor#{source}"


class ControlTable:
    """CursorStore on DynamoDB."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def load(self, source: str) -> PollCursor:
        answer = self._client.get_item(
            TableName=self._table, Key=encode({"name": _cursor_name(source)}), ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return PollCursor()
        return PollCursor.model_validate_json(decode(item)["cursor"])

    def save(self, source: str, cursor: PollCursor) -> None:
        # A disabled source stays disabled even if a poll that started before the switch saves its position.
        self._put_unless_disabled(source, cursor, {})

    def disable(self, source: str, reason: str) -> bool:
        """Disable the source (to re-enable it after checking the platform, delete its ``poll-cursor#`` record)."""
        cursor = self.load(source).model_copy(update={"disabled_reason": reason})
        return self._put_unless_disabled(source, cursor, {"disabled_reason": reason})

    def _put_unless_disabled(self, source: str, cursor: PollCursor, extra: dict[str, Any]) -> bool:
        item = {"name": _cursor_name(source), "cursor": cursor.model_dump_json(), "updated_at": clock.now().isoformat()}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=encode({**item, **extra}),
                ConditionExpression="attribute_not_exists(disabled_reason)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
