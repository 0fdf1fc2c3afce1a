"""The scenario format: the documented example parses; every bad scenario names the step index and the field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli.scenario import (
    RunStep,
    ScenarioError,
    WhilePushingStep,
    json_schema,
    parse_scenario,
    point_seconds,
)

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE: dict[str, Any] = {
    "catalog_id": "1001",
    "settings": {
        "deduction_mode": "merchant",
        "field": "quantity_to_sell_on_facebook",
        "buckets": {
            "fast": {"threshold": 2, "allocation_percent": 100},
            "slow": {"threshold": 0, "allocation_percent": 100},
        },
    },
    "skus": [
        {"retailer_id": "SKU-1", "warehouse": 10, "bucket": "fast"},
        {"retailer_id": "SKU-2", "warehouse": 5, "bucket": "slow", "allocation_fixed": 3},
    ],
    "steps": [
        {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-1", "quantity": 3}]}},
        {"order": {"id": "o-2", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-2", "quantity": 1}]}},
        {"order": {"id": "o-1", "state": "CREATED"}},
        {"run": "pipeline"},
        {"cancel": {"id": "o-2", "items": [{"retailer_id": "SKU-2", "quantity": 1}], "by": "buyer"}},
        {"synced": ["o-1"]},
        {"warehouse": {"SKU-1": 7}},
        {"discontinue": ["SKU-2"]},
        {"advance": 600},
        {"run": "pipeline"},
    ],
}


def test_the_documented_example_is_accepted_exactly_as_written() -> None:
    scenario = parse_scenario(EXAMPLE)
    assert len(scenario.steps) == 10
    assert isinstance(scenario.steps[3], RunStep) and scenario.steps[3].run == "pipeline"


def with_step(index: int, step: dict[str, Any]) -> dict[str, Any]:
    scenario = copy.deepcopy(EXAMPLE)
    scenario["steps"][index] = step
    return scenario


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        (with_step(3, {"teleport": True}), "steps[3]"),
        (
            with_step(
                0,
                {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-1", "quantity": 0}]}},
            ),
            "steps[0].order.items[0].quantity",
        ),
        (
            with_step(
                0,
                {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-9", "quantity": 1}]}},
            ),
            "steps[0].order.items[0].retailer_id",
        ),
        (with_step(2, {"order": {"id": "o-1", "state": "SHIPPED"}}), "steps[2].order.state"),
        (
            with_step(
                1,
                {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-2", "quantity": 1}]}},
            ),
            "steps[1].order.id",
        ),
        (with_step(4, {"cancel": {"id": "o-9", "by": "buyer"}}), "steps[4].cancel.id"),
        (
            with_step(4, {"cancel": {"id": "o-2", "items": [{"retailer_id": "SKU-2", "quantity": 2}], "by": "buyer"}}),
            "steps[4].cancel.items[0].quantity",
        ),
        (with_step(4, {"cancel": {"id": "o-2", "by": "robot"}}), "steps[4].cancel.by"),
        (with_step(6, {"warehouse": {"SKU-1": -1}}), "steps[6].warehouse.SKU-1"),
        (with_step(9, {"run": "sweep"}), "steps[9].run"),
        (with_step(9, {"run": "sweep", "bucket": "medium"}), "steps[9].bucket"),
    ],
)
def test_a_bad_scenario_names_the_step_index_and_field(scenario: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario)
    assert caught.value.field == field, str(caught.value)


def test_the_shipped_json_schema_is_the_one_the_models_generate() -> None:
    shipped = json.loads((ROOT / "events" / "scenarios" / "scenario.schema.json").read_text())
    assert shipped == json_schema(), (
        "regenerate: python -m stocksync_dev.cli.scenario > events/scenarios/scenario.schema.json"
    )


def test_a_bucket_the_deployment_defines_may_be_used_without_redefining_it() -> None:
    scenario = with_step(9, {"run": "sweep", "bucket": "medium"})
    assert parse_scenario(scenario, deployment_buckets={"fast", "medium", "slow"}).steps[9] == RunStep(
        run="sweep", bucket="medium"
    )


# ---------------------------------------------------------------------------------------------- the race steps


def order(order_id: str, units: int = 1, sku: str = "SKU-1") -> dict[str, Any]:
    return {"order": {"id": order_id, "state": "FB_PROCESSING", "items": [{"retailer_id": sku, "quantity": units}]}}


RACE: dict[str, Any] = {
    "settings": {"catalog_reads_per_hour": 0},
    "platform": {"batch_processing_seconds": 40, "batch_apply_fraction": 0.5},
    "skus": [{"retailer_id": "SKU-1", "warehouse": 10}, {"retailer_id": "SKU-2", "warehouse": 5}],
    "steps": [
        order("o-1"),
        {"warehouse": {"SKU-1": 9}},
        {
            "while_pushing": [
                {"at": "before_apply", "steps": [order("o-2"), {"cancel": {"id": "o-1", "by": "buyer"}}]},
                {"at": 25, "steps": [{"warehouse": {"SKU-2": 4}}, {"catalog_edit": {"SKU-2": {"units": 9}}}]},
                {"at": "after_apply", "steps": [order("o-3", 2), {"cancel": {"id": "o-2", "by": "seller"}}]},
            ]
        },
        {"run": "audit"},
    ],
}


def race_with(change: Any) -> dict[str, Any]:
    scenario = copy.deepcopy(RACE)
    change(scenario)
    return scenario


def test_a_race_is_accepted_with_its_moments_in_order() -> None:
    scenario = parse_scenario(RACE)
    race = scenario.steps[2]
    assert isinstance(race, WhilePushingStep)
    assert [moment.at for moment in race.while_pushing] == ["before_apply", 25.0, "after_apply"]
    assert scenario.settings.catalog_reads_per_hour == 0
    assert isinstance(scenario.steps[3], RunStep) and scenario.steps[3].run == "audit"
    # Halfway to the application (20 s after the call), then halfway from it to the end of processing (40 s).
    assert [point_seconds(moment.at, scenario.platform) for moment in race.while_pushing] == [10.0, 25.0, 30.0]


def moment(index: int, **changes: Any) -> Any:
    def change(scenario: dict[str, Any]) -> None:
        scenario["steps"][2]["while_pushing"][index].update(changes)

    return change


def nested(index: int, position: int, step: dict[str, Any]) -> Any:
    def change(scenario: dict[str, Any]) -> None:
        scenario["steps"][2]["while_pushing"][index]["steps"][position] = step

    return change


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (moment(0, at="soon"), "steps[2].while_pushing[0].at", "before_apply, after_apply, or seconds"),
        (moment(0, at=True), "steps[2].while_pushing[0].at", "got True"),
        (moment(0, at=-1), "steps[2].while_pushing[0].at", "seconds after the call"),
        (moment(1, at=5), "steps[2].while_pushing[1].at", "time order"),
        (moment(2, at="before_apply"), "steps[2].while_pushing[2].at", "time order"),
        (moment(1, steps=[]), "steps[2].while_pushing[1].steps", "at least one step"),
        (moment(1, later=True), "steps[2].while_pushing[1].later", "Extra inputs"),
        (nested(0, 0, {"run": "pipeline"}), "steps[2].while_pushing[0].steps[0]", "no 'run' step inside"),
        (nested(0, 0, {"advance": 5}), "steps[2].while_pushing[0].steps[0]", "no 'advance' step inside"),
        (nested(0, 0, order("o-1")), "steps[2].while_pushing[0].steps[0].order.id", "already used"),
        (nested(0, 0, order("o-9", 0)), "steps[2].while_pushing[0].steps[0].order.items[0].quantity", "greater"),
        # o-2 is placed by the first moment: cancelling it in the first moment's first step comes before that.
        (
            nested(0, 0, {"cancel": {"id": "o-2", "by": "buyer"}}),
            "steps[2].while_pushing[0].steps[0].cancel.id",
            "unknown order",
        ),
        (
            nested(1, 1, {"catalog_edit": {"SKU-2": {}}}),
            "steps[2].while_pushing[1].steps[1].catalog_edit.SKU-2",
            "sets",
        ),
        (
            nested(1, 1, {"catalog_edit": {"SKU-9": {"units": 1}}}),
            "steps[2].while_pushing[1].steps[1].catalog_edit.SKU-9",
            "unknown SKU",
        ),
        (lambda s: s["steps"][2].update(while_pushing=[]), "steps[2].while_pushing", "a list of moments"),
        (lambda s: s["steps"][2].update(bucket="slow"), "steps[2].bucket", "Extra inputs"),
        (lambda s: s["platform"].update(batch_processing_seconds=0), "steps[2].while_pushing[0].at", "applies a batch"),
        (lambda s: s["platform"].update(batch_apply_fraction=0), "steps[2].while_pushing[0].at", "applies a batch"),
        (lambda s: s["platform"].update(batch_apply_fraction=1.5), "platform.batch_apply_fraction", "less than"),
        (lambda s: s["platform"].update(seconds=3), "platform.seconds", "Extra inputs"),
        (lambda s: s["settings"].update(catalog_reads_per_hour=4000), "settings.catalog_reads_per_hour", "3600"),
        (lambda s: s["steps"].append({"run": "audits"}), "steps[4].run", "'audit'"),
        (
            lambda s: s["steps"].append({"catalog_edit": {"SKU-1": {"units": -1}}}),
            "steps[4].catalog_edit.SKU-1.units",
            "",
        ),
    ],
)
def test_a_bad_race_names_the_step_moment_and_field(change: Any, field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(race_with(change))
    assert caught.value.field == field, str(caught.value)
    assert words in caught.value.problem


def test_with_a_random_application_point_only_the_named_points_are_ordered() -> None:
    """before_apply and after_apply keep their order whatever the draw; a number beside them may fall on either side
    of a drawn point, so it is accepted, and the replay runs each moment at its point, or at once when an earlier
    moment already ran later (the report says when each ran)."""

    def random_point(scenario: dict[str, Any]) -> None:
        scenario["platform"]["batch_apply_fraction"] = None

    scenario = parse_scenario(race_with(random_point))
    assert scenario.platform.batch_apply_fraction is None
    assert point_seconds("before_apply", scenario.platform) is None

    def after_then_before(scenario: dict[str, Any]) -> None:
        random_point(scenario)
        moment(0, at="after_apply")(scenario)
        moment(2, at="before_apply")(scenario)

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(race_with(after_then_before))
    assert caught.value.field == "steps[2].while_pushing[2].at"
    assert "'after_apply'" in caught.value.problem


def test_the_schema_module_prints_the_shipped_schema() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "stocksync_dev.cli.scenario"], check=True, capture_output=True, text=True
    ).stdout
    assert printed == (ROOT / "events" / "scenarios" / "scenario.schema.json").read_text()


def test_a_shop_order_names_known_skus_and_a_merchant_state() -> None:
    base = {"skus": [{"retailer_id": "A", "warehouse": 5}]}
    good = {
        **base,
        "steps": [{"shop_order": {"id": "web-1", "state": "placed", "items": [{"retailer_id": "A", "quantity": 2}]}}],
    }
    assert parse_scenario(good).steps[0].shop_order.channel == "web"  # type: ignore[union-attr]
    unknown = {
        **base,
        "steps": [{"shop_order": {"id": "web-1", "state": "placed", "items": [{"retailer_id": "Z", "quantity": 1}]}}],
    }
    with pytest.raises(ScenarioError, match=r"steps\[0\]\.shop_order\.items\[0\]"):
        parse_scenario(unknown)
    bad_state = {
        **base,
        "steps": [{"shop_order": {"id": "web-1", "state": "CREATED", "items": [{"retailer_id": "A", "quantity": 1}]}}],
    }
    with pytest.raises(ScenarioError, match="state"):
        parse_scenario(bad_state)
