"""Bulk warehouse levels from a snapshot object (CSV or JSON lines in S3), read in chunks and handed over in time.

Why a hand-over: a daily snapshot can hold 100,000 SKUs, and at one conditional write each that takes longer than
one invocation may run. The loader watches the invocation's remaining time and, before it runs out, sends a
continuation to the snapshot queue: the object, its ETag, the byte offset of the next unread line and the number of
lines read so far. The queue triggers the same function, which goes on from there. Every level write is
conditional on ``as_of``, so re-reading lines after a crash or a redelivery changes nothing: neither the load nor
the hand-over has to happen exactly once.

Why the ETag: an offset only means something in the object it was computed on. If the object is replaced or
deleted mid-load, the rest of the old load is dropped; the new object's own event loads it from the start.

Formats, told apart by the first non-blank line: CSV whose header names ``retailer_id``, ``level`` and ``as_of``
(in any order), or JSON lines, one object with the same fields per line. A bad line goes to the dead-letter queue
with its line number and field, and the rest of the object still applies. Lines are numbered from 1, as an editor
shows them (a CSV header is line 1); blank lines are skipped but counted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import ConfigDict, Field, ValidationError

from stocksync.errors import InvalidInputError, StockSyncError, describe_validation_error
from stocksync.logic.warehouse_input import LevelStore, WarehouseSinks, apply_levels
from stocksync.models.base import Model
from stocksync.models.inventory import WarehouseLevel

COLUMNS = ("retailer_id", "level", "as_of")
OBJECT_CREATED = "Object Created"
# Levels are written in groups of this many, so their recompute messages go out in full SQS batches.
LEVELS_PER_GROUP = 100
_INTEGER = re.compile(r"[+-]?\d+")
_SAMPLE_CHARS = 500  # how much of a bad line its dead letter quotes


class SnapshotFormat(StrEnum):
    CSV = "csv"
    JSON_LINES = "jsonl"


class SnapshotPosition(Model):
    """Where a snapshot load stands: the body of a continuation message on the snapshot queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]
    etag: Annotated[str, Field(min_length=1)]
    offset: Annotated[int, Field(ge=0, strict=True)] = 0  # byte where the next unread line starts
    line: Annotated[int, Field(ge=0, strict=True)] = 0  # lines read so far; the next one is line + 1
    format: SnapshotFormat | None = None  # None until the first non-blank line was read
    columns: tuple[str, ...] | None = None  # a CSV header's column order

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line of the object as bytes (without its newline), and where it lies in the object."""

    start: int
    end: int  # where the next line starts
    data: bytes
    overlong: bool = False  # longer than the reader keeps; ``data`` holds only its beginning


class SnapshotChangedError(StockSyncError):
    """The object no longer has the ETag the load started on (replaced or deleted)."""


class LineSource(Protocol):
    def lines(self, position: SnapshotPosition) -> Iterator[RawLine]:
        """The object's lines from ``position.offset`` on; SnapshotChangedError if its ETag is not ``position.etag``."""
        ...


class HandOver(Protocol):
    def send(self, position: SnapshotPosition) -> None:
        """Queue the rest of the load; raise if it could not be queued (the message is then redelivered)."""
        ...


@dataclass
class SnapshotReport:
    lines: int = 0  # lines read in this invocation
    stored: int = 0  # levels newer than the stored ones
    stale: int = 0  # levels not newer than the stored ones
    rejected: int = 0
    completed: bool = False
    handed_over: SnapshotPosition | None = None
    superseded: str | None = None  # why the load stopped early because the object changed

    def summary(self) -> dict[str, Any]:
        """The counts, for a log line or a handler's return value."""
        return {
            "lines": self.lines,
            "stored": self.stored,
            "stale": self.stale,
            "rejected": self.rejected,
            "completed": self.completed,
            "handed_over_at": self.handed_over.offset if self.handed_over else None,
            "superseded": self.superseded,
        }


def position_from_message(body: str) -> SnapshotPosition:
    """A snapshot queue message: an S3 "Object Created" event (start at 0) or a continuation."""
    payload = json.loads(body)
    if isinstance(payload, dict) and "detail-type" in payload:
        event = S3EventNotificationEventBridgeModel.model_validate(payload)
        if event.detail_type != OBJECT_CREATED:
            raise InvalidInputError("detail-type", f"expected {OBJECT_CREATED!r}, got {event.detail_type!r}")
        return SnapshotPosition(
            bucket=event.detail.bucket.name, key=event.detail.object.key, etag=event.detail.object.etag
        )
    return SnapshotPosition.model_validate(payload)


def read_header(text: str) -> tuple[SnapshotFormat, tuple[str, ...] | None]:
    """The format from the first non-blank line, and a CSV header's columns (a JSON line is data, not a header)."""
    if text.lstrip().startswith("{"):
        return SnapshotFormat.JSON_LINES, None
    columns = tuple(name.strip().lower() for name in next(csv.reader([text])))
    if sorted(columns) != sorted(COLUMNS):
        raise InvalidInputError(
            "header", f"expected CSV columns {','.join(COLUMNS)} (any order) or JSON lines; got {text[:200]!r}"
        )
    return SnapshotFormat.CSV, columns


