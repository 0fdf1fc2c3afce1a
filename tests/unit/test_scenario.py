"""The scenario format: the documented example parses; every bad scenario names the step index and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stocksync.cli.scenario import RunStep, ScenarioError, json_schema, parse_scenario

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
    assert shipped == json_schema()


def test_a_bucket_the_deployment_defines_may_be_used_without_redefining_it() -> None:
    scenario = with_step(9, {"run": "sweep", "bucket": "medium"})
    assert parse_scenario(scenario, deployment_buckets={"fast", "medium", "slow"}).steps[9] == RunStep(
        run="sweep", bucket="medium"
    )
