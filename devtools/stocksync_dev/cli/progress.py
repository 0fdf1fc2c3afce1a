"""A one-line progress display on a terminal, for the long quiet parts of a command (``make demo``'s replay: the
stack's deploy into moto, the initial publish, a simulated day of steps).

Why: the demo's first run was silent for minutes and looked hung. The line is written to stderr only when stderr is
a terminal, rewritten in place (carriage return, clear to end of line) and cleared when done, so stdout (the report,
or exactly one JSON object with ``--json``) and piped or captured output never carry it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_CLEAR = "\r\033[K"


class Progress:
    """``update(text)`` shows "stocksync: <text> (<seconds>s)" in place; ``done()`` clears it. Silent (every call a
    no-op) when the stream is not a terminal."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._shown = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        seconds = time.monotonic() - self._started
        self._stream.write(f"{_CLEAR}stocksync: {text} ({seconds:.0f}s)")
        self._stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            self._stream.write(_CLEAR)
            self._stream.flush()
            self._shown = False


SILENT = Progress(enabled=False)