def parse_level(text: str, position: SnapshotPosition) -> WarehouseLevel:
    """One data line as a level; InvalidInputError or ValidationError naming the field when it is not one."""
    if position.format is SnapshotFormat.JSON_LINES:
        try:
            fields: Any = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInputError("line", f"not valid JSON ({error.msg} at position {error.pos})") from None
        if not isinstance(fields, dict):
            raise InvalidInputError("line", "expected a JSON object")
        return WarehouseLevel.model_validate(fields)
    columns = position.columns or COLUMNS
    values = next(csv.reader([text]))
    if len(values) != len(columns):
        raise InvalidInputError("line", f"expected {len(columns)} fields ({','.join(columns)}), got {len(values)}")
    row: dict[str, Any] = dict(zip(columns, (value.strip() for value in values), strict=True))
    if _INTEGER.fullmatch(row["level"]):
        row["level"] = int(row["level"])  # CSV has no types; anything else stays text and fails validation
    return WarehouseLevel.model_validate(row)


class SnapshotLoader:
    """Applies a snapshot's levels from a position on, and hands the rest over before the time runs out.

    ``time_left`` is the invocation's remaining time in seconds (the context's in Lambda, a fake in tests); the load
    hands over once it drops below ``reserve_seconds``, after at least one line, so every invocation makes progress.
    """

    def __init__(
        self,
        source: LineSource,
        store: LevelStore,
        sinks: WarehouseSinks,
        hand_over: HandOver,
        *,
        default_bucket: str,
        time_left: Callable[[], float],
        reserve_seconds: float,
    ) -> None:
        self._source = source
        self._store = store
        self._sinks = sinks
        self._hand_over = hand_over
        self._default_bucket = default_bucket
        self._time_left = time_left
        self._reserve = reserve_seconds

    def load(self, position: SnapshotPosition) -> SnapshotReport:
        report = SnapshotReport()
        group: list[WarehouseLevel] = []
        offset, number = position.offset, position.line  # where the next line starts, and the last one's number
        try:
            for raw in self._source.lines(position):
                if report.lines and self._time_left() < self._reserve:
                    self._apply(group, report)
                    report.handed_over = position.model_copy(update={"offset": offset, "line": number})
                    self._hand_over.send(report.handed_over)
                    return report
                report.lines += 1
                offset, number = raw.end, number + 1
                position, level = self._read(raw, number, position, report)
                if level is not None:
                    group.append(level)
                if len(group) >= LEVELS_PER_GROUP:
                    self._apply(group, report)
            report.completed = True
        except SnapshotChangedError as error:
            report.superseded = str(error)
        finally:
            self._apply(group, report)
        return report

    def _read(
        self, raw: RawLine, number: int, position: SnapshotPosition, report: SnapshotReport
    ) -> tuple[SnapshotPosition, WarehouseLevel | None]:
        """The level on line ``number``, if it holds one; the position learns the format from the first line."""
        try:
            text = self._text(raw)
        except InvalidInputError as error:
            self._reject(position, number, raw, error.problem, report)
            return position, None
        if not text.strip():
            return position, None
        if position.format is None:
            try:
                file_format, columns = read_header(text)
            except InvalidInputError as error:  # without a header no line can be read: the whole object is bad
                raise InvalidInputError("header", f"{position.location} line {number}: {error.problem}") from None
            position = position.model_copy(update={"format": file_format, "columns": columns})
            if file_format is SnapshotFormat.CSV:
                return position, None
        try:
            return position, parse_level(text, position)
        except InvalidInputError as error:
            self._reject(position, number, raw, error.problem, report)
        except ValidationError as error:
            self._reject(position, number, raw, describe_validation_error(error), report)
        return position, None

    @staticmethod
    def _text(raw: RawLine) -> str:
        if raw.overlong:
            raise InvalidInputError("line", f"longer than the {len(raw.data)} bytes a line may have")
        try:
            text = raw.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInputError("line", f"not UTF-8 text (byte {error.start})") from None
        if raw.start == 0:
            text = text.removeprefix("\ufeff")  # a byte order mark some spreadsheet exports write
        return text.removesuffix("\r")

    def _reject(
        self, position: SnapshotPosition, number: int, raw: RawLine, problem: str, report: SnapshotReport
    ) -> None:
        report.rejected += 1
        self._sinks.reject(
            {
                "bucket": position.bucket,
                "key": position.key,
                "line": number,
                "text": raw.data[:_SAMPLE_CHARS].decode("utf-8", errors="replace"),
            },
            f"{position.location} line {number}: {problem}",
        )

    def _apply(self, group: list[WarehouseLevel], report: SnapshotReport) -> None:
        """Write the group's levels and empty it (first, so a failed write is not attempted twice)."""
        levels = group.copy()
        group.clear()
        if levels:
            # Counts only: a set of every changed SKU would grow with the object (100,000 SKUs, ~15 MB).
            receipt = apply_levels(levels, self._store, self._sinks, default_bucket=self._default_bucket)
            report.stored += receipt.stored
            report.stale += receipt.stale
