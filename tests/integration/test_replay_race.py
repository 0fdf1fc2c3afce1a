"""`stocksync replay` through its real entry point: the overwrite race placed inside a batch's processing
(``while_pushing``), the poll on its schedule's cadence between deliveries, the check that the catalog shows A after
every run, ``run: audit``, and what closing the loop cost.

Times are read on the product's clock, which follows the simulator's during a replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stocksync import clock
from stocksync_dev.cli.main import main
from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.cli.replay import ScenarioPlayer

SCENARIOS = Path(__file__).resolve().parents[2] / "events" / "scenarios"
RACE = SCENARIOS / "overwrite_race.json"
POLL_SECONDS = 300  # template.yaml's PollRate default, rate(5 minutes)
SKUS = [{"retailer_id": "SKU-1", "warehouse": 10}, {"retailer_id": "SKU-2", "warehouse": 5}]
SLOW = {"buckets": {"slow": {"threshold": 0, "allocation_percent": 100}}, "default_bucket": "slow"}


def order(order_id: str, units: int = 1, sku: str = "SKU-1") -> dict[str, Any]:
    return {"order": {"id": order_id, "state": "FB_PROCESSING", "items": [{"retailer_id": sku, "quantity": units}]}}


@dataclass(frozen=True)
class Invocation:
    function: str
    event: dict[str, Any]
    at: datetime


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Invocation]]:
    """Every handler invocation of the replay, with its event and the simulated time it started at."""
    seen: list[Invocation] = []
    invoke = LocalPipeline.invoke

    def recording(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        seen.append(Invocation(function, event, clock.now()))
        return invoke(self, function, event)

    monkeypatch.setattr(LocalPipeline, "invoke", recording)
    yield seen


def replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario: dict[str, Any] | Path
) -> tuple[int, dict[str, Any], str]:
    path = scenario if isinstance(scenario, Path) else tmp_path / "scenario.json"
    if not isinstance(scenario, Path):
        path.write_text(json.dumps(scenario))
    code = main(["replay", str(path), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def catalog_units(report: dict[str, Any]) -> dict[str, int]:
    return {rid: shown["units"] for rid, shown in report["catalog"].items()}


def test_the_shipped_race_lands_its_moments_around_the_application_reads_back_and_audits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation]
) -> None:
    code, report, _err = replay(tmp_path, capsys, RACE)

    assert code == 0, report["dead_letters"]
    expected = json.loads(RACE.read_text())["expect"]["catalog"]
    assert report["catalog"] == expected
    (race,) = report["races"]
    # Processing takes 40 s and the batch lands halfway: the first moment before it, the second after it.
    assert (race["step"], race["applied_seconds_after_call"], race["finished_seconds_after_call"]) == (
        "steps[3]",
        20,
        40,
    )
    # A moment runs when the pipeline reaches its point; a delivery due just before the point (here the first status
    # check, which follows the observed processing time, 30 s) ends up to one invocation (0.1 s) after it.
    moments = [(moment["at"], moment["seconds_after_call"]) for moment in race["moments"]]
    assert [at for at, _ in moments] == ["before_apply", "after_apply"]
    assert [seconds for _, seconds in moments] == [pytest.approx(10, abs=0.1), pytest.approx(30, abs=0.1)]
    assert [moment["relative"] for moment in race["moments"]] == [
        "before the batch was applied",
        "after it was applied",
    ]
    loop = report["catalog_loop"]
    # The SKUs whose moves fell inside the push's window were read back, not guessed; nothing was pushed blind.
    assert loop["reads_requested"] >= 2 and loop["read_back"]["read"] >= 2 and loop["read_calls"] >= 2
    assert "catalog ambiguous" not in loop["pushes_by_reason"]
    assert loop["audits"] == {"runs": 1, "finished": 1, "read": 4, "pages": 1, "drifted": 1}
    # The edit is the one difference a run left, and it is explained; the audit repaired it.
    assert [
        (d["step"], d["retailer_id"], d["catalog"], d["A"], d["why"]) for d in report["catalog_differs_from_a"]
    ] == [("steps[8]", "EDITED-1", 40, 15, "edited outside stocksync since the last audit")]
    # run: audit passes the schedule's input, with the scheduler's context attributes filled in.
    (audit,) = [invocation for invocation in invocations if invocation.function == "audit_catalog"]
    assert audit.event["dry_run"] is False
    assert audit.event["scheduled_time"] == audit.at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_with_reads_off_the_race_ends_at_a_through_absolute_pushes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = json.loads(RACE.read_text())
    scenario["settings"]["catalog_reads_per_hour"] = 0
    # With reads off the audit cannot see the edit: the scenario's expect block (which replay checks) says so.
    scenario["expect"]["catalog"]["EDITED-1"]["units"] = 40
    code, report, _err = replay(tmp_path, capsys, scenario)

    assert code == 0, report["catalog_differs_from_a"]
    expected = {rid: shown["units"] for rid, shown in scenario["expect"]["catalog"].items()}
    race_skus = ("ERASED-1", "KEPT-1", "CANCEL-1")
    assert {rid: catalog_units(report)[rid] for rid in race_skus} == {rid: expected[rid] for rid in race_skus}
    loop = report["catalog_loop"]
    assert loop["pushes_by_reason"].get("catalog ambiguous", 0) >= 2
    assert loop["ambiguity_share_of_pushes"] == round(loop["ambiguity_pushes"] / loop["pushes"], 4)
    assert (loop["reads_requested"], loop["read_calls"]) == (0, 0)
    # With reads off the audit reads nothing, so the edit stays, and stays explained.
    assert catalog_units(report)["EDITED-1"] == 40
    assert {d["retailer_id"] for d in report["catalog_differs_from_a"]} == {"EDITED-1"}


def test_the_poll_fires_on_its_cadence_after_the_deliveries_and_waits_for_the_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation]
) -> None:
    """The steps' warehouse change is pushed first (bus events are delivered within seconds in a deployment), the
    poll comes at its next tick, every PollRate from the first poll, and the run waits for it; the ticks that fell
    inside an ``advance`` are skipped, not caught up."""
    steps = [order("o-1", 2), {"warehouse": {"SKU-1": 9}}, {"run": "pipeline"}, {"advance": 1000}, order("o-2")]
    code, report, _err = replay(
        tmp_path, capsys, {"settings": SLOW, "skus": SKUS, "steps": [*steps, {"run": "pipeline"}]}
    )

    assert code == 0, report["dead_letters"]
    assert catalog_units(report)["SKU-1"] == report["skus"]["SKU-1"]["A"] == 6  # 9 - 2 - 1
    assert report["catalog_differs_from_a"] == []
    polls = [invocation.at for invocation in invocations if invocation.function == "poll_orders"]
    first = polls[0]
    assert all(round((poll - first).total_seconds() / POLL_SECONDS, 6).is_integer() for poll in polls)
    # Run 1: the warehouse push went out before the poll that saw o-1 (which the push erased on the platform).
    pushes = [invocation.at for invocation in invocations if invocation.function == "push_batch"]
    assert pushes[1] < polls[1]
    # Run 2 started after 1000 s of nothing: its poll is the next tick, not the three ticks inside the advance.
    assert len(polls) == 3
    assert (polls[2] - polls[1]).total_seconds() == 4 * POLL_SECONDS


def test_a_throttled_poll_is_polled_again_at_its_ticks_until_it_reads_every_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invocations: list[Invocation]
) -> None:
    steps = [
        {"throttle": {"after_calls": 0, "code": 80004, "regain_minutes": 12, "endpoint": "commerce_orders"}},
        order("o-1", 3),
        {"run": "pipeline"},
    ]
    code, report, _err = replay(tmp_path, capsys, {"settings": SLOW, "skus": SKUS, "steps": steps})

    assert code == 0, report["dead_letters"]
    assert catalog_units(report)["SKU-1"] == report["skus"]["SKU-1"]["A"] == 7
    assert report["catalog_differs_from_a"] == []
    polls = [invocation.at for invocation in invocations if invocation.function == "poll_orders"]
    assert len(polls) >= 4  # the initial one, then ticks until one past the 12 minutes reads the listing


def test_a_moment_after_processing_but_before_verify_sees_it_finished_is_still_settled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The platform finished at 20 s; stocksync learns it at its first status check (VerifyDelaySeconds, 60 s).
    An order at 30 s was kept by the platform, but stocksync cannot know on which side of the application it fell
    until it reads the catalog back. A warehouse change at the same moment moves A while the push is in flight."""
    scenario = {
        "settings": SLOW,
        "platform": {"batch_processing_seconds": 20},
        "skus": SKUS,
        "steps": [
            {"warehouse": {"SKU-1": 9}},
            {"while_pushing": [{"at": 30, "steps": [order("o-1", 2), {"warehouse": {"SKU-2": 4}}]}]},
        ],
    }
    code, report, _err = replay(tmp_path, capsys, scenario)

    assert code == 0, report["dead_letters"]
    assert catalog_units(report) == {"SKU-1": 7, "SKU-2": 4}
    assert report["races"][0]["moments"][0]["relative"] == "after it was applied"
    assert report["catalog_loop"]["reads_requested"] >= 1
    assert report["catalog_differs_from_a"] == []


