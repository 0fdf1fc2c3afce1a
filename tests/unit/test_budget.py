"""The batch-call budget: never more calls in a trailing hour than allowed, fuller calls when it runs low."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.logic.batch_budget import (
    LOW_BUDGET_FRACTION,
    MAX_REQUESTS_PER_CALL,
    CallWindow,
    epoch_ms,
    grant,
    plan_calls,
)
from tests.fakes.push import MemoryBudget

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
HOUR_MS = 3_600_000


def test_a_comfortable_budget_packs_the_preferred_size_in_the_minimum_number_of_calls() -> None:
    assert plan_calls(12_000, remaining=90, calls_per_hour=90, preferred_size=3000) == (4, 3000)
    assert plan_calls(1, remaining=90, calls_per_hour=90, preferred_size=3000) == (1, 3000)


def test_a_low_budget_packs_up_to_the_api_limit_per_call() -> None:
    low_water = math.ceil(100 * LOW_BUDGET_FRACTION)
    # 4 calls at 3,000 would leave fewer than the low-water mark: 3 calls of up to 5,000 instead.
    assert plan_calls(12_000, remaining=low_water + 3, calls_per_hour=100, preferred_size=3000) == (3, 5000)
    # Fewer calls left than needed even at 5,000: use them all; the rest waits.
    assert plan_calls(12_000, remaining=2, calls_per_hour=100, preferred_size=3000) == (2, MAX_REQUESTS_PER_CALL)
    assert plan_calls(12_000, remaining=0, calls_per_hour=100, preferred_size=3000)[0] == 0


def test_an_exhausted_window_says_when_the_oldest_call_leaves_it() -> None:
    now = epoch_ms(T0)
    window = CallWindow(tuple(now - HOUR_MS + 60_000 * (i + 1) for i in range(3)))
    assert window.remaining(3, now) == 0
    assert window.seconds_until_free(3, now) == 60
    granted = grant(window, 10, calls_per_hour=3, preferred_size=3000, now_ms=now)
    assert (granted.calls, granted.retry_after_seconds) == (0, 60)
    # One minute later the oldest call has left the trailing hour.
    assert window.remaining(3, now + 60_000) == 1


def test_a_platform_throttle_blocks_the_budget_until_the_announced_time() -> None:
    now = epoch_ms(T0)
    window = CallWindow().blocked_until(now + 300_000)
    assert window.remaining(100, now) == 0
    assert window.seconds_until_free(100, now) == 300
    assert window.remaining(100, now + 300_000) == 100


def test_rows_beyond_the_grant_wait_until_a_call_frees_up() -> None:
    now = epoch_ms(T0)
    window = CallWindow(tuple(now - HOUR_MS + 1000 * (i + 1) for i in range(98)))
    granted = grant(window, 20_000, calls_per_hour=100, preferred_size=3000, now_ms=now)
    assert (granted.calls, granted.size) == (2, 5000)
    assert granted.retry_after_seconds == 1  # the oldest of the 98 leaves the window a second from now


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(1, 30_000)), max_size=80), st.integers(1, 20))
def test_no_trailing_hour_ever_holds_more_calls_than_the_budget(
    arrivals: list[tuple[int, int]], calls_per_hour: int
) -> None:
    budget = MemoryBudget(calls_per_hour)
    moment = T0
    made: list[datetime] = []
    for gap_seconds, rows in arrivals:
        moment += timedelta(seconds=gap_seconds)
        granted = budget.acquire(rows, preferred_size=3000, now=moment)
        assert granted.size in (3000, MAX_REQUESTS_PER_CALL)
        assert granted.calls <= math.ceil(rows / 3000)
        made.extend([moment] * granted.calls)
    for start in made:
        in_hour = [m for m in made if start <= m < start + timedelta(hours=1)]
        assert len(in_hour) <= calls_per_hour
