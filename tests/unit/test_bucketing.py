"""Velocity buckets: boundaries, hysteresis (no flapping), explicit buckets kept, the time-bounded pass."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.logic.bucketing import AssignmentPosition, BucketAssignment, assign_bucket, plain_bucket
from stocksync.logic.recompute import BucketPage
from stocksync.models.settings import BucketSettings
from stocksync.models.sku import SkuState

BUCKETS = {
    "fast": BucketSettings(min_units_per_hour=2),
    "medium": BucketSettings(min_units_per_hour=0.2),
    "slow": BucketSettings(min_units_per_hour=0),
}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)


@pytest.mark.parametrize(
    ("velocity", "expected"),
    [(0, "slow"), (0.19, "slow"), (0.2, "medium"), (1.99, "medium"), (2, "fast"), (500, "fast")],
)
def test_plain_boundaries(velocity: float, expected: str) -> None:
    assert plain_bucket(velocity, BUCKETS) == expected


@pytest.mark.parametrize(
    ("current", "velocity", "expected"),
    [
        ("medium", 2.1, "medium"),  # above fast's floor, below 2 x 1.2 = 2.4: stays
        ("medium", 2.4, "fast"),
        ("medium", 0.17, "medium"),  # below medium's floor, above 0.2 x 0.8 = 0.16: stays
        ("medium", 0.159, "slow"),
        ("fast", 1.7, "fast"),  # above 2 x 0.8 = 1.6
        ("fast", 1.5, "medium"),
        ("fast", 0.1, "slow"),  # straight down two buckets
        ("slow", 3, "fast"),  # straight up two buckets
        ("slow", 0.23, "slow"),
        ("slow", 0.24, "medium"),
        (None, 2.1, "fast"),  # no bucket yet: plain boundaries
        ("retired", 0.3, "medium"),  # a bucket no longer configured: plain boundaries
    ],
)
def test_hysteresis(current: str | None, velocity: float, expected: str) -> None:
    assert assign_bucket(current, velocity, BUCKETS, hysteresis=0.2) == expected


def test_without_hysteresis_the_boundaries_are_plain() -> None:
    assert assign_bucket("medium", 2.0, BUCKETS, hysteresis=0) == "fast"
    assert assign_bucket("medium", 0.19, BUCKETS, hysteresis=0) == "slow"


def test_hysteresis_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        assign_bucket("slow", 1, BUCKETS, hysteresis=1)


@given(
    velocity=st.floats(min_value=0, max_value=1000, allow_nan=False),
    start=st.sampled_from(sorted(BUCKETS)),
    hysteresis=st.floats(min_value=0, max_value=0.9),
)
def test_a_sku_that_moved_stays_where_it_is_at_the_same_velocity(
    velocity: float, start: str, hysteresis: float
) -> None:
    moved = assign_bucket(start, velocity, BUCKETS, hysteresis=hysteresis)
    assert assign_bucket(moved, velocity, BUCKETS, hysteresis=hysteresis) == moved


@given(
    velocity=st.floats(min_value=0, max_value=1000, allow_nan=False),
    start=st.sampled_from(sorted(BUCKETS)),
    hysteresis=st.floats(min_value=0, max_value=0.9),
)
def test_a_sku_ends_in_a_bucket_whose_band_holds_its_velocity(velocity: float, start: str, hysteresis: float) -> None:
    """Band of a bucket: from its floor x (1 - h) up to (not including) the next faster floor x (1 + h)."""
    order = ["fast", "medium", "slow"]
    moved = assign_bucket(start, velocity, BUCKETS, hysteresis=hysteresis)
    assert moved == "slow" or velocity >= BUCKETS[moved].min_units_per_hour * (1 - hysteresis)
    faster = order[: order.index(moved)]
    assert all(velocity < BUCKETS[name].min_units_per_hour * (1 + hysteresis) for name in faster)


# ------------------------------------------------------------------------------------------------- the pass


class Table:
    def __init__(self, states: Sequence[SkuState], sold: dict[str, float]) -> None:
        self.states = {state.retailer_id: state for state in states}
        self.sold = sold
        self.velocity_reads: list[str] = []
        self.page_calls: list[tuple[str, str | None]] = []

    def bucket_page(self, bucket: str, *, after: str | None, page_size: int) -> BucketPage:
        self.page_calls.append((bucket, after))
        ids = sorted(rid for rid, state in self.states.items() if state.bucket == bucket and (not after or rid > after))
        chosen = ids[:page_size]
        return BucketPage(
            states=[self.states[rid] for rid in chosen],
            invalid={},
            last_retailer_id=chosen[-1] if chosen else None,
            has_more=len(ids) > page_size,
        )

    def velocity(self, retailer_id: str, *, now: datetime, window: timedelta) -> float:
        self.velocity_reads.append(retailer_id)
        return self.sold.get(retailer_id, 0.0)

    def move_bucket(self, retailer_id: str, *, from_bucket: str, to_bucket: str) -> bool:
        state = self.states[retailer_id]
        if state.bucket != from_bucket or state.bucket_explicit:
            return False
        self.states[retailer_id] = state.model_copy(update={"bucket": to_bucket})
        return True


def state(retailer_id: str, bucket: str, *, active: bool = True, **fields: Any) -> SkuState:
    updated = NOW - timedelta(hours=1) if active else NOW - WINDOW - timedelta(minutes=1)
    return SkuState(retailer_id=retailer_id, bucket=bucket, counters_updated_at=updated, **fields)


def assignment(table: Table, moved: list[str], page_size: int = 1000) -> BucketAssignment:
    return BucketAssignment(
        pages=table,
        velocities=table,
        moves=table,
        buckets=BUCKETS,
        hysteresis=0.2,
        window=WINDOW,
        now=NOW,
        on_moved=moved.extend,
        page_size=page_size,
    )


def test_a_pass_moves_skus_by_velocity_keeps_explicit_ones_and_reads_only_active_skus() -> None:
    table = Table(
        [
            state("hot", "slow"),
            state("cooling", "fast"),
            state("pinned", "slow", bucket_explicit=True),
            state("quiet", "medium", active=False),  # no counter moved within the window: velocity 0, no read
            state("steady", "medium"),
        ],
        sold={"hot": 5.0, "cooling": 0.5, "pinned": 50.0, "steady": 1.0},
    )
    moved: list[str] = []
    report = assignment(table, moved).run(None, time_left=lambda: 60.0)
    assert report.finished and report.examined == 5 and report.explicit == 1
    assert {rid: s.bucket for rid, s in table.states.items()} == {
        "hot": "fast",
        "cooling": "medium",
        "pinned": "slow",
        "quiet": "slow",
        "steady": "medium",
    }
    assert sorted(table.velocity_reads) == ["cooling", "hot", "steady"] and report.measured == 3
    assert sorted(moved) == ["cooling", "hot", "quiet"] and report.moved == 3


def test_a_pass_short_of_time_stops_after_a_page_and_resumes_there() -> None:
    table = Table([state(f"s{index:02d}", "slow") for index in range(12)], sold={"s05": 9.0})
    moved: list[str] = []
    # fast and medium are empty; the first page of slow takes 25 s, so 35 s left cannot cover two more of them.
    first = assignment(table, moved, page_size=5).run(
        None, time_left=lambda: 60.0 - 25 * max(0, len(table.page_calls) - 2)
    )
    assert not first.finished and first.resume_at == AssignmentPosition("slow", "s04")
    assert table.page_calls == [("fast", None), ("medium", None), ("slow", None)]
    second = assignment(table, moved, page_size=5).run(first.resume_at, time_left=lambda: 60.0)
    assert second.finished and second.examined == 7 and moved == ["s05"]
    assert table.page_calls[3:] == [("slow", "s04"), ("slow", "s09")]


def test_a_pass_resuming_in_a_bucket_no_longer_configured_starts_over() -> None:
    table = Table([state("a", "fast")], sold={"a": 3.0})
    report = assignment(table, []).run(AssignmentPosition("retired", "x"), time_left=lambda: 60.0)
    assert report.finished and report.examined == 1