def test_a_while_pushing_without_a_push_runs_its_steps_once_the_pipeline_settles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = {"settings": SLOW, "skus": SKUS, "steps": [{"while_pushing": [{"at": 5, "steps": [order("o-1")]}]}]}
    code, report, err = replay(tmp_path, capsys, scenario)

    assert code == 0, report["dead_letters"]
    assert "steps[0]: the pipeline settled without an items_batch call" in err
    assert report["races"] == [{"step": "steps[0]", "batch": None, "moments": []}]
    assert (report["skus"]["SKU-1"]["P"], catalog_units(report)["SKU-1"]) == (1, 9)


def test_a_difference_nobody_explains_fails_the_replay_naming_the_step_and_the_sku(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone changes the catalog behind the replay's back (not a catalog_edit step): after the run the catalog
    does not show A, nothing explains it, and the replay exits 1."""
    on_bus = ScenarioPlayer._on_bus

    def and_behind_our_back(self: ScenarioPlayer, step: Any) -> None:
        on_bus(self, step)
        self._sim.edit_product("SKU-2", quantity_to_sell_on_facebook=1)

    monkeypatch.setattr(ScenarioPlayer, "_on_bus", and_behind_our_back)
    steps = [{"warehouse": {"SKU-1": 9}}, {"run": "pipeline"}]
    code, report, err = replay(tmp_path, capsys, {"settings": SLOW, "skus": SKUS, "steps": steps})

    assert code == 1
    assert report["catalog_differs_from_a"] == [
        {
            "step": "steps[1]",
            "retailer_id": "SKU-2",
            "catalog": 1,
            "catalog_visibility": "published",
            "A": 5,
            "A_visibility": "published",
            "why": None,
        }
    ]
    assert "steps[1]: after the run the catalog shows SKU-2 at 1 (published), A is 5" in err
