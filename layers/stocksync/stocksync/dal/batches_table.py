"""The batches table: each items_batch handle with the exact rows it carried, until verify_batch settles it.

Why compressed: one call carries up to 5,000 rows, and a DynamoDB item holds at most 400 KB. A row is
``[retailer_id, value, version, visibility, computed_at_ms, retries]``, 60-160 bytes as JSON, so 5,000 rows of long
retailer ids would not fit. zlib-compressed (measured in tests/unit/test_push_batch_records.py), 5,000 rows take
about 80 KB with catalog-style ids and 170 KB with UUIDs. Ids that do not compress (random 100-character ones) are
still safe: rows spill into extra part items (``<handle>#part<n>``), written before the head item, so a head item
always means a complete record.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from stocksync.dal.batch_reads import batch_get
from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import TTL_ATTRIBUTE
from stocksync.models.push import BatchEntry, BatchRecord, BatchState

RETENTION = timedelta(days=14)
# Compressed rows per item: well under the 400 KB item limit, leaving room for the other attributes.
MAX_BLOB_BYTES = 300_000


@dataclass(frozen=True)
class SkuPush:
    """One row of one SKU in one items_batch call: the handle, the row sent, and how the batch ended."""

    handle: str
    entry: BatchEntry
    state: BatchState
    accepted_at: datetime
    finished_at: datetime | None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def encode_entries(entries: Sequence[BatchEntry]) -> bytes:
    """Rows as positional lists; an urgent row carries a seventh column (1), so routine rows, and the records written
    before the column existed, keep six."""
    rows = [
        [
            e.retailer_id,
            e.value,
            e.version,
            e.visibility.value,
            _ms(e.computed_at),
            e.retries,
            *([1] if e.urgent else []),
        ]
        for e in entries
    ]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), level=6)


def decode_entries(blob: bytes) -> list[BatchEntry]:
    rows = json.loads(zlib.decompress(blob))
    return [
        BatchEntry(
            retailer_id=rid,
            value=value,
            version=version,
            visibility=visibility,
            computed_at=_from_ms(computed_ms),
            retries=retries,
            urgent=bool(urgent and urgent[0]),
        )
        for rid, value, version, visibility, computed_ms, retries, *urgent in rows
    ]


def split_blobs(entries: Sequence[BatchEntry], limit: int = MAX_BLOB_BYTES) -> list[bytes]:
    """The rows compressed into as few blobs of at most ``limit`` bytes as an even split allows."""
    parts = 1
    while True:
        size = -(-len(entries) // parts)
        blobs = [encode_entries(entries[start : start + size]) for start in range(0, len(entries), size)]
        if all(len(blob) <= limit for blob in blobs) or size == 1:
            return blobs
        parts = max(parts + 1, -(-sum(len(blob) for blob in blobs) // limit))


def compress_floats(values: Sequence[float]) -> bytes:
    return zlib.compress(json.dumps([round(v, 3) for v in values], separators=(",", ":")).encode())


def decompress_floats(blob: bytes) -> list[float]:
    return [float(v) for v in json.loads(zlib.decompress(blob))]


class BatchesTable:
    """Batch records by handle (a ``BatchLog`` for push, a ``BatchStore`` for verify)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def record(self, record: BatchRecord) -> None:
        """Write the record under ``record.store_key`` (the handle, or the key of a late-recorded part)."""
        blobs = split_blobs(record.entries) if record.entries else [encode_entries([])]
        expires = int((record.accepted_at + RETENTION).timestamp())
        key = record.store_key
        for index, blob in enumerate(blobs[1:], start=1):
            self._client.put_item(
                TableName=self._table,
                Item=encode({"handle": f"{key}#part{index}", "entries": blob, TTL_ATTRIBUTE: expires}),
            )
        head = {
            "handle": key,
            "graph_handle": record.handle if record.key else None,
            "accepted_at_ms": _ms(record.accepted_at),
            "sent_at_ms": _ms(record.sent_at) if record.sent_at else None,
            "entry_count": len(record.entries),
            "parts": len(blobs),
            "entries": blobs[0],
            "state": record.state.value,
            TTL_ATTRIBUTE: expires,
        }
        self._client.put_item(TableName=self._table, Item=encode(head))

    def load(self, handle: str) -> BatchRecord | None:
        """The record stored under ``handle`` (a handle, or a ``BatchRecord.key``)."""
        answer = self._client.get_item(TableName=self._table, Key=encode({"handle": handle}), ConsistentRead=True)
        if "Item" not in answer:
            return None
        head = decode(answer["Item"])
        blobs = [bytes(head["entries"])]
        part_keys = [f"{handle}#part{index}" for index in range(1, int(head["parts"]))]
        blobs.extend(self._part_blobs(part_keys))
        entries = [entry for blob in blobs for entry in decode_entries(blob)]
        graph_handle = head.get("graph_handle")
        return BatchRecord(
            handle=str(graph_handle) if graph_handle else handle,
            key=handle if graph_handle else None,
            accepted_at=_from_ms(int(head["accepted_at_ms"])),
            sent_at=_from_ms(int(head["sent_at_ms"])) if head.get("sent_at_ms") is not None else None,
            entries=entries,
            state=BatchState(head["state"]),
        )

    def finish(
        self,
        handle: str,
        state: BatchState,
        *,
        finished_at: datetime,
        counts: dict[str, int],
        latencies_seconds: Sequence[float] = (),
    ) -> bool:
        """Settle a pending record; False when it was already settled (a redelivered verify message)."""
        values: dict[str, Any] = {
            ":state": state.value,
            ":pending": BatchState.PENDING.value,
            ":finished": _ms(finished_at),
            ":counts": counts,
        }
        update = "SET #state = :state, finished_at_ms = :finished, outcome = :counts"
        if latencies_seconds:
            values[":latencies"] = compress_floats(latencies_seconds)
            update += ", latencies = :latencies"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"handle": handle}),
                UpdateExpression=update,
                ConditionExpression="#state = :pending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=encode(values),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def latency_samples(self) -> Iterator[tuple[float, list[float]]]:
        """(batch latency: accepted -> confirmed, [each confirmed row's change -> confirmed]) per verified batch,
        in seconds; for the replay and the benchmark (a scan: not for the functions' hot path)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="attribute_exists(latencies)",
            ProjectionExpression="accepted_at_ms, finished_at_ms, latencies",
        ):
            for raw in page.get("Items", []):
                item = decode(raw)
                batch_seconds = (int(item["finished_at_ms"]) - int(item["accepted_at_ms"])) / 1000
                yield batch_seconds, decompress_floats(bytes(item["latencies"]))

    def pushes_of(self, retailer_id: str, *, since: datetime) -> list[SkuPush]:
        """Every row of ``retailer_id`` in the batches accepted since ``since``, newest first (``stocksync explain``).

        A scan of the whole table (records live 14 days, see RETENTION; nothing indexes rows by SKU, since the
        functions never look a SKU's batches up): for an operator's question, not for the functions' hot path."""
        heads: dict[str, dict[str, Any]] = {}
        spilled: dict[str, bytes] = {}
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="accepted_at_ms >= :since OR attribute_not_exists(accepted_at_ms)",
            ExpressionAttributeValues=encode({":since": _ms(since)}),
        ):
            for raw in page.get("Items", []):
                item = decode(raw)
                if "accepted_at_ms" in item:
                    heads[item["handle"]] = item
                else:
                    spilled[item["handle"]] = bytes(item["entries"])
        pushes = []
        for handle, head in heads.items():
            blobs = [bytes(head["entries"])]
            blobs += [spilled.get(f"{handle}#part{index}", b"") for index in range(1, int(head.get("parts", 1)))]
            for blob in blobs:
                if not blob:
                    continue  # a part the scan did not return (written after the scan passed it): nothing to show
                for entry in decode_entries(blob):
                    if entry.retailer_id != retailer_id:
                        continue
                    finished = head.get("finished_at_ms")
                    pushes.append(
                        SkuPush(
                            handle=handle,
                            entry=entry,
                            state=BatchState(head["state"]),
                            accepted_at=_from_ms(int(head["accepted_at_ms"])),
                            finished_at=_from_ms(int(finished)) if finished is not None else None,
                        )
                    )
        return sorted(pushes, key=lambda push: (push.accepted_at, push.entry.version), reverse=True)

    def _part_blobs(self, keys: list[str]) -> list[bytes]:
        items = (decode(raw) for raw in batch_get(self._client, self._table, [encode({"handle": key}) for key in keys]))
        found = {item["handle"]: bytes(item["entries"]) for item in items}
        missing = [key for key in keys if key not in found]
        if missing:
            raise RuntimeError(f"batch record parts missing: {missing}")
        return [found[key] for key in keys]
