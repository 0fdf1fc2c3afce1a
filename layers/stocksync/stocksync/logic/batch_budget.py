"""A call budget as a sliding window of the calls made in the trailing hour.

Two uses. For items_batch it is the hard cap under the pacer (logic/call_pacing.py spaces the calls; this log
keeps any trailing hour within what the platform counts). For the catalog reads and the status checks it is the
whole budget (``grant``): those callers wait in their queue when it runs out, and their budgets are large.

Why a sliding window and not a refilling token bucket: the platform counts "calls per catalog per hour" (about
100, error 80014 beyond; docs/graph-api.md, "Rate limits"). A token bucket of capacity C refilling C per hour lets
up to 2C calls through in one hour (a full bucket, then its refill); a log of the call times in the trailing hour
allows exactly what the platform allows. The log is at most ``calls_per_hour`` numbers, so it fits one small
DynamoDB item that concurrent invocations update with optimistic concurrency (dal/budget.py).

Why ``grant`` makes calls fuller when the budget runs low: it packs ``preferred`` rows per call while the budget
is comfortable; once fewer than ``LOW_BUDGET_FRACTION`` of the hour's calls would remain, up to 5,000 (the API's
limit) per call, and when no call is left the caller defers its rows until ``retry_after_seconds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

BUDGET_WINDOW = timedelta(hours=1)
MAX_REQUESTS_PER_CALL = 5000  # items_batch limit (docs/graph-api.md, "Catalog: pushing stock")
LOW_BUDGET_FRACTION = 0.25


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class LapsedLease:
    """A pusher that took calls and never gave its lease back (the process died, or its release failed): its calls
    ``<holder>#0`` .. ``<holder>#<calls - 1>`` may have gone out with their batch recorded but never scheduled for
    verification. The next run granted calls settles them (logic/pushing.py)."""

    holder: str
    calls: int
    reserved_at_ms: int


@dataclass(frozen=True)
class CallGrant:
    """Calls an invocation may make now, each carrying up to ``size`` rows; rows beyond ``calls * size`` wait
    ``retry_after_seconds`` (the time until the window frees a call)."""

    calls: int
    size: int
    retry_after_seconds: float = 0.0
    calls_in_hour: int = 0  # calls in the trailing hour once this grant's are made (the paced grant reports it)
    # Leases of pushers that never gave them back (call_pacing.LapsedLease), for the run granted calls to settle.
    lapsed: tuple[LapsedLease, ...] = ()

    @property
    def capacity(self) -> int:
        return self.calls * self.size


@dataclass(frozen=True)
class CallWindow:
    """Times (epoch ms) of the calls made in the trailing hour, oldest first, and a platform-imposed pause."""

    call_times_ms: tuple[int, ...] = ()
    blocked_until_ms: int = 0

    def pruned(self, now_ms: int) -> CallWindow:
        window_ms = int(BUDGET_WINDOW.total_seconds() * 1000)
        recent = tuple(moment for moment in self.call_times_ms if moment > now_ms - window_ms)
        return CallWindow(recent, self.blocked_until_ms)

    def remaining(self, calls_per_hour: int, now_ms: int) -> int:
        if now_ms < self.blocked_until_ms:
            return 0
        return max(0, calls_per_hour - len(self.pruned(now_ms).call_times_ms))

    def seconds_until_free(self, calls_per_hour: int, now_ms: int) -> float:
        """How long until one more call is allowed (0 when one is allowed now)."""
        if self.remaining(calls_per_hour, now_ms) > 0:
            return 0.0
        recent = self.pruned(now_ms).call_times_ms
        window_ms = int(BUDGET_WINDOW.total_seconds() * 1000)
        frees_at = recent[len(recent) - calls_per_hour] + window_ms if len(recent) >= calls_per_hour else 0
        return max(frees_at, self.blocked_until_ms, now_ms) / 1000 - now_ms / 1000

    def with_calls(self, calls: int, now_ms: int) -> CallWindow:
        pruned = self.pruned(now_ms)
        return CallWindow(pruned.call_times_ms + (now_ms,) * calls, self.blocked_until_ms)

    def blocked_until(self, until_ms: int) -> CallWindow:
        return CallWindow(self.call_times_ms, max(self.blocked_until_ms, until_ms))


def plan_calls(rows: int, *, remaining: int, calls_per_hour: int, preferred_size: int) -> tuple[int, int]:
    """(calls to make now, rows per call) for ``rows`` rows when ``remaining`` calls are left this hour."""
    if rows <= 0 or remaining <= 0:
        return 0, preferred_size
    at_preferred = math.ceil(rows / preferred_size)
    low_water = math.ceil(calls_per_hour * LOW_BUDGET_FRACTION)
    if remaining - at_preferred >= low_water:
        return at_preferred, preferred_size
    at_max = math.ceil(rows / MAX_REQUESTS_PER_CALL)
    return min(at_max, remaining), MAX_REQUESTS_PER_CALL


def grant(window: CallWindow, rows: int, *, calls_per_hour: int, preferred_size: int, now_ms: int) -> CallGrant:
    """The grant for ``rows`` given the window as stored; the caller stores ``window.with_calls(grant.calls)``."""
    remaining = window.remaining(calls_per_hour, now_ms)
    calls, size = plan_calls(rows, remaining=remaining, calls_per_hour=calls_per_hour, preferred_size=preferred_size)
    wait = 0.0
    if calls * size < rows:
        after = window.with_calls(calls, now_ms)
        wait = after.seconds_until_free(calls_per_hour, now_ms)
    return CallGrant(calls, size, wait)
