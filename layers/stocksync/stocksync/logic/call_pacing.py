"""Pacing the items_batch calls: evenly spaced call slots, a small burst, one pusher at a time.

Why pace at all: the platform allows about ``calls_per_hour`` calls a catalog an hour. A budget that lets a call go
whenever one is left spends the hour in its first minutes under load, and every change after that waits for the
hour to roll over (up to ~50 minutes). Spacing the calls evenly makes the wait for the next call at most one slot
(``slot_seconds``, ~41 s at 90 calls an hour) whatever the load, and lets the rows that arrive in between
accumulate into the next call (up to 5,000).

The rule is the generic cell rate algorithm (GCRA, a token bucket kept as one timestamp): ``next_slot_ms`` is when
the next call is due at the steady rate. A call may go ``(burst - 1)`` slots early, so a quiet catalog pushes at
once, and a burst of up to ``burst`` calls can go together. The slot is derived so that bursts never break the hour:
in any trailing hour GCRA lets through at most ``burst - 1 + 3600 / slot`` calls, so ``slot = 3600 / (calls_per_hour
- burst + 1)`` keeps that at ``calls_per_hour``. The sliding-window log (batch_budget.py) stays as the hard cap the
platform counts, and the platform's own pause (80014) blocks both.

One pusher at a time: whoever is granted calls also takes a lease on the pacer (``holder`` until ``held_until``),
released when its calls are sent; another run meanwhile gets no call and waits for the next slot. The lease expires
by itself at the holder's Lambda deadline, so a crashed pusher never blocks the catalog for longer than that.
Grant, log and lease are one item written with one conditional write (dal/budget.py), so two runs can never take the
same slot.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from stocksync.logic.batch_budget import MAX_REQUESTS_PER_CALL, CallGrant, CallWindow, LapsedLease

HOUR_MS = 3_600_000
LEASE_RETRY_SECONDS = 5  # a run that meets a held lease while slots are open looks again this soon


@dataclass(frozen=True)
class Pace:
    """The pacing of one catalog's calls."""

    calls_per_hour: int
    burst: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.burst <= self.calls_per_hour:
            raise ValueError(f"burst must be between 1 and calls_per_hour ({self.calls_per_hour}), got {self.burst}")

    @property
    def slot_ms(self) -> int:
        return math.ceil(HOUR_MS / (self.calls_per_hour - self.burst + 1))

    @property
    def slot_seconds(self) -> float:
        return self.slot_ms / 1000

    @property
    def tolerance_ms(self) -> int:
        return (self.burst - 1) * self.slot_ms


MAX_LAPSED_LEASES = 20  # lapsed leases kept for settling; beyond, the oldest are forgotten (each expires anyway)


