"""Paced call slots: evenly spaced, a small burst after a quiet spell, never more than the hour allows, one holder."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.logic.batch_budget import MAX_REQUESTS_PER_CALL
from stocksync.logic.call_pacing import Pace, PacerState, grant_slots, plan_slots
from stocksync.logic.catalog_model import CatalogValue
from stocksync.logic.push_priority import is_urgent
from stocksync.models.sku import Visibility

HOUR_MS = 3_600_000
T0 = 1_795_000_000_000
LEASE_MS = 60_000


def take(state: PacerState, rows: int, now_ms: int, pace: Pace, holder: str = "run") -> tuple[int, PacerState]:
    granted, after = grant_slots(
        state, rows, pace=pace, preferred_size=3000, holder=holder, lease_ms=LEASE_MS, now_ms=now_ms
    )
    return granted.calls, after.released(holder)


def test_the_slot_leaves_room_for_the_burst_inside_the_hour() -> None:
    assert Pace(90, 1).slot_seconds == 40
    assert Pace(90, 3).slot_ms == math.ceil(HOUR_MS / 88)  # 40.9 s: 3 + 87 calls fit one trailing hour
    assert Pace(100, 1).slot_seconds == 36


def test_a_quiet_catalog_pushes_at_once_and_a_busy_one_every_slot() -> None:
    pace = Pace(90, 3)
    state = PacerState()
    made = []
    for second in range(0, 600):  # one row every second for ten minutes
        calls, state = take(state, 1, T0 + second * 1000, pace)
        made.extend([second] * calls)
    assert made[:3] == [0, 1, 2]  # the burst: a lone change never waits
    gaps = {b - a for a, b in itertools.pairwise(made[3:])}
    assert gaps <= {40, 41}  # then one call per 40.9 s slot, evenly
    assert len(made) == 3 + (600 - 3) * 1000 // pace.slot_ms


def test_open_slots_carry_the_preferred_size_and_fill_up_to_5000_when_they_are_the_limit() -> None:
    assert plan_slots(6000, open_slots=3, preferred_size=3000) == (2, 3000)
    assert plan_slots(6000, open_slots=1, preferred_size=3000) == (1, MAX_REQUESTS_PER_CALL)
    assert plan_slots(20_000, open_slots=2, preferred_size=3000) == (2, MAX_REQUESTS_PER_CALL)
    assert plan_slots(10, open_slots=0, preferred_size=3000)[0] == 0


def test_a_held_lease_gives_another_run_no_call_and_lapses_at_its_deadline() -> None:
    pace = Pace(90, 3)
    granted, held = grant_slots(
        PacerState(), 10, pace=pace, preferred_size=3000, holder="a", lease_ms=LEASE_MS, now_ms=T0
    )
    assert granted.calls == 1 and held.holder == "a"
    other, unchanged = grant_slots(held, 10, pace=pace, preferred_size=3000, holder="b", lease_ms=LEASE_MS, now_ms=T0)
    assert other.calls == 0 and unchanged is held and other.retry_after_seconds == 5
    later, taken = grant_slots(
        held, 10, pace=pace, preferred_size=3000, holder="b", lease_ms=LEASE_MS, now_ms=T0 + LEASE_MS
    )
    assert later.calls == 1 and taken.holder == "b"
    assert held.released("b") is held  # only the holder gives it back


def test_a_platform_pause_stops_the_slots_until_it_ends() -> None:
    pace = Pace(90, 3)
    state = PacerState()
    state = PacerState(window=state.window.blocked_until(T0 + 300_000))
    granted, _ = grant_slots(state, 10, pace=pace, preferred_size=3000, holder="a", lease_ms=LEASE_MS, now_ms=T0)
    assert (granted.calls, granted.retry_after_seconds) == (0, 300)


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.tuples(st.integers(0, 120_000), st.integers(1, 30_000)), min_size=1, max_size=300),
    st.integers(2, 120),
    st.integers(1, 5),
)
def test_no_trailing_hour_holds_more_calls_than_allowed_and_waits_are_at_most_a_slot_under_load(
    arrivals: list[tuple[int, int]], calls_per_hour: int, burst: int
) -> None:
    pace = Pace(calls_per_hour, min(burst, calls_per_hour))
    state = PacerState()
    now = T0
    made: list[int] = []
    for gap_ms, rows in arrivals:
        now += gap_ms
        granted, after = grant_slots(
            state, rows, pace=pace, preferred_size=3000, holder="r", lease_ms=LEASE_MS, now_ms=now
        )
        state = after.released("r")
        made.extend([now] * granted.calls)
        if granted.calls * granted.size < rows:
            # What is left is told to come back no later than the next slot (or the hour's end when it is spent).
            assert granted.retry_after_seconds * 1000 <= max(pace.slot_ms, HOUR_MS) + 1
            assert state.open_slots(pace, now + math.ceil(granted.retry_after_seconds * 1000)) >= 1
    for start in made:
        assert sum(1 for moment in made if start <= moment < start + HOUR_MS) <= calls_per_hour


def test_urgent_pushes_are_the_ones_that_change_stock_status_or_visibility() -> None:
    shown = CatalogValue(5, Visibility.PUBLISHED)
    assert is_urgent(shown, CatalogValue(0, Visibility.PUBLISHED))  # out of stock (A reached the threshold)
    assert is_urgent(CatalogValue(0, Visibility.PUBLISHED), CatalogValue(3, Visibility.PUBLISHED))  # back in stock
    assert is_urgent(shown, CatalogValue(5, Visibility.STAGING))  # hidden
    assert not is_urgent(shown, CatalogValue(4, Visibility.PUBLISHED))  # routine
    assert not is_urgent(shown, CatalogValue(9, Visibility.PUBLISHED))
    assert is_urgent(None, CatalogValue(0, Visibility.PUBLISHED))  # unknown catalog: a 0 cannot wait
    assert not is_urgent(None, CatalogValue(7, Visibility.PUBLISHED))


def test_a_lease_never_given_back_is_handed_to_the_next_run_granted_calls_until_it_settles_it() -> None:
    pace = Pace(90, 3)
    granted, dead = grant_slots(
        PacerState(), 6000, pace=pace, preferred_size=3000, holder="dead", lease_ms=LEASE_MS, now_ms=T0
    )
    assert (granted.calls, granted.lapsed, dead.reserved_calls) == (2, (), 2)
    # Within the lease nobody else gets a call, and nothing is lapsed yet.
    held, _ = grant_slots(dead, 10, pace=pace, preferred_size=3000, holder="b", lease_ms=LEASE_MS, now_ms=T0 + 1000)
    assert (held.calls, held.lapsed) == (0, ())
    later = T0 + LEASE_MS + 1
    granted, after = grant_slots(dead, 10, pace=pace, preferred_size=3000, holder="b", lease_ms=LEASE_MS, now_ms=later)
    assert granted.calls == 1 and [(lease.holder, lease.calls) for lease in granted.lapsed] == [("dead", 2)]
    assert after.released("b").lapsed == after.lapsed  # kept until a run says it settled them
    assert after.released("b").settled(["dead"]).lapsed == ()


def test_unused_calls_go_back_only_while_the_holder_still_holds_the_lease() -> None:
    pace = Pace(90, 3)
    _, held = grant_slots(PacerState(), 9000, pace=pace, preferred_size=3000, holder="a", lease_ms=LEASE_MS, now_ms=T0)
    assert len(held.window.call_times_ms) == 3
    back = held.released("a", unused=2, slot_ms=pace.slot_ms)
    assert (len(back.window.call_times_ms), back.next_slot_ms) == (1, held.next_slot_ms - 2 * pace.slot_ms)
    assert held.released("someone else", unused=2, slot_ms=pace.slot_ms) is held
