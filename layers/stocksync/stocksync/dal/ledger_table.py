"""The order ledger in DynamoDB, written together with the SKU counters in one conditional transaction.

Key design (README, "Tables"): ledger row = (order_id, part); SKU counters live on the SKU's "state" record;
units sold per hour live on "sold#<hour>" records of the same SKU (velocity without scans). A row that still counts
in P, C or K carries ``open_shard``, which puts it in the sparse open-orders index that reconciliation reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.batch_reads import batch_get
from stocksync.dal.codec import decode, encode, encode_value
from stocksync.dal.keys import LEDGER_OPEN_INDEX, SKU_SOLD_RECORD_PREFIX, SKU_STATE_RECORD, TTL_ATTRIBUTE
from stocksync.logic.ledger import OPEN_SHARDS, CounterDelta, LedgerPart, LineRecord
from stocksync.logic.order_ingest import LEDGER_RETENTION, CounterUnderflowError, PartKey, StaleLedgerError
from stocksync.models.orders import OrderSource, OrderState

# Velocity slots outlive the longest trailing window the bucketing uses.
SOLD_SLOT_RETENTION = timedelta(days=8)
_COUNTERS = {
    "processing": "pending_processing",
    "created": "pending_created",
    "acknowledged": "acknowledged_unsynced",
}


def sold_record(moment: datetime) -> str:
    """The velocity record of the UTC hour ``moment`` falls in."""
    return SKU_SOLD_RECORD_PREFIX + moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def row_to_item(row: LedgerPart, *, now: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        "order_id": row.order_id,
        "part": row.part,
        "parts": row.parts,
        "source": row.source.value,
        "state": row.state.value if row.state else None,
        "synced": row.synced,
        "sold_on_platform": row.sold_on_platform,
        "lines": {
            sku: {"ordered": line.ordered, "cancelled": line.cancelled, "restocked": line.restocked}
            for sku, line in row.lines.items()
        },
        "placed_at": row.placed_at.isoformat() if row.placed_at else None,
        "seen_at": row.seen_at.isoformat() if row.seen_at else None,
        "revision": row.revision,
        # The writer's clock (the ingest stamps the row with it): a retry compares it with when its try stopped.
        "updated_at": (row.updated_at or now).isoformat(),
    }
    if row.lines_digest is not None:
        item["lines_digest"] = row.lines_digest  # split orders only: every part knows the whole order
    if row.is_open:
        item["open_shard"] = row.open_shard
    else:
        item[TTL_ATTRIBUTE] = int((now + LEDGER_RETENTION).timestamp())
    return item


def item_to_row(item: Mapping[str, Any]) -> LedgerPart:
    return LedgerPart(
        order_id=item["order_id"],
        part=int(item["part"]),
        parts=int(item["parts"]),
        source=OrderSource(item["source"]),
        state=OrderState(item["state"]) if item.get("state") else None,
        synced=bool(item.get("synced", False)),
        sold_on_platform=bool(item.get("sold_on_platform", False)),
        lines={
            sku: LineRecord(int(line["ordered"]), int(line["cancelled"]), int(line["restocked"]))
            for sku, line in item.get("lines", {}).items()
        },
        placed_at=datetime.fromisoformat(item["placed_at"]) if item.get("placed_at") else None,
        seen_at=datetime.fromisoformat(item["seen_at"]) if item.get("seen_at") else None,
        revision=int(item["revision"]),
        lines_digest=item.get("lines_digest"),
        updated_at=datetime.fromisoformat(item["updated_at"]) if item.get("updated_at") else None,
    )


class DynamoLedger:
    """LedgerPort on DynamoDB: one TransactWriteItems per changed ledger row."""

    def __init__(self, client: Any, *, orders_table: str, sku_table: str, now: datetime) -> None:
        self._client = client
        self._orders = orders_table
        self._skus = sku_table
        self._now = now
        self.requests = 0  # DynamoDB calls made, for the benchmark's requests-per-change figure

    def read_parts(self, keys: Sequence[PartKey]) -> dict[PartKey, LedgerPart]:
        encoded = [encode({"order_id": order_id, "part": part}) for order_id, part in keys]
        rows = (
            item_to_row(decode(raw)) for raw in batch_get(self._client, self._orders, encoded, on_request=self._count)
        )
        return {(row.order_id, row.part): row for row in rows}

    def _count(self) -> None:
        self.requests += 1

    def write_part(
        self, before: LedgerPart, after: LedgerPart, changes: Mapping[str, CounterDelta], sold_at: datetime
    ) -> None:
        actions = [self._ledger_put(before, after)]
        for retailer_id, delta in sorted(changes.items()):
            if delta.changes_counters or delta.platform_units or delta.moves:
                actions.append(self._counter_update(retailer_id, delta))
            if delta.sold:
                actions.append(self._sold_update(retailer_id, delta.sold, sold_at))
        self.requests += 1
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise StaleLedgerError(f"order {after.order_id} part {after.part} changed concurrently") from None
            underflow = [
                action["Update"]["Key"]["retailer_id"]["S"]
                for action, reason in zip(actions, reasons, strict=False)
                if reason == "ConditionalCheckFailed" and "Update" in action
            ]
            if underflow:
                raise CounterUnderflowError(after.order_id, underflow) from None
            if "TransactionConflict" in reasons:
                raise StaleLedgerError(f"order {after.order_id}: transaction conflict") from None
            raise

    def _ledger_put(self, before: LedgerPart, after: LedgerPart) -> dict[str, Any]:
        item = row_to_item(after, now=self._now)
        item["revision"] = before.revision + 1
        put: dict[str, Any] = {"TableName": self._orders, "Item": encode(item)}
        if before.revision == 0:
            put["ConditionExpression"] = "attribute_not_exists(order_id)"
        else:
            put["ConditionExpression"] = "revision = :expected"
            put["ExpressionAttributeValues"] = {":expected": encode_value(before.revision)}
        return {"Put": put}

    def _counter_update(self, retailer_id: str, delta: CounterDelta) -> dict[str, Any]:
        values = {
            ":p": delta.processing,
            ":c": delta.created,
            ":k": delta.acknowledged,
            ":u": delta.platform_units,
            ":now": self._now.isoformat(),
        }
        conditions = []
        for field_name, attribute in _COUNTERS.items():
            change = getattr(delta, field_name)
            if change < 0:
                values[f":min_{field_name}"] = -change
                conditions.append(f"{attribute} >= :min_{field_name}")
        adds = "ADD pending_processing :p, pending_created :c, acknowledged_unsynced :k, platform_units :u"
        sets = "SET counters_updated_at = :now"
        if delta.moves:
            # Appended in the ledger's transaction, so each move lands exactly once, like the counters.
            adds += ", platform_moves_total :moves_count"
            sets += ", platform_moves = list_append(if_not_exists(platform_moves, :no_moves), :moves)"
            values.update(
                {":moves_count": len(delta.moves), ":no_moves": [], ":moves": [move.stored() for move in delta.moves]}
            )
        update: dict[str, Any] = {
            "TableName": self._skus,
            "Key": encode({"retailer_id": retailer_id, "record": SKU_STATE_RECORD}),
            "UpdateExpression": f"{adds} {sets}",
            "ExpressionAttributeValues": encode(values),
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return {"Update": update}

    def _sold_update(self, retailer_id: str, units: int, sold_at: datetime) -> dict[str, Any]:
        expires = int((sold_at + SOLD_SLOT_RETENTION).timestamp())
        return {
            "Update": {
                "TableName": self._skus,
                "Key": encode({"retailer_id": retailer_id, "record": sold_record(sold_at)}),
                "UpdateExpression": "ADD units :units SET #ttl = :expires",
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": encode({":units": units, ":expires": expires}),
            }
        }

    def open_rows(self) -> Iterator[LedgerPart]:
        """Every row that still counts in P, C or K (the sparse index), for reconciliation."""
        for shard in range(OPEN_SHARDS):
            paginator = self._client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self._orders,
                IndexName=LEDGER_OPEN_INDEX,
                KeyConditionExpression="open_shard = :shard",
                ExpressionAttributeValues={":shard": encode_value(shard)},
            )
            for page in pages:
                self.requests += 1
                for raw in page.get("Items", []):
                    yield item_to_row(decode(raw))
