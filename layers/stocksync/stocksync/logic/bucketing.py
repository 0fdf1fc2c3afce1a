"""Velocity buckets: which bucket a SKU belongs in, from its measured sales velocity, without flapping.

Buckets are ordered by their floor (``min_units_per_hour``), fastest first; a SKU's plain bucket is the fastest one
whose floor its velocity reaches. Hysteresis ``h`` keeps a SKU near a boundary where it is: it moves up to a faster
bucket only when its velocity reaches that bucket's floor times ``1 + h``, and down only when its velocity falls
below its current bucket's floor times ``1 - h``. A SKU that has just moved therefore stays put at the same
velocity: after a move up its velocity is at least ``floor * (1 + h)``, above the ``floor * (1 - h)`` that would move
it down; after a move down it lands in the fastest bucket whose ``floor * (1 - h)`` its velocity reaches, and the
bucket above it is out of reach even without the ``1 + h``.

SKUs with an explicit bucket (set by the merchant) are never moved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from stocksync.logic.recompute import BucketPages
from stocksync.models.settings import BucketSettings
from stocksync.models.sku import SkuState

# The report keeps this many moves by name (the count is always exact).
MAX_NAMED_MOVES = 200


def buckets_fastest_first(buckets: Mapping[str, BucketSettings]) -> list[str]:
    return sorted(buckets, key=lambda name: (-buckets[name].min_units_per_hour, name))


def plain_bucket(velocity: float, buckets: Mapping[str, BucketSettings]) -> str:
    """The fastest bucket whose floor ``velocity`` reaches (the slowest bucket when it reaches none)."""
    ordered = buckets_fastest_first(buckets)
    return next((name for name in ordered if velocity >= buckets[name].min_units_per_hour), ordered[-1])


def assign_bucket(
    current: str | None, velocity: float, buckets: Mapping[str, BucketSettings], *, hysteresis: float
) -> str:
    """The bucket a SKU without an explicit bucket should be in; ``current`` when hysteresis keeps it there."""
    if not 0 <= hysteresis < 1:
        raise ValueError(f"hysteresis must be in [0, 1), not {hysteresis}")
    if current not in buckets:
        return plain_bucket(velocity, buckets)
    ordered = buckets_fastest_first(buckets)
    position = ordered.index(current)
    up = next((name for name in ordered if velocity >= buckets[name].min_units_per_hour * (1 + hysteresis)), None)
    if up is not None and ordered.index(up) < position:
        return up
    if velocity < buckets[current].min_units_per_hour * (1 - hysteresis):
        return next(
            (name for name in ordered if velocity >= buckets[name].min_units_per_hour * (1 - hysteresis)),
            ordered[-1],
        )
    return current


# ------------------------------------------------------------------------------------------------- the job


class Velocities(Protocol):
    def velocity(self, retailer_id: str, *, now: datetime, window: timedelta) -> float:
        """Units per hour over the trailing window."""
        ...


class BucketMoves(Protocol):
    def move_bucket(self, retailer_id: str, *, from_bucket: str, to_bucket: str) -> bool:
        """Move a SKU that is still in ``from_bucket`` and has no explicit bucket; False when that no longer holds."""
        ...


@dataclass(frozen=True, slots=True)
class AssignmentPosition:
    """Where a re-evaluation pass stopped: in ``bucket``, after ``after`` (None: at the bucket's start)."""

    bucket: str
    after: str | None = None


@dataclass
class AssignmentReport:
    examined: int = 0
    explicit: int = 0
    measured: int = 0  # SKUs whose sales records were read (the others sold nothing within the window)
    moved: int = 0
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (retailer id, from, to), the first few
    finished: bool = False  # the pass reached the end of the last bucket
    resume_at: AssignmentPosition | None = None


def sold_nothing_within(state: SkuState, *, now: datetime, window: timedelta) -> bool:
    """True when the ledger has not moved the SKU's counters within the window: every order placed moves them, so
    the SKU sold nothing and its sales records need not be read."""
    return state.counters_updated_at is None or state.counters_updated_at < now - window


class BucketAssignment:
    """Re-evaluates the bucket of every SKU without an explicit bucket from its velocity over a trailing window."""

    def __init__(
        self,
        *,
        pages: BucketPages,
        velocities: Velocities,
        moves: BucketMoves,
        buckets: Mapping[str, BucketSettings],
        hysteresis: float,
        window: timedelta,
        now: datetime,
        on_moved: Callable[[Sequence[str]], None],
        page_size: int = 1000,
        reserve_seconds: float = 5.0,
    ) -> None:
        self._pages = pages
        self._velocities = velocities
        self._moves = moves
        self._buckets = buckets
        self._hysteresis = hysteresis
        self._window = window
        self._now = now
        self._on_moved = on_moved
        self._page_size = page_size
        self._reserve = reserve_seconds

    def run(self, start: AssignmentPosition | None, *, time_left: Callable[[], float]) -> AssignmentReport:
        """One pass (or the part of one that fits the time left) over every bucket's SKUs, fastest bucket first.

        Moved SKUs go to ``on_moved`` page by page (their threshold changed: they need a recompute). The report
        says where to resume when the time ran short; a pass that was to resume in a bucket no longer configured
        starts over. At least one page is done per run, so a run always makes progress.
        """
        report = AssignmentReport()
        order = buckets_fastest_first(self._buckets)
        if start is None or start.bucket not in self._buckets:
            start = AssignmentPosition(order[0])
        slowest = 0.0
        moved_here: set[str] = set()  # moved into a bucket this pass has yet to page through: judged already
        for bucket in order[order.index(start.bucket) :]:
            after = start.after if bucket == start.bucket else None
            while True:
                left = time_left()
                if report.examined and left < self._reserve + 2 * slowest:
                    report.resume_at = AssignmentPosition(bucket, after)
                    return report
                page = self._pages.bucket_page(bucket, after=after, page_size=self._page_size)
                moved = [
                    state.retailer_id
                    for state in page.states
                    if state.retailer_id not in moved_here and self._reassign(state, bucket, report)
                ]
                if moved:
                    moved_here.update(moved)
                    self._on_moved(moved)
                after = page.last_retailer_id or after
                slowest = max(slowest, left - time_left())
                if not page.has_more:
                    break
        report.finished = True
        return report

    def _reassign(self, state: SkuState, bucket: str, report: AssignmentReport) -> bool:
        report.examined += 1
        if state.bucket_explicit:
            report.explicit += 1
            return False
        velocity = 0.0
        if not sold_nothing_within(state, now=self._now, window=self._window):
            report.measured += 1
            velocity = self._velocities.velocity(state.retailer_id, now=self._now, window=self._window)
        target = assign_bucket(bucket, velocity, self._buckets, hysteresis=self._hysteresis)
        if target == bucket or not self._moves.move_bucket(state.retailer_id, from_bucket=bucket, to_bucket=target):
            return False
        report.moved += 1
        if len(report.moves) < MAX_NAMED_MOVES:
            report.moves.append((state.retailer_id, bucket, target))
        return True
