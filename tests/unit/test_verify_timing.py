"""The processing-time estimator: check delays that follow how long batches really take, down as well as up."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.logic.verify_timing import (
    MAX_CHECK_DELAY_SECONDS,
    MAX_OBSERVATIONS,
    MIN_CHECK_DELAY_SECONDS,
    Observation,
    doubling_delay,
    first_check_delay,
    plan_recheck,
    processing_quantile,
    remember,
)

ACCEPTED = datetime(2026, 11, 23, 9, tzinfo=UTC)


def seen(handle: str, lower: float, upper: float) -> Observation:
    """An observation bracketing the processing time in (lower, upper] seconds."""
    return Observation(handle, int(lower * 1000), int(upper * 1000), 0)


def checked(
    observations: tuple[Observation, ...], processing_seconds: float, handle: str, default_seconds: int = 60
) -> tuple[tuple[Observation, ...], list[int]]:
    """One batch through the real schedule: the first check at ``first_check_delay``, then ``plan_recheck`` until a
    check finds it done; returns the observations with its interval added and the check times (s after accept)."""
    moment = first_check_delay(observations, default_seconds)
    checks, last_processing, attempt = [moment], None, 1
    while moment < processing_seconds:
        last_processing = moment
        plan = plan_recheck(observations, attempt=attempt, elapsed_seconds=moment, base_seconds=default_seconds)
        moment += plan.delay_seconds
        attempt += 1
        checks.append(moment)
    observation = Observation.of(
        handle,
        accepted_at=ACCEPTED,
        last_processing_at=None if last_processing is None else ACCEPTED + timedelta(seconds=last_processing),
        done_at=ACCEPTED + timedelta(seconds=moment),
    )
    kept = remember(observations, observation)
    assert kept is not None
    return kept, checks


def run(
    batches: int,
    processing: Callable[[random.Random], float],
    observations: tuple[Observation, ...] = (),
    seed: int = 7,
) -> tuple[tuple[Observation, ...], list[int], list[list[int]]]:
    """``batches`` batches in a row; returns the observations, the first-check delay after each, and the checks."""
    rng = random.Random(seed)
    firsts, all_checks = [], []
    for index in range(batches):
        observations, checks = checked(observations, processing(rng), f"h{index}")
        firsts.append(first_check_delay(observations, 60))
        all_checks.append(checks)
    return observations, firsts, all_checks


# ------------------------------------------------------------------ without observations: today's schedule
def test_without_observations_the_configured_delay_and_doubling_apply() -> None:
    assert first_check_delay((), 60) == 60
    assert first_check_delay((), 0) == 0  # VerifyDelaySeconds=0 stays what it says
    plans = [plan_recheck((), attempt=n, elapsed_seconds=60 * n, base_seconds=60) for n in range(1, 7)]
    assert [plan.delay_seconds for plan in plans] == [60, 120, 240, 480, 900, 900]
    assert {plan.basis for plan in plans} == {"default"}
    assert [doubling_delay(n, 60) for n in range(1, 7)] == [60, 120, 240, 480, 900, 900]


# ------------------------------------------------------------------ the estimate
def test_the_quantile_spreads_each_observation_over_its_interval() -> None:
    observations = [seen("a", 10, 20), seen("b", 20, 40)]
    # Weight 1 on (10, 20] and 1 on (20, 40]: the median is at 20, the quarter at 15, the three quarters at 30.
    assert processing_quantile(observations, 0.5) == pytest.approx(20_000)
    assert processing_quantile(observations, 0.25) == pytest.approx(15_000)
    assert processing_quantile(observations, 0.75) == pytest.approx(30_000)
    assert processing_quantile(observations, 1.0) == pytest.approx(40_000)
    # Given it has taken 30 s already: only (30, 40] remains, its median is 35 s.
    assert processing_quantile(observations, 0.5, after_ms=30_000) == pytest.approx(35_000)
    assert processing_quantile(observations, 0.5, after_ms=40_000) is None


def test_a_batch_found_done_at_its_first_check_pulls_the_estimate_below_that_check() -> None:
    # Upper bounds alone would say "60 s" forever: the check time, not the platform's.
    assert first_check_delay([seen("a", 0, 60)], 60) == 30
    assert first_check_delay([seen("a", 0, 60), seen("b", 0, 30)], 60) == 20


def test_delays_have_a_floor_and_the_sqs_ceiling() -> None:
    assert first_check_delay([seen("a", 0, 1)], 60) == MIN_CHECK_DELAY_SECONDS
    assert first_check_delay([seen("a", 3000, 4000)], 60) == MAX_CHECK_DELAY_SECONDS
    plan = plan_recheck([seen("a", 10, 20)], attempt=1, elapsed_seconds=19, base_seconds=60)
    assert (plan.basis, plan.delay_seconds) == ("estimate", MIN_CHECK_DELAY_SECONDS)


def test_rechecks_aim_at_a_higher_quantile_of_the_remaining_time_as_attempts_grow() -> None:
    observations = [seen(f"h{i}", 10, 30) for i in range(5)]  # uniform over (10, 30]
    first = plan_recheck(observations, attempt=1, elapsed_seconds=10, base_seconds=60)
    assert (first.basis, first.quantile, first.estimate_seconds, first.delay_seconds) == ("estimate", 0.75, 25, 15)
    second = plan_recheck(observations, attempt=2, elapsed_seconds=25, base_seconds=60)
    # Given 25 s taken, (25, 30] remains; its 0.9 quantile is 29.5 s: 4.5 s away, so the 5 s floor.
    assert (second.quantile, second.estimate_seconds, second.delay_seconds) == (0.9, 29.5, 5)
    third = plan_recheck(observations, attempt=3, elapsed_seconds=28, base_seconds=60)
    assert (third.quantile, third.estimate_seconds) == (1.0, 30)


def test_past_everything_observed_the_delay_doubles_the_time_since_acceptance() -> None:
    observations = [seen("a", 10, 30)]
    plan = plan_recheck(observations, attempt=4, elapsed_seconds=45, base_seconds=60)
    assert (plan.basis, plan.delay_seconds) == ("doubling", 45)
    assert plan_recheck(observations, attempt=5, elapsed_seconds=2000, base_seconds=60).delay_seconds == 900


def test_an_observation_is_measured_from_acceptance_and_a_redelivery_counts_once() -> None:
    observation = Observation.of(
        "h1",
        accepted_at=ACCEPTED,
        last_processing_at=ACCEPTED + timedelta(seconds=12),
        done_at=ACCEPTED + timedelta(seconds=20),
    )
    assert (observation.lower_ms, observation.upper_ms) == (12_000, 20_000)
    first_look = Observation.of("h2", accepted_at=ACCEPTED, last_processing_at=None, done_at=ACCEPTED)
    assert (first_look.lower_ms, first_look.upper_ms) == (0, 0)
    skewed = Observation.of(
        "h3", accepted_at=ACCEPTED, last_processing_at=ACCEPTED - timedelta(seconds=5), done_at=ACCEPTED
    )
    assert (skewed.lower_ms, skewed.upper_ms) == (0, 0)
    kept = remember((), observation)
    assert kept == (observation,)
    assert remember(kept, observation) is None


def test_only_the_newest_observations_are_kept() -> None:
    kept: tuple[Observation, ...] = ()
    for index in range(MAX_OBSERVATIONS + 5):
        kept = remember(kept, seen(f"h{index}", 0, index + 1)) or kept
    assert len(kept) == MAX_OBSERVATIONS
    assert kept[0].handle == "h5" and kept[-1].handle == f"h{MAX_OBSERVATIONS + 4}"


# ------------------------------------------------------------------ the schedule, closed loop
@pytest.mark.parametrize("true_seconds", [3, 20, 45, 200])
def test_the_first_check_settles_near_the_true_processing_time_from_the_default(true_seconds: int) -> None:
    _observations, firsts, checks = run(40, lambda rng: true_seconds)
    settled = firsts[-10:]
    assert all(abs(first - true_seconds) <= max(MIN_CHECK_DELAY_SECONDS, 0.1 * true_seconds) for first in settled)
    # And a batch then takes about 1.5 checks, not the 1 + log2 of doubling from a wrong start.
    assert sum(len(each) for each in checks[-20:]) / 20 <= 2


def test_faster_batches_bring_the_first_check_down_and_slower_ones_up() -> None:
    slow, _firsts, _checks = run(30, lambda rng: 120)
    assert first_check_delay(slow, 60) == pytest.approx(120, abs=5)
    _fast, firsts, _checks = run(40, lambda rng: 20, slow)
    assert firsts[-1] == pytest.approx(20, abs=3)
    assert all(later <= earlier + 1 for earlier, later in itertools.pairwise(firsts))
    _slower, firsts, checks = run(40, lambda rng: 200, slow)
    assert firsts[-1] == pytest.approx(200, abs=10)
    # The first batch slower than anything observed is found by doubling, not given up on.
    assert checks[0][-1] >= 200


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(
    true_ms=st.integers(1_000, 600_000),
    brackets=st.lists(st.tuples(st.integers(1, 60_000), st.floats(0, 1)), min_size=1, max_size=MAX_OBSERVATIONS),
    quantile=st.sampled_from([0.5, 0.75, 0.9, 1.0]),
)
def test_when_checks_bracket_the_true_time_the_estimate_is_within_the_widest_bracket(
    true_ms: int, brackets: list[tuple[int, float]], quantile: float
) -> None:
    observations = []
    for index, (width, position) in enumerate(brackets):
        lower = max(0, true_ms - round(width * position))
        observations.append(Observation(f"h{index}", lower, max(lower + 1, lower + width, true_ms), 0))
    widest = max(o.upper_ms - o.lower_ms for o in observations)
    estimate = processing_quantile(observations, quantile)
    assert estimate is not None
    assert abs(estimate - true_ms) <= widest
    # Narrower brackets (the same ones halved around the true time) bring the estimate at least as close.
    narrowed = [
        Observation(o.handle, (o.lower_ms + true_ms) // 2, max((o.upper_ms + true_ms + 1) // 2, true_ms), 0)
        for o in observations
    ]
    closer = processing_quantile(narrowed, quantile)
    assert closer is not None and abs(closer - true_ms) <= widest / 2 + 1


@settings(max_examples=60, deadline=None)
@given(
    slow=st.integers(30, 600),
    speedup=st.floats(0.05, 0.8),
    jitter=st.floats(0, 0.2),
    seed=st.integers(0, 1000),
)
def test_the_estimate_converges_on_the_true_time_and_decreases_when_batches_get_faster(
    slow: int, speedup: float, jitter: float, seed: int
) -> None:
    fast = max(1.0, slow * speedup)
    observations, _firsts, _checks = run(30, lambda rng: slow * (1 + rng.uniform(-jitter, jitter)), seed=seed)
    before = first_check_delay(observations, 60)
    assert abs(before - slow) <= max(MIN_CHECK_DELAY_SECONDS, (jitter + 0.15) * slow)
    # Each batch found done before its first check moves the estimate down by a few percent (it is one of 20
    # observations): a twentyfold speed-up takes about 45 batches; 80 leave room.
    _observations, firsts, _checks = run(
        MAX_OBSERVATIONS * 4, lambda rng: fast * (1 + rng.uniform(-jitter, jitter)), observations, seed=seed
    )
    assert max(firsts[-10:]) < before
    assert abs(firsts[-1] - fast) <= max(MIN_CHECK_DELAY_SECONDS, (jitter + 0.15) * fast) + 1
    if jitter == 0:  # without noise, the descent never climbs back until it reaches the new time
        above = fast + max(MIN_CHECK_DELAY_SECONDS, 0.15 * fast) + 1
        pairs = itertools.pairwise(firsts)
        assert all(later <= earlier + 1 for earlier, later in pairs if earlier > above)


@settings(max_examples=200, deadline=None)
@given(
    observations=st.lists(
        st.tuples(st.integers(0, 900_000), st.integers(0, 900_000)), min_size=1, max_size=MAX_OBSERVATIONS
    ),
    attempt=st.integers(1, 12),
    elapsed=st.floats(0, 5000),
)
def test_every_delay_is_one_sqs_can_carry(observations: list[tuple[int, int]], attempt: int, elapsed: float) -> None:
    kept = [Observation(f"h{i}", min(a, b), max(a, b), 0) for i, (a, b) in enumerate(observations)]
    plan = plan_recheck(kept, attempt=attempt, elapsed_seconds=elapsed, base_seconds=60)
    assert MIN_CHECK_DELAY_SECONDS <= plan.delay_seconds <= MAX_CHECK_DELAY_SECONDS
    assert MIN_CHECK_DELAY_SECONDS <= first_check_delay(kept, 60) <= MAX_CHECK_DELAY_SECONDS
    if plan.estimate_seconds is not None:
        assert plan.estimate_seconds >= elapsed - 0.001
