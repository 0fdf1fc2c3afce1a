"""When a replay fires a schedule (a scenario's sweep_rate): rates from the replay's start, minute-step crons on the
clock as EventBridge fires them, and every other expression refused at load by the field that holds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync_dev.cli.scenario import ScenarioError, parse_scenario
from stocksync_dev.cli.schedules import Ticks

ORIGIN = datetime(2026, 12, 4, 9, 58, 30, tzinfo=UTC)


def firings(expression: str, count: int, origin: datetime = ORIGIN) -> list[datetime]:
    ticks, moments = Ticks(expression, origin), []
    moment = origin
    for _ in range(count):
        moment = ticks.after(moment)
        moments.append(moment)
    return moments


@pytest.mark.parametrize(
    ("expression", "every"),
    [("rate(2 minutes)", timedelta(minutes=2)), ("rate(1 hour)", timedelta(hours=1)), ("rate(3 days)", timedelta(3))],
)
def test_a_rate_fires_every_interval_from_its_creation(expression: str, every: timedelta) -> None:
    assert firings(expression, 4) == [ORIGIN + every * k for k in range(1, 5)]


def test_a_minute_step_cron_fires_on_the_clock_not_from_its_creation() -> None:
    assert firings("cron(0/5 * * * ? *)", 3) == [
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        datetime(2026, 12, 4, 10, 5, tzinfo=UTC),
        datetime(2026, 12, 4, 10, 10, tzinfo=UTC),
    ]


def test_a_step_that_does_not_divide_the_hour_starts_again_at_minute_0() -> None:
    """cron(0/25 ...) fires at :00, :25 and :50: the gap over the hour is 10 minutes, not 25."""
    moments = firings("cron(*/25 * * * ? *)", 4)
    assert [moment.strftime("%H:%M:%S") for moment in moments] == ["10:00:00", "10:25:00", "10:50:00", "11:00:00"]


@pytest.mark.parametrize("expression", ["rate(2 minutes)", "cron(0/2 * * * ? *)"])
def test_after_time_in_which_nothing_ran_a_schedule_resumes_at_its_next_tick(expression: str) -> None:
    ticks = Ticks(expression, ORIGIN)
    tick = ticks.after(ORIGIN + timedelta(minutes=7))
    assert ticks.at_or_after(tick) == tick  # a tick exactly now still fires
    assert ticks.at_or_after(tick + timedelta(seconds=1)) == tick + timedelta(minutes=2)
    assert ticks.after(tick) == tick + timedelta(minutes=2)


@pytest.mark.parametrize("expression", ["cron(0 9 * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)", "rate(0 minutes)"])
def test_what_cannot_be_fired_faithfully_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="no single interval"):
        Ticks(expression, ORIGIN)


def scenario_with_rate(rate: Any) -> dict[str, Any]:
    return {
        "settings": {"buckets": {"vip": {"sweep_rate": rate}}},
        "skus": [{"retailer_id": "SKU-1", "warehouse": 1, "bucket": "vip"}],
        "steps": [{"run": "pipeline"}],
    }


@pytest.mark.parametrize(
    ("rate", "words"),
    [
        ("rate(0 minutes)", "malformed"),
        ("rate(-5 minutes)", "malformed"),
        ("rate(1 minutes)", "malformed"),  # EventBridge refuses it; so do the functions' settings
        ("rate(5 weeks)", "malformed"),
        ("every 5 minutes", "malformed"),
        (5, "string"),
        ("cron(0 12 * * ? *)", "cannot be simulated"),
        ("cron(0/60 * * * ? *)", "cannot be simulated"),
        ("cron(0/5 9-17 * * ? *)", "cannot be simulated"),
    ],
)
def test_a_sweep_rate_the_replay_cannot_fire_is_refused_naming_the_field(rate: Any, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario_with_rate(rate))
    assert caught.value.field == "settings.buckets.vip.sweep_rate", str(caught.value)
    assert words in caught.value.problem


@pytest.mark.parametrize("rate", ["rate(1 minute)", "rate(2 minutes)", "rate(6 hours)", "cron(0/5 * * * ? *)"])
def test_a_sweep_rate_the_replay_can_fire_is_accepted(rate: str) -> None:
    settings = parse_scenario(scenario_with_rate(rate)).settings
    assert settings.buckets is not None
    assert settings.buckets["vip"].sweep_rate == rate
