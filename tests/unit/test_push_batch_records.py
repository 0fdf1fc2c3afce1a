"""Batch records fit DynamoDB's 400 KB item limit at 5,000 rows, measured, whatever the retailer ids look like."""

from __future__ import annotations

import json
import random
import string
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.dal.batches_table import MAX_BLOB_BYTES, decode_entries, encode_entries, split_blobs
from stocksync.models.push import BatchEntry, QueuedPush
from stocksync.models.sku import Visibility

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
DYNAMODB_ITEM_LIMIT = 400 * 1024


def rows(ids: list[str]) -> list[BatchEntry]:
    rng = random.Random(7)
    return [
        BatchEntry(
            retailer_id=rid,
            value=rng.randrange(0, 5000),
            version=rng.randrange(1, 10**6),
            visibility=Visibility.STAGING if i % 50 == 0 else Visibility.PUBLISHED,
            computed_at=T0 + timedelta(milliseconds=rng.randrange(0, 10**8)),
            retries=i % 3,
            urgent=i % 7 == 0,
        )
        for i, rid in enumerate(ids)
    ]


def test_rows_round_trip_exactly() -> None:
    entries = rows([f"SKU-{i}" for i in range(50)])
    assert any(entry.urgent for entry in entries) and not all(entry.urgent for entry in entries)
    assert decode_entries(encode_entries(entries)) == entries


def test_records_written_before_the_urgent_column_read_as_routine_rows() -> None:
    old = [["SKU-1", 3, 7, "published", 1_795_000_000_000, 1]]
    blob = zlib.compress(json.dumps(old).encode())
    (entry,) = decode_entries(blob)
    assert (entry.retailer_id, entry.value, entry.version, entry.retries, entry.urgent) == ("SKU-1", 3, 7, 1, False)


def test_a_row_sent_back_after_an_item_error_keeps_its_priority() -> None:
    urgent = QueuedPush.model_validate(
        {"retailer_id": "SKU-1", "value": 0, "version": 4, "visibility": "published", "computed_at": T0, "urgent": True}
    )
    entry = decode_entries(encode_entries([BatchEntry.from_message(urgent)]))[0]
    retry = entry.retry_message()
    assert retry.urgent is True and retry.retries == 1 and retry.version == 4
    assert retry.body()["urgent"] is True
    routine = BatchEntry.from_message(urgent.model_copy(update={"urgent": False})).retry_message()
    assert routine.urgent is False and "urgent" not in routine.body()


@pytest.mark.parametrize(
    ("name", "make_id", "max_bytes"),
    [
        ("catalog style", lambda i, rng: f"ACME-SHOES-{i:07d}-EU42-BLK", 100_000),
        ("uuid", lambda i, rng: f"{rng.getrandbits(128):032x}", 200_000),
        ("long 100-char", lambda i, rng: f"merchant-{i:08d}-" + "x" * 82, 100_000),
    ],
)
def test_5000_realistic_rows_fit_one_item_compressed(name: str, make_id: object, max_bytes: int) -> None:
    rng = random.Random(1)
    entries = rows([make_id(i, rng) for i in range(5000)])  # type: ignore[operator]
    plain = len(json.dumps([e.model_dump(mode="json") for e in entries]))
    blobs = split_blobs(entries)
    assert len(blobs) == 1, name
    assert len(blobs[0]) <= max_bytes < DYNAMODB_ITEM_LIMIT
    assert len(blobs[0]) < plain / 2  # what compression buys against the plain JSON


def test_incompressible_100_char_ids_spill_into_parts_that_each_fit() -> None:
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + "-_."
    entries = rows(["".join(rng.choice(alphabet) for _ in range(100)) for _ in range(5000)])
    blobs = split_blobs(entries)
    assert len(blobs) >= 2
    assert all(len(blob) <= MAX_BLOB_BYTES for blob in blobs)
    assert [e for blob in blobs for e in decode_entries(blob)] == entries