@dataclass(frozen=True)
class PacerState:
    """The call log and pause (``window``), when the next call is due at the steady rate, and who holds the lease."""

    window: CallWindow = field(default_factory=CallWindow)
    next_slot_ms: int = 0
    holder: str = ""
    held_until_ms: int = 0
    # When the holder's calls were logged (the grant's time): the log entries ``released`` may give back.
    reserved_at_ms: int = 0
    reserved_calls: int = 0  # how many calls the holder was granted
    lapsed: tuple[LapsedLease, ...] = ()  # leases never given back, not settled yet

    def held_by_other(self, holder: str, now_ms: int) -> bool:
        return bool(self.holder) and self.holder != holder and now_ms < self.held_until_ms

    def open_slots(self, pace: Pace, now_ms: int) -> int:
        """Calls allowed right now: the burst left by GCRA, within the hour's log and outside a platform pause."""
        due = max(self.next_slot_ms, now_ms)
        if due - pace.tolerance_ms > now_ms:
            return 0
        by_rate = (now_ms + pace.tolerance_ms - due) // pace.slot_ms + 1
        return max(0, min(by_rate, pace.burst, self.window.remaining(pace.calls_per_hour, now_ms)))

    def next_open_ms(self, pace: Pace, now_ms: int) -> int:
        """When a call is next allowed (``now_ms`` if one is allowed now)."""
        by_rate = max(self.next_slot_ms, now_ms) - pace.tolerance_ms
        by_window = now_ms + math.ceil(self.window.seconds_until_free(pace.calls_per_hour, now_ms) * 1000)
        return max(now_ms, by_rate, by_window, self.window.blocked_until_ms)

    def with_calls(self, calls: int, pace: Pace, now_ms: int) -> PacerState:
        if calls <= 0:
            return self
        return replace(
            self,
            window=self.window.with_calls(calls, now_ms),
            next_slot_ms=max(self.next_slot_ms, now_ms) + calls * pace.slot_ms,
        )

    def leased(self, holder: str, until_ms: int, reserved_at_ms: int = 0, calls: int = 0) -> PacerState:
        """The lease to ``holder``; a previous holder that never gave it back joins ``lapsed``."""
        lapsed = self.lapsed
        if self.holder and self.holder != holder and self.reserved_calls:
            lapsed = (*lapsed, LapsedLease(self.holder, self.reserved_calls, self.reserved_at_ms))[-MAX_LAPSED_LEASES:]
        return replace(
            self,
            holder=holder,
            held_until_ms=until_ms,
            reserved_at_ms=reserved_at_ms,
            reserved_calls=calls,
            lapsed=lapsed,
        )

    def settled(self, holders: Collection[str]) -> PacerState:
        """Without the lapsed leases of ``holders`` (their calls are settled)."""
        if not holders:
            return self
        return replace(self, lapsed=tuple(lease for lease in self.lapsed if lease.holder not in holders))

    def released(self, holder: str, *, unused: int = 0, slot_ms: int = 0) -> PacerState:
        """The lease given back, with the ``unused`` calls of its grant that were never made (a throttle stopped
        the run, or it failed before them): out of the hour's log and their slots back to the rate, so the hour
        keeps the calls the platform did not see. Only while ``holder`` still holds the lease: after it lapsed,
        another run may have been granted calls counting on these entries, and the run that gives back late
        cannot know."""
        if self.holder != holder:
            return self
        log = list(self.window.call_times_ms)
        returned = 0
        while returned < unused and self.reserved_at_ms in log:
            del log[len(log) - 1 - log[::-1].index(self.reserved_at_ms)]
            returned += 1
        window = CallWindow(tuple(log), self.window.blocked_until_ms)
        next_slot_ms = self.next_slot_ms - returned * slot_ms
        return replace(
            self,
            window=window,
            next_slot_ms=next_slot_ms,
            holder="",
            held_until_ms=0,
            reserved_at_ms=0,
            reserved_calls=0,
        )


def plan_slots(rows: int, *, open_slots: int, preferred_size: int) -> tuple[int, int]:
    """(calls, rows per call) for ``rows`` when ``open_slots`` calls may go now: the preferred size when the open
    slots carry every row at it, otherwise up to the API's 5,000 per call (a slot is the scarce thing)."""
    if rows <= 0 or open_slots <= 0:
        return 0, preferred_size
    at_preferred = math.ceil(rows / preferred_size)
    if at_preferred <= open_slots:
        return at_preferred, preferred_size
    return min(open_slots, math.ceil(rows / MAX_REQUESTS_PER_CALL)), MAX_REQUESTS_PER_CALL


def grant_slots(
    state: PacerState, rows: int, *, pace: Pace, preferred_size: int, holder: str, lease_ms: int, now_ms: int
) -> tuple[CallGrant, PacerState]:
    """The grant for ``rows`` and the state to store (unchanged when nothing is granted).

    ``retry_after_seconds`` is when the rows the grant does not carry should come back: the next open slot after
    this grant's calls, or a few seconds when another run holds the lease while slots are open (it is about to use
    them, and what it leaves is ours).
    """
    if state.held_by_other(holder, now_ms):
        wait_ms = max(state.next_open_ms(pace, now_ms) - now_ms, LEASE_RETRY_SECONDS * 1000)
        return CallGrant(0, preferred_size, wait_ms / 1000), state
    calls, size = plan_slots(rows, open_slots=state.open_slots(pace, now_ms), preferred_size=preferred_size)
    after = state.with_calls(calls, pace, now_ms)
    if calls:
        after = after.leased(holder, now_ms + lease_ms, reserved_at_ms=now_ms, calls=calls)
    wait = 0.0
    if calls * size < rows:
        wait = (after.next_open_ms(pace, now_ms) - now_ms) / 1000
    lapsed = after.lapsed if calls else ()  # the lease's holder settles them, one run at a time
    return CallGrant(calls, size, wait, len(after.window.pruned(now_ms).call_times_ms), lapsed), after
