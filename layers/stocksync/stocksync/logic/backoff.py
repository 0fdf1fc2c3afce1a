"""Jittered exponential backoff between retries of a write that lost a race, bounded.

Why: when many writers contend for one item (a hot SKU's counters, updated by a transaction per order), retrying at
once makes every loser collide again at the same instant; spreading the retries over a growing, random interval
lets them through one by one. "Full jitter" (a uniform draw between 0 and the exponential bound) is the variant
AWS's architecture blog measured as doing the least work for the same completion time ("Exponential Backoff And
Jitter", 2015). The bound is capped so the total wait of one record stays a small part of a Lambda invocation:
at the defaults, at most 1.6 s over the 7 waits of 8 tries (about half that on average).

The sleep and the random draw can be passed in, so a test uses a fake sleeper and never waits; without one, the
module's ``_sleep`` is looked up at each wait (the test suite replaces it, tests/conftest.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Sleep = Callable[[float], None]
_sleep: Sleep = time.sleep


@dataclass(frozen=True)
class Backoff:
    """Wait before retry ``n`` (1 for the first retry): uniform in [0, min(cap, base * 2**(n - 1))]."""

    base_seconds: float = 0.025
    cap_seconds: float = 0.4
    sleep: Sleep | None = field(default=None, compare=False)
    draw: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError(f"need 0 < base <= cap, got base {self.base_seconds} and cap {self.cap_seconds}")

    def bound(self, retry: int) -> float:
        """The longest wait before retry ``retry``."""
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, retry - 1))

    def delay(self, retry: int) -> float:
        return self.draw() * self.bound(retry)

    def wait(self, retry: int) -> float:
        """Sleep before retry ``retry``; the seconds slept."""
        seconds = self.delay(retry)
        if seconds > 0:
            (self.sleep or _sleep)(seconds)
        return seconds

    def worst_case_seconds(self, tries: int) -> float:
        """The longest total wait of ``tries`` tries (``tries - 1`` waits)."""
        return sum(self.bound(retry) for retry in range(1, tries))


def conflict_tries(tries: int, backoff: Backoff | None = None) -> Iterator[int]:
    """The try numbers 1..``tries`` of an optimistic read-compute-write loop, with a backoff wait before each
    try after the first: the loop body returns on success, so a wait only follows a lost race."""
    waits = backoff or Backoff()
    for attempt in range(1, tries + 1):
        if attempt > 1:
            waits.wait(attempt - 1)
        yield attempt
