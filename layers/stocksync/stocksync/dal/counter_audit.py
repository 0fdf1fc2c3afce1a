"""SKU counters as reconciliation reads and repairs them (logic/reconciliation.py, CounterStore).

``nonzero()`` is the product's only Scan: a filtered, paginated, strongly consistent scan of the SKU table for
"state" records with a counter that is not zero, run once a day by reconciliation. Everything else the product
reads by key or through an index. The scan is there because no index lists SKUs by "has a counter": it finds
counters left non-zero by orders the ledger no longer holds open, which no ledger-side read can find.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.batch_reads import batch_get
from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import SKU_STATE_RECORD
from stocksync.logic.reconciliation import COUNTER_FIELDS, CounterReading

_UPDATED_AT = "counters_updated_at"  # set by every ledger transaction (dal/ledger_table.py)
_PROJECTION = ", ".join(["retailer_id", *COUNTER_FIELDS, _UPDATED_AT])


def _reading(item: Mapping[str, Any]) -> CounterReading:
    updated_at = item.get(_UPDATED_AT)
    return CounterReading(
        retailer_id=item["retailer_id"],
        **{name: int(item.get(name, 0)) for name in COUNTER_FIELDS},
        updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
    )


class SkuCounterAudit:
    """Reads SKU counters for reconciliation and repairs them with conditional writes."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self.requests = 0

    def nonzero(self) -> Iterator[CounterReading]:
        nonzero = " OR ".join(f"(attribute_exists({name}) AND {name} <> :zero)" for name in COUNTER_FIELDS)
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression=_PROJECTION,
            FilterExpression=f"#record = :state AND ({nonzero})",
            ExpressionAttributeNames={"#record": "record"},
            ExpressionAttributeValues=encode({":state": SKU_STATE_RECORD, ":zero": 0}),
        )
        for page in pages:
            self.requests += 1
            for raw in page.get("Items", []):
                yield _reading(decode(raw))

    def read(self, retailer_ids: Collection[str]) -> dict[str, CounterReading]:
        keys = [encode({"retailer_id": rid, "record": SKU_STATE_RECORD}) for rid in sorted(set(retailer_ids))]
        raws = batch_get(self._client, self._table, keys, projection=_PROJECTION, on_request=self._count)
        readings = (_reading(decode(raw)) for raw in raws)
        return {reading.retailer_id: reading for reading in readings}

    def _count(self) -> None:
        self.requests += 1

    def repair(self, observed: CounterReading, counts: Mapping[str, int], *, now: datetime) -> bool:
        """SET each counter to its implied value WHERE every counter and the last-change time are as observed."""
        values: dict[str, Any] = {":now": now.isoformat()}
        conditions = []
        for name, was in observed.counts.items():
            values[f":was_{name}"] = was
            values[f":set_{name}"] = counts[name]
            condition = f"{name} = :was_{name}"
            conditions.append(f"(attribute_not_exists({name}) OR {condition})" if was == 0 else condition)
        if observed.updated_at is None:
            conditions.append(f"attribute_not_exists({_UPDATED_AT})")
        else:
            values[":seen"] = observed.updated_at.isoformat()
            conditions.append(f"{_UPDATED_AT} = :seen")
        assignments = ", ".join(f"{name} = :set_{name}" for name in COUNTER_FIELDS)
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": observed.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=f"SET {assignments}, {_UPDATED_AT} = :now",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeValues=encode(values),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # a ledger transaction got there first: the counters moved
            raise
        return True
