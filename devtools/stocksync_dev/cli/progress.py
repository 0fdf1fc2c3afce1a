"""A one-line progress display on a terminal, for the long quiet parts of a command (``make demo``'s replay: the
stack's deploy into moto, the initial publish, a simulated day of steps).

Why: the demo's first run was silent for minutes and looked hung. The line is written to stderr only when stderr is
a terminal, rewritten in place (carriage return, clear to end of line) and cleared when done, so stdout (the report,
or exactly one JSON object with ``--json``) and piped or captured output never carry it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_CLEAR = "\r\033[K"


class Progress:
    """``update(text)`` shows "stocksync: <text> (<seconds>s)" in place, and a ticker redraws it every ``tick``
    seconds so a long step (the deploy, a long run) still shows time passing; ``done()`` stops it and clears the
    line. Silent (every call a no-op, no thread) when the stream is not a terminal."""

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool | None = None, tick: float = 1.0, ticking: bool = True
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tick = tick
        self._ticker: threading.Thread | None = None
        self._ticking = ticking

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._text = text
            self._draw()
        if self._ticking and self._ticker is None:
            self._ticker = threading.Thread(target=self._redraw, name="stocksync-progress", daemon=True)
            self._ticker.start()

    def done(self) -> None:
        if not self.enabled:
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self._text:
                self._stream.write(_CLEAR)
                self._stream.flush()
                self._text = ""

    def _draw(self) -> None:
        seconds = time.monotonic() - self._started
        self._stream.write(f"{_CLEAR}stocksync: {self._text} ({seconds:.0f}s)")
        self._stream.flush()

    def _redraw(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                if self._text:
                    self._draw()


SILENT = Progress(enabled=False)
