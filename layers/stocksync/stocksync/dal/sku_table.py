"""SKU records in DynamoDB: the "state" record per SKU and its hourly "sold#" velocity records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import SKU_BUCKET_INDEX, SKU_SOLD_RECORD_PREFIX, SKU_STATE_RECORD
from stocksync.models.inventory import WarehouseLevel
from stocksync.models.push import BatchEntry, ConfirmReceipt
from stocksync.models.sku import SkuState

_BATCH_GET_LIMIT = 100
# Confirmations are one conditional UpdateItem per SKU (no batch write takes a condition); this many run at once.
_CONFIRM_WORKERS = 16
_CONFIRMED_FIELDS = (
    "confirmed_value = :value, confirmed_visibility = :visibility, confirmed_at = :at, "
    "confirmed_platform_units = if_not_exists(platform_units, :zero), confirmed_accepted_ms = :accepted"
)
# The version is newer than the confirmed one, and the platform did not accept a row of this SKU after ours.
_CONFIRM_CONDITION = (
    "attribute_exists(retailer_id) "
    "AND (attribute_not_exists(confirmed_version) OR confirmed_version < :version) "
    "AND (attribute_not_exists(confirmed_accepted_ms) OR confirmed_accepted_ms <= :accepted)"
)
# A newer version was confirmed, but the platform accepted ours after it: ours is what the catalog shows.
_STALE_CONDITION = "confirmed_version > :version AND confirmed_accepted_ms < :accepted"


def _as_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def state_from_item(item: dict[str, Any]) -> SkuState:
    as_of = item.get("warehouse_as_of_ms")
    return SkuState.model_validate(
        {**item, "warehouse_as_of": datetime.fromtimestamp(as_of / 1000, UTC) if as_of is not None else None}
    )


class SkuTable:
    """Reads and conditional writes of SKU records (the ledger transaction writes the counters)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self.requests = 0

    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]:
        wanted = sorted(set(retailer_ids))
        found: dict[str, SkuState] = {}
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            keys = [
                encode({"retailer_id": rid, "record": SKU_STATE_RECORD})
                for rid in wanted[start : start + _BATCH_GET_LIMIT]
            ]
            pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while pending:
                self.requests += 1
                answer = self._client.batch_get_item(RequestItems=pending)
                for raw in answer.get("Responses", {}).get(self._table, []):
                    state = state_from_item(decode(raw))
                    found[state.retailer_id] = state
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def put_warehouse_level(self, level: WarehouseLevel, *, default_bucket: str) -> bool:
        """Store I unless a newer (or the same) ``as_of`` is already stored. True when it changed anything.

        The SKU joins ``default_bucket`` if it has none yet, so the bucket sweeps start covering it.
        """
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": level.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=(
                    "SET warehouse_level = :level, warehouse_as_of_ms = :as_of, "
                    "#bucket = if_not_exists(#bucket, :bucket)"
                ),
                ConditionExpression="attribute_not_exists(warehouse_as_of_ms) OR warehouse_as_of_ms < :as_of",
                ExpressionAttributeNames={"#bucket": "bucket"},
                ExpressionAttributeValues=encode(
                    {":level": level.level, ":as_of": _as_ms(level.as_of), ":bucket": default_bucket}
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # an equal or newer level is stored: this one is stale or a repeat
            raise
        return True

    def units_sold(self, retailer_id: str, *, since: datetime) -> int:
        """Units ordered since ``since`` (hour granularity), from the SKU's own velocity records: one Query."""
        paginator = self._client.get_paginator("query")
        total = 0
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="retailer_id = :rid AND #record BETWEEN :low AND :high",
            ExpressionAttributeNames={"#record": "record"},
            ExpressionAttributeValues=encode(
                {
                    ":rid": retailer_id,
                    ":low": SKU_SOLD_RECORD_PREFIX + since.astimezone(UTC).strftime("%Y-%m-%dT%H"),
                    ":high": SKU_SOLD_RECORD_PREFIX + "~",
                }
            ),
        ):
            self.requests += 1
            total += sum(int(decode(raw)["units"]) for raw in page.get("Items", []))
        return total

    def velocity(self, retailer_id: str, *, now: datetime, window: timedelta) -> float:
        """Units per hour over the trailing window."""
        hours = max(window / timedelta(hours=1), 1.0)
        return self.units_sold(retailer_id, since=now - window) / hours

    def bucket_states(
        self, bucket: str, *, page_size: int = 1000, start_key: dict | None = None
    ) -> Iterator[tuple[list[SkuState], dict | None]]:
        """A bucket's SKUs from the sparse bucket index, one page at a time with the key to resume from."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SKU_BUCKET_INDEX,
            "KeyConditionExpression": "#bucket = :bucket",
            "ExpressionAttributeNames": {"#bucket": "bucket"},
            "ExpressionAttributeValues": encode({":bucket": bucket}),
            "Limit": page_size,
        }
        while True:
            if start_key:
                request["ExclusiveStartKey"] = start_key
            self.requests += 1
            answer = self._client.query(**request)
            states = [state_from_item(decode(raw)) for raw in answer.get("Items", [])]
            start_key = answer.get("LastEvaluatedKey")
            yield states, start_key
            if not start_key:
                return

    def counters(self, retailer_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """(P, C, K) per SKU, for reconciliation."""
        return {
            rid: (state.pending_processing, state.pending_created, state.acknowledged_unsynced)
            for rid, state in self.get_states(retailer_ids).items()
        }

    def confirm_pushes(
        self, entries: Sequence[BatchEntry], *, accepted_at: datetime, confirmed_at: datetime
    ) -> ConfirmReceipt:
        """Record that the platform applied these rows (accepted at ``accepted_at``): the SKU's confirmed_* fields.

        Never over a newer version: the condition keeps confirmed_version monotonic. One exception keeps the record
        truthful: the platform applies batches in the order it accepted them, so when a newer version was confirmed
        from a batch accepted *before* ours (two push invocations raced), the catalog shows our older value; the
        value fields then say so (the version stays) and recompute pushes again. ``confirmed_platform_units``
        copies ``platform_units`` in the same update, so later platform decrements are counted from here.
        """
        receipt = ConfirmReceipt()
        accepted_ms = _as_ms(accepted_at)
        at = confirmed_at.astimezone(UTC).isoformat()
        if len(entries) <= 1:
            outcomes = [self._confirm_one(entry, accepted_ms, at) for entry in entries]
        else:
            with ThreadPoolExecutor(max_workers=_CONFIRM_WORKERS) as pool:
                outcomes = list(pool.map(lambda entry: self._confirm_one(entry, accepted_ms, at), entries))
        for entry, outcome in zip(entries, outcomes, strict=True):
            getattr(receipt, outcome).append(entry.retailer_id)
        return receipt

    def _confirm_one(self, entry: BatchEntry, accepted_ms: int, at: str) -> str:
        values = {
            ":value": entry.value,
            ":visibility": entry.visibility.value,
            ":at": at,
            ":zero": 0,
            ":accepted": accepted_ms,
            ":version": entry.version,
        }
        key = encode({"retailer_id": entry.retailer_id, "record": SKU_STATE_RECORD})
        attempts = (
            ("confirmed", f"SET {_CONFIRMED_FIELDS}, confirmed_version = :version", _CONFIRM_CONDITION),
            ("stale_corrected", f"SET {_CONFIRMED_FIELDS}", _STALE_CONDITION),
        )
        for outcome, update, condition in attempts:
            self.requests += 1
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=encode(values),
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue
            return outcome
        return "refused"
