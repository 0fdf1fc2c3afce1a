"""The product's clock. Real UTC time in AWS; the local replay swaps in the simulator's clock so that time-based
rules (confirmation timeouts, the platform's 30-minute window, velocity windows) follow the scenario's ``advance``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _source()


def use(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores real time). Only the replay and tests call this."""
    global _source  # noqa: PLW0603
    _source = source if source is not None else (lambda: datetime.now(UTC))
