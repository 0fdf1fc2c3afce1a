"""The simulator's own clock, so tests and benchmarks can move time without sleeping.

Every timestamp the simulated platform hands out, and every time-based behaviour (batch processing delay, the
trailing-hour batch budget, throttle regain), reads this clock; nothing in the simulator reads the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """A UTC clock that only moves forward, and only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("the simulated clock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError(f"the simulated clock only moves forward, got {seconds} seconds")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump forward to ``moment`` (timezone-aware); an earlier moment is a ValueError, as in ``advance``."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("the simulated clock needs a timezone-aware time")
        return self.advance((moment.astimezone(UTC) - self._now).total_seconds())


def graph_timestamp(moment: datetime) -> str:
    """Format a time the way Graph does in commerce order JSON: ``2026-11-01T10:00:00+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def whole_seconds(moment: datetime) -> datetime:
    """Graph timestamps have one-second resolution; order times are stored at that resolution."""
    return moment.replace(microsecond=0)


def unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())
