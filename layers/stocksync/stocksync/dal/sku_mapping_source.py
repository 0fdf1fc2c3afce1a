"""The merchant's SKU mapping, a CSV object in S3 (``shop_sku,retailer_id``), as a ``TableMapping``
(docs/connectors.md, "SKU mapping").

Bounded (size, rows, id length), every id checked, and a shop SKU listed twice with different targets refused: a bad
file raises ``SkuMappingError`` naming the rows, so the caller fails the batch (SQS retries it) instead of counting
sales against the wrong items or falling back to identity. Cached per warm container: after ``ttl_seconds`` the object
is asked for again with its ETag (If-None-Match), so an unchanged file is neither downloaded nor parsed again.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from stocksync.errors import StockSyncError
from stocksync.logic.shop_orders import TableMapping

HEADER = ("shop_sku", "retailer_id")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 200_000
MAX_ID_LENGTH = 100
TTL_SECONDS = 300.0
MAX_REPORTED = 10  # the first problems named in the error; the rest counted
_NOT_MODIFIED = {"304", "NotModified"}


class SkuMappingError(StockSyncError):
    """The mapping file cannot be read or is not a valid mapping; the message names the object and the rows."""


def _id_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value):
        return "has a control character"
    if value != value.strip():
        return "has leading or trailing whitespace"
    return None


def _row_problem(cells: list[str], table: dict[str, str], first_row: dict[str, int]) -> str | None:
    if len(cells) != 2:
        return f"expected 2 fields (shop_sku,retailer_id), found {len(cells)}"
    bad = [f"{name} {problem}" for name, value in zip(HEADER, cells, strict=True) if (problem := _id_problem(value))]
    if bad:
        return "; ".join(bad)
    shop_sku, retailer_id = cells
    known = table.get(shop_sku)
    if known is not None and known != retailer_id:
        return f"shop_sku {shop_sku!r} maps to {retailer_id!r} here and to {known!r} on line {first_row[shop_sku]}"
    return None


def parse_mapping(data: bytes, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> dict[str, str]:
    """The ``shop_sku -> retailer_id`` table of a mapping CSV (UTF-8, optional BOM, header ``shop_sku,retailer_id``,
    blank lines ignored). Raises ``SkuMappingError`` naming the rows (file line numbers) that are wrong."""
    if len(data) > max_bytes:
        raise SkuMappingError(f"is {len(data)} bytes, more than the {max_bytes} allowed")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SkuMappingError(f"is not UTF-8 (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    table: dict[str, str] = {}
    first_row: dict[str, int] = {}
    problems: list[str] = []
    rows = 0
    try:
        header = next(reader, None)
        if header is None or tuple(cell.strip().lower() for cell in header) != HEADER:
            raise SkuMappingError(f"line 1: the header must be {','.join(HEADER)}, not {header!r}")
        for cells in reader:
            line = reader.line_num
            if not cells or cells == [""]:
                continue
            rows += 1
            if rows > max_rows:
                raise SkuMappingError(f"has more than {max_rows} rows")
            problem = _row_problem(cells, table, first_row)
            if problem:
                problems.append(f"line {line}: {problem}")
                continue
            table.setdefault(cells[0], cells[1])
            first_row.setdefault(cells[0], line)
    except csv.Error as error:
        raise SkuMappingError(f"line {reader.line_num}: not valid CSV ({error})") from None
    if not problems and not table:
        raise SkuMappingError("has no rows (to use each SKU as the retailer_id, leave SkuMappingKey empty)")
    if problems:
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise SkuMappingError("; ".join(problems[:MAX_REPORTED]) + more)
    return table


@dataclass
class _Cached:
    etag: str
    mapping: TableMapping
    checked_at: float


class S3SkuMappingSource:
    """The mapping at ``s3://bucket/key``, re-checked at most every ``ttl_seconds`` (by ETag)."""

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        key: str,
        ttl_seconds: float = TTL_SECONDS,
        max_bytes: int = MAX_BYTES,
        max_rows: int = MAX_ROWS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._bucket, self._key = bucket, key
        self._ttl = ttl_seconds
        self._max_bytes, self._max_rows = max_bytes, max_rows
        self._monotonic = monotonic
        self._cached: _Cached | None = None
        self._lock = threading.Lock()
        self.downloads = 0  # full reads (tests, logs)

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._key}"

    def mapping(self) -> TableMapping:
        """The current mapping; raises ``SkuMappingError`` when the object cannot be read or parsed."""
        with self._lock:
            now = self._monotonic()
            cached = self._cached
            if cached is not None and now - cached.checked_at < self._ttl:
                return cached.mapping
            try:
                self._cached = self._load(cached, now)
            except SkuMappingError:
                self._cached = None  # a bad or unreadable file is never served from the cache
                raise
            return self._cached.mapping

    def _load(self, cached: _Cached | None, now: float) -> _Cached:
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        if cached is not None:
            request["IfNoneMatch"] = cached.etag
        try:
            answer = self._client.get_object(**request)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if cached is not None and code in _NOT_MODIFIED:
                cached.checked_at = now
                return cached
            raise SkuMappingError(f"{self.location} cannot be read ({code})") from None
        size = answer.get("ContentLength")
        if isinstance(size, int) and size > self._max_bytes:
            answer["Body"].close()
            raise SkuMappingError(f"{self.location} is {size} bytes, more than the {self._max_bytes} allowed")
        data = answer["Body"].read(self._max_bytes + 1)
        self.downloads += 1
        try:
            table = parse_mapping(data, max_bytes=self._max_bytes, max_rows=self._max_rows)
        except SkuMappingError as error:
            raise SkuMappingError(f"{self.location}: {error}") from None
        return _Cached(etag=answer.get("ETag", ""), mapping=TableMapping(table), checked_at=now)


_sources: dict[tuple[str, str], S3SkuMappingSource] = {}
_sources_lock = threading.Lock()


def shared_source(client: Any, *, bucket: str, key: str) -> S3SkuMappingSource:
    """The container's one source for ``bucket``/``key``, so the cache outlives an invocation."""
    with _sources_lock:
        source = _sources.get((bucket, key))
        if source is None:
            source = _sources[(bucket, key)] = S3SkuMappingSource(client, bucket=bucket, key=key)
        source._client = client  # the process's current client (tests point it elsewhere between runs)
        return source


def forget_sources() -> None:
    """Drop every cached mapping (tests)."""
    with _sources_lock:
        _sources.clear()
