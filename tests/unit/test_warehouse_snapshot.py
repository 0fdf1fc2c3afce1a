"""Snapshot loading against in-memory ports: chunked lines, both formats, bad lines, hand-over and resumption."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stocksync.dal.snapshot_source import S3SnapshotSource, split_lines
from stocksync.errors import InvalidInputError
from stocksync.logic.snapshot_load import (
    RawLine,
    SnapshotChangedError,
    SnapshotFormat,
    SnapshotLoader,
    SnapshotPosition,
    SnapshotReport,
    position_from_message,
)
from tests.unit.test_warehouse_input import MemoryLevels, RecordingSinks

T0 = datetime(2026, 11, 23, 6, tzinfo=UTC)
START = SnapshotPosition(bucket="snapshots", key="daily/levels.csv", etag="etag-1")


def chunked(data: bytes, size: int, start: int = 0) -> Iterator[bytes]:
    for index in range(start, len(data), size):
        yield data[index : index + size]


class MemoryObject:
    """A LineSource over bytes, read in small chunks through the same line splitter the S3 reader uses."""

    def __init__(self, data: bytes, *, etag: str = "etag-1", chunk: int = 7) -> None:
        self.data = data
        self.etag = etag
        self.chunk = chunk
        self.reads: list[int] = []

    def lines(self, position: SnapshotPosition) -> Iterator[RawLine]:
        self.reads.append(position.offset)
        if position.etag != self.etag:
            raise SnapshotChangedError(f"{position.location} was replaced")
        return split_lines(chunked(self.data, self.chunk, position.offset), start=position.offset, max_line_bytes=80)


class Clock:
    """Remaining invocation time that drops to nothing after ``lines_before_deadline`` checks."""

    def __init__(self, lines_before_deadline: int | None = None) -> None:
        self.checks = 0
        self.deadline = lines_before_deadline

    def __call__(self) -> float:
        self.checks += 1
        return 0.0 if self.deadline is not None and self.checks > self.deadline else 900.0


class RecordingHandOver:
    def __init__(self) -> None:
        self.sent: list[SnapshotPosition] = []

    def send(self, position: SnapshotPosition) -> None:
        self.sent.append(position)


def loader(
    source: MemoryObject, store: MemoryLevels, sinks: RecordingSinks, hand_over: RecordingHandOver, clock: Clock
) -> SnapshotLoader:
    return SnapshotLoader(source, store, sinks, hand_over, default_bucket="slow", time_left=clock, reserve_seconds=10.0)


def load(data: bytes, clock: Clock | None = None) -> tuple[SnapshotReport, MemoryLevels, RecordingSinks]:
    store, sinks = MemoryLevels(), RecordingSinks()
    report = loader(MemoryObject(data), store, sinks, RecordingHandOver(), clock or Clock()).load(START)
    return report, store, sinks


def csv_snapshot(rows: int) -> bytes:
    lines = ["retailer_id,level,as_of"] + [f"SKU-{index:04d},{index},{T0.isoformat()}" for index in range(rows)]
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------- reading lines


def test_lines_keep_their_byte_offsets_across_chunk_boundaries() -> None:
    data = b"ab\ncdef\n\nlast"
    lines = list(split_lines(chunked(data, 3), start=0))
    assert [(line.start, line.end, line.data) for line in lines] == [
        (0, 3, b"ab"),
        (3, 8, b"cdef"),
        (8, 9, b""),
        (9, 13, b"last"),
    ]


def test_a_stream_starting_mid_object_reports_object_offsets() -> None:
    data = b"header\nx,1\ny,2\n"
    lines = list(split_lines(chunked(data, 4, start=7), start=7))
    assert [(line.start, line.end, line.data) for line in lines] == [(7, 11, b"x,1"), (11, 15, b"y,2")]


def test_an_overlong_line_is_cut_and_flagged_and_the_next_line_is_whole() -> None:
    data = b"x" * 50 + b"\nok\n"
    first, second = split_lines(chunked(data, 8), start=0, max_line_bytes=10)
    assert (first.overlong, first.data, first.end) == (True, b"x" * 10, 51)
    assert (second.overlong, second.data, second.start) == (False, b"ok", 51)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40))
def test_lines_reassemble_into_the_object_whatever_the_chunking(data: bytes, chunk: int) -> None:
    lines = list(split_lines(chunked(data, chunk), start=0, max_line_bytes=10_000))
    assert b"\n".join(line.data for line in lines) + (b"\n" if data.endswith(b"\n") else b"") == data
    assert [line.start for line in lines] == [0, *(line.end for line in lines)][: len(lines)]
    assert (lines[-1].end if lines else 0) == len(data)
    assert all(data[line.start : line.end].rstrip(b"\n") == line.data for line in lines)


# ---------------------------------------------------------------- formats and bad lines


def test_a_csv_snapshot_applies_every_level_and_recomputes_the_changed_skus() -> None:
    report, store, sinks = load(csv_snapshot(250))
    assert report.completed
    assert (report.lines, report.stored, report.rejected) == (251, 250, 0)
    assert store.levels["SKU-0249"] == (249, T0)
    assert set(store.buckets.values()) == {"slow"}
    assert sinks.all_enqueued == {f"SKU-{index:04d}" for index in range(250)}
    assert [len(batch) for batch in sinks.enqueued] == [100, 100, 50]  # grouped, not one message call per line


def test_csv_columns_may_come_in_any_order_with_a_byte_order_mark_and_crlf() -> None:
    data = '\ufeffAs_Of, Level ,RETAILER_ID\r\n2026-11-23T06:00:00Z,4,"SKU,1"\r\n'.encode()
    report, store, _ = load(data)
    assert report.completed
    assert store.levels == {"SKU,1": (4, T0)}


def test_a_json_lines_snapshot_is_recognised_by_its_first_line() -> None:
    rows = [
        {"retailer_id": "A", "level": 3, "as_of": T0.isoformat()},
        {"retailer_id": "B", "level": 0, "as_of": T0.isoformat()},
    ]
    report, store, _ = load(("\n".join(json.dumps(row) for row in rows)).encode())
    assert report.completed
    assert store.levels == {"A": (3, T0), "B": (0, T0)}


def test_bad_lines_are_dead_lettered_with_their_line_number_and_field_and_the_rest_apply() -> None:
    data = "\n".join(
        [
            "retailer_id,level,as_of",
            f"A,1,{T0.isoformat()}",
            f"B,-3,{T0.isoformat()}",
            "",
            f"C,lots,{T0.isoformat()}",
            "D,2,whenever",
            "E,2",
            f",2,{T0.isoformat()}",
            f"F,6,{T0.isoformat()}",
        ]
    ).encode()
    report, store, sinks = load(data)
    assert report.completed
    assert store.levels == {"A": (1, T0), "F": (6, T0)}
    where = "s3://snapshots/daily/levels.csv"
    reasons = [reason for _raw, reason in sinks.rejected]
    assert reasons[0] == f"{where} line 3: level: Input should be greater than or equal to 0"
    assert reasons[1].startswith(f"{where} line 5: level: Input should be a valid integer")
    assert reasons[2].startswith(f"{where} line 6: as_of: Input should be a valid datetime")
    assert reasons[3] == f"{where} line 7: expected 3 fields (retailer_id,level,as_of), got 2"
    assert reasons[4] == f"{where} line 8: retailer_id: String should have at least 1 character"
    assert sinks.rejected[0][0] == {
        "bucket": "snapshots",
        "key": "daily/levels.csv",
        "line": 3,
        "text": "B,-3," + T0.isoformat(),
    }
    assert report.rejected == 5


def test_bad_json_lines_name_the_problem() -> None:
    data = b'{"retailer_id": "A", "level": 1, "as_of": "2026-11-23T06:00:00Z"}\n{"retailer_id": "B",\n[1, 2]\n'
    data += b'{"retailer_id": "C", "level": "2", "as_of": "2026-11-23T06:00:00Z"}\n\xff\xfe\n' + b"y" * 100 + b"\n"
    report, store, sinks = load(data)
    assert store.levels == {"A": (1, T0)}
    assert [reason.split(": ", 1)[1] for _raw, reason in sinks.rejected] == [
        "not valid JSON (Expecting property name enclosed in double quotes at position 20)",
        "expected a JSON object",
        "level: Input should be a valid integer",
        "not UTF-8 text (byte 0)",
        "longer than the 80 bytes a line may have",
    ]
    assert report.rejected == 5


def test_a_snapshot_without_a_usable_header_is_rejected_whole() -> None:
    with pytest.raises(InvalidInputError) as caught:
        load(b"sku,qty,date\nA,1,2026-11-23T06:00:00Z\n")
    assert caught.value.field == "header"
    assert "line 1" in caught.value.problem


def test_an_empty_object_loads_nothing() -> None:
    report, store, _ = load(b"")
    assert report.completed and report.lines == 0 and store.levels == {}


# ---------------------------------------------------------------- hand-over


def test_the_load_hands_over_before_the_deadline_and_the_continuation_finishes_it() -> None:
    data = csv_snapshot(30).replace(b"SKU-0020,20,", b"SKU-0020,-20,")
    source, store, sinks, hand_over = MemoryObject(data), MemoryLevels(), RecordingSinks(), RecordingHandOver()

    first = loader(source, store, sinks, hand_over, Clock(lines_before_deadline=11)).load(START)
    assert not first.completed
    assert first.lines == 12  # the header and 11 levels
    assert hand_over.sent == [first.handed_over]
    position = hand_over.sent[0]
    assert (position.line, position.format, position.columns) == (
        12,
        SnapshotFormat.CSV,
        ("retailer_id", "level", "as_of"),
    )
    assert data[position.offset :].startswith(b"SKU-0011,")
    assert len(store.levels) == 11
    assert sinks.all_enqueued == {f"SKU-{index:04d}" for index in range(11)}  # enqueued before the hand-over

    # The continuation travels as JSON on the snapshot queue.
    resumed = position_from_message(json.dumps(position.model_dump(mode="json")))
    second = loader(source, store, sinks, RecordingHandOver(), Clock()).load(resumed)
    assert second.completed
    assert second.lines == 19
    assert len(store.levels) == 29  # every line applied once, none lost at the seam
    assert [reason for _raw, reason in sinks.rejected] == [
        "s3://snapshots/daily/levels.csv line 22: level: Input should be greater than or equal to 0"
    ]
    assert source.reads == [0, position.offset]


def test_every_invocation_makes_progress_even_when_it_starts_late() -> None:
    data = csv_snapshot(3)
    source, store, sinks = MemoryObject(data), MemoryLevels(), RecordingSinks()
    position, invocations = START, 0
    while True:
        invocations += 1
        hand_over = RecordingHandOver()
        report = loader(source, store, sinks, hand_over, Clock(lines_before_deadline=0)).load(position)
        if report.completed:
            break
        position = hand_over.sent[0]
    assert invocations == 4  # one line each: the header, then three levels
    assert len(store.levels) == 3


def test_a_replaced_object_stops_the_old_load_without_error() -> None:
    source, store, sinks = MemoryObject(csv_snapshot(5), etag="etag-2"), MemoryLevels(), RecordingSinks()
    report = loader(source, store, sinks, RecordingHandOver(), Clock()).load(START.model_copy(update={"offset": 24}))
    assert report.superseded is not None and "replaced" in report.superseded
    assert not report.completed and store.levels == {}


# ---------------------------------------------------------------- messages


def test_an_s3_object_created_event_starts_a_load_at_the_first_byte() -> None:
    body = {
        "version": "0",
        "id": "2d4eba74-fd51-3966-4bfa-b013c9da8ff1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::snapshots"],
        "detail": {
            "version": "0",
            "bucket": {"name": "snapshots"},
            "object": {"key": "daily/2026-11-23 levels.csv", "size": 120, "etag": "abc123", "sequencer": "0062E9"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }
    position = position_from_message(json.dumps(body))
    assert position == SnapshotPosition(bucket="snapshots", key="daily/2026-11-23 levels.csv", etag="abc123")

    with pytest.raises(InvalidInputError) as caught:
        position_from_message(json.dumps({**body, "detail-type": "Object Deleted"}))
    assert caught.value.field == "detail-type"


def test_a_malformed_continuation_is_bad_input_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        position_from_message(json.dumps({"bucket": "b", "key": "k", "etag": "e", "offset": -1}))
    assert caught.value.errors()[0]["loc"] == ("offset",)


def test_the_sample_event_starts_a_load() -> None:
    sample = Path(__file__).resolve().parents[2] / "events" / "snapshot_object_created.json"
    (record,) = json.loads(sample.read_text())["Records"]
    position = position_from_message(record["body"])
    assert (position.key, position.offset, position.line) == ("daily/2026-11-23/levels.csv", 0, 0)


# ---------------------------------------------------------------- memory


class RangeServingS3:
    """Just enough of an S3 client for the snapshot reader: ranged, ETag-conditional GETs of one object."""

    def __init__(self, data: bytes, etag: str) -> None:
        self.data = data
        self.etag = etag

    def get_object(self, *, Bucket: str, Key: str, IfMatch: str, Range: str) -> dict[str, Any]:
        assert IfMatch == f'"{self.etag}"'
        first, last = (int(part) for part in Range.removeprefix("bytes=").split("-"))
        last = min(last, len(self.data) - 1)
        return {
            "Body": io.BytesIO(self.data[first : last + 1]),
            "ContentRange": f"bytes {first}-{last}/{len(self.data)}",
        }


class CountingStore:
    def __init__(self) -> None:
        self.stored = 0

    def put_warehouse_level(self, level: Any, *, default_bucket: str) -> bool:
        self.stored += 1
        return True


def test_memory_is_bounded_by_the_chunk_not_the_object() -> None:
    """The loader holds a chunk, a line and a group of levels, never the object, so a 100,000-line snapshot fits
    a 256 MB Lambda as easily as a small one. Measured with 128 KiB chunks and a 2.4 MB object to stay fast under
    tracemalloc. pydantic-core keeps a bounded cache of the strings it has built (at most 16,384); a first pass
    fills it, so the measured pass sees only what the loader holds."""
    rows = (f"SKU-{index:06d}-{'x' * 85},{index % 97},2026-11-23T06:00:00Z" for index in range(20_000))
    data = ("retailer_id,level,as_of\n" + "\n".join(rows) + "\n").encode()
    chunk = 128 * 1024

    def load_all() -> tuple[SnapshotReport, CountingStore]:
        store, sinks = CountingStore(), RecordingSinks()
        sinks.enqueue_recompute = lambda retailer_ids: None  # type: ignore[method-assign]  # keep nothing
        snapshot = SnapshotLoader(
            S3SnapshotSource(RangeServingS3(data, "big"), chunk_bytes=chunk),
            store,
            sinks,
            RecordingHandOver(),
            default_bucket="medium",
            time_left=Clock(),
            reserve_seconds=10.0,
        )
        return snapshot.load(SnapshotPosition(bucket="b", key="big.csv", etag="big")), store

    load_all()
    tracemalloc.start()
    try:
        report, store = load_all()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.completed and store.stored == 20_000
    assert len(data) > 18 * chunk
    assert peak < 6 * chunk  # a few chunks' worth, a third of the object
