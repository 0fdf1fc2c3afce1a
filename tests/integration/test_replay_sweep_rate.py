"""`stocksync replay` sweeps a bucket whose scenario sets ``sweep_rate`` on that schedule of the simulated clock.

It used to validate the rate and ignore it. The run here lasts: the poll is throttled for 12 simulated minutes after
an order, and a run waits for a poll that reads it. Every sweep is checked twice: the schedule's times in the report
(``scheduled_sweeps``) and the sweep_stock invocations the pipeline made, timed on the product's clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from stocksync import clock
from stocksync_dev.cli.main import main
from stocksync_dev.cli.pipeline import LocalPipeline

SWEEP_FUNCTION = "sweep_stock"
# A sweep starts at its tick; only the 0.1 simulated seconds of an invocation in flight at the tick may delay it.
START_SLACK = timedelta(seconds=1)


def scenario(bucket: str, sweep_rate: str | None) -> dict[str, Any]:
    override: dict[str, Any] = {"threshold": 1} | ({"sweep_rate": sweep_rate} if sweep_rate else {})
    return {
        "settings": {"buckets": {bucket: override}},
        "skus": [{"retailer_id": "SKU-1", "warehouse": 10, "bucket": bucket}, {"retailer_id": "SKU-2", "warehouse": 5}],
        "steps": [
            {"throttle": {"after_calls": 0, "code": 4, "regain_minutes": 12, "endpoint": "commerce_orders"}},
            {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-1", "quantity": 2}]}},
            {"run": "pipeline"},
        ],
    }


Invocation = tuple[str, dict[str, Any], datetime]


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch, graph_waits: list[float]) -> list[Invocation]:
    """Every invocation the pipeline makes, with the simulated time it started at (the throttled polls' retries
    do not sleep: ``graph_waits``)."""
    del graph_waits
    made: list[Invocation] = []
    invoke = LocalPipeline.invoke

    def recording(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        made.append((function, event, clock.now()))
        return invoke(self, function, event)

    monkeypatch.setattr(LocalPipeline, "invoke", recording)
    return made


def replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation], raw: dict[str, Any]
) -> tuple[dict[str, Any], list[datetime], list[datetime]]:
    """The report, the scheduled sweep times it lists for the scenario's bucket, and when sweep_stock actually ran."""
    invocations.clear()
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(raw))
    code = main(["replay", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["dead_letters"]
    bucket = next(iter(raw["settings"]["buckets"]))
    scheduled = [datetime.fromisoformat(moment) for moment in report["scheduled_sweeps"].get(bucket, [])]
    ran = [at for function, event, at in invocations if function == SWEEP_FUNCTION and event.get("bucket") == bucket]
    return report, scheduled, ran


@pytest.mark.parametrize(
    ("bucket", "sweep_rate", "every"),
    [
        ("vip", "rate(2 minutes)", timedelta(minutes=2)),  # a bucket only the scenario declares
        ("fast", "cron(0/5 * * * ? *)", timedelta(minutes=5)),  # a deployment bucket, on the clock's 5 minutes
    ],
)
def test_a_bucket_is_swept_at_its_scenario_rate_through_the_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    invocations: list[Invocation],
    *,
    bucket: str,
    sweep_rate: str,
    every: timedelta,
) -> None:
    _report, scheduled, ran = replay(tmp_path, capsys, invocations, scenario(bucket, sweep_rate))

    assert len(scheduled) >= 2, scheduled  # the run lasts at least 12 minutes
    assert {later - earlier for earlier, later in pairwise(scheduled)} == {every}
    # Each sweep ran at its tick, and no sweep of the bucket ran otherwise.
    assert len(ran) == len(scheduled)
    assert all(tick <= at < tick + START_SLACK for tick, at in zip(scheduled, ran, strict=True)), (scheduled, ran)
    # No tick inside the replay was skipped: the next one would have come after the last invocation.
    last_invocation = invocations[-1][2]
    assert scheduled[-1] + every > last_invocation
    if sweep_rate.startswith("cron"):
        assert all(tick.minute % 5 == 0 and tick.second == tick.microsecond == 0 for tick in scheduled)
    # The sweeps ran with the template's input shape and found the bucket's SKU.
    assert {json.dumps(event) for function, event, _ in invocations if function == SWEEP_FUNCTION} == {
        json.dumps({"bucket": bucket})
    }


def test_a_different_rate_sweeps_a_different_number_of_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation]
) -> None:
    _, every_two, ran_two = replay(tmp_path, capsys, invocations, scenario("vip", "rate(2 minutes)"))
    _, every_four, ran_four = replay(tmp_path, capsys, invocations, scenario("vip", "rate(4 minutes)"))

    assert (len(ran_two), len(ran_four)) == (len(every_two), len(every_four))
    assert len(every_four) < len(every_two)
    # Over the same span, half as many ticks, give or take the ticks at either end.
    assert abs(len(every_two) - 2 * len(every_four)) <= 2, (every_two, every_four)


def test_without_a_sweep_rate_a_bucket_is_swept_only_by_run_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation]
) -> None:
    raw = scenario("vip", None)
    raw["steps"].append({"run": "sweep", "bucket": "vip"})
    report, scheduled, ran = replay(tmp_path, capsys, invocations, raw)

    assert report["scheduled_sweeps"] == {}
    assert scheduled == []
    assert len(ran) == 1  # the run: sweep step, after the long run
