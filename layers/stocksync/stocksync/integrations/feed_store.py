"""The feed bucket in S3: the merchant's product master in, the catalog feed files out, streamed both ways.

Streaming keeps a 100,000-product export inside a 256 MB Lambda: the source is read line by line from the GET
response, and the output is spooled to /tmp beyond a few megabytes before one managed upload.
"""

from __future__ import annotations

import codecs
import io
import tempfile
from collections.abc import Callable
from typing import IO, Any

from botocore.exceptions import ClientError

_SPOOL_BYTES = 8 * 1024 * 1024
_MISSING = {"NoSuchKey", "404"}


class S3FeedStore:
    """A ``FeedStore`` on one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def open_source(self, key: str) -> IO[str] | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _MISSING:
                return None
            raise
        # utf-8-sig: spreadsheet exports often start with a byte-order mark, which would rename the first column.
        return codecs.getreader("utf-8-sig")(answer["Body"])

    def write(self, key: str, fill: Callable[[IO[str]], None]) -> None:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            fill(text)
            text.flush()
            text.detach()  # hand the bytes back without closing the spool
            spool.seek(0)
            self._client.upload_fileobj(spool, self._bucket, key, ExtraArgs={"ContentType": "text/csv"})
