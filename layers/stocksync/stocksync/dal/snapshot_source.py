"""Snapshot objects in S3, read as lines one ranged GET at a time, so memory stays flat whatever the object's size.

Why ranged GETs instead of one streaming GET: the loader spends minutes writing levels between reads, and a
response left unread that long can be cut by the server. Each chunk is its own short request, conditional on the
ETag the load started on (If-Match), so a load never mixes two versions of an object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from stocksync.logic.snapshot_load import RawLine, SnapshotChangedError, SnapshotPosition

CHUNK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # a level line is ~50 bytes; anything this long is not one, and is not kept whole
_GONE = {"PreconditionFailed", "412", "NoSuchKey", "404"}


def split_lines(chunks: Iterable[bytes], *, start: int, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[RawLine]:
    """Cut a stream of chunks that begins at byte ``start`` of the object into lines (``\\n``-terminated)."""
    buffer = bytearray()
    overlong = False
    line_start = chunk_start = start

    def keep(piece: bytes) -> None:
        nonlocal overlong
        if overlong:
            return
        buffer.extend(piece)
        if len(buffer) > max_line_bytes:
            overlong = True
            del buffer[max_line_bytes:]

    for chunk in chunks:
        cursor = 0
        while (newline := chunk.find(b"\n", cursor)) >= 0:
            keep(chunk[cursor:newline])
            end = chunk_start + newline + 1
            yield RawLine(start=line_start, end=end, data=bytes(buffer), overlong=overlong)
            buffer.clear()
            overlong = False
            line_start, cursor = end, newline + 1
        keep(chunk[cursor:])
        chunk_start += len(chunk)
    if line_start < chunk_start:  # a last line without a newline
        yield RawLine(start=line_start, end=chunk_start, data=bytes(buffer), overlong=overlong)


def _object_size(content_range: str | None) -> int | None:
    """The total size from a Content-Range header ("bytes 0-1023/4096")."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1]
    return int(total) if total.isdigit() else None


class S3SnapshotSource:
    """LineSource over S3 (snapshot_load.LineSource)."""

    def __init__(self, client: Any, *, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._client = client
        self._chunk_bytes = chunk_bytes
        self._max_line_bytes = max_line_bytes
        self.requests = 0

    def lines(self, position: SnapshotPosition) -> Iterator[RawLine]:
        return split_lines(self._chunks(position), start=position.offset, max_line_bytes=self._max_line_bytes)

    def _chunks(self, position: SnapshotPosition) -> Iterator[bytes]:
        offset, size = position.offset, None
        etag = position.etag if position.etag.startswith('"') else f'"{position.etag}"'
        while size is None or offset < size:
            try:
                self.requests += 1
                answer = self._client.get_object(
                    Bucket=position.bucket,
                    Key=position.key,
                    IfMatch=etag,
                    Range=f"bytes={offset}-{offset + self._chunk_bytes - 1}",
                )
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "InvalidRange":
                    return  # the offset is at the end (an empty object, or a size that is a multiple of a chunk)
                if code in _GONE:
                    raise SnapshotChangedError(
                        f"{position.location} no longer has ETag {position.etag} ({code}); its own event loads it"
                    ) from None
                raise
            data = answer["Body"].read()
            if not data:
                return
            yield data
            offset += len(data)
            size = _object_size(answer.get("ContentRange"))
            if size is None and len(data) < self._chunk_bytes:
                return  # no Content-Range: a short chunk is the last one
