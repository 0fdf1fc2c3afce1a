"""A scenario's generated catalog (``generate_skus``) and its ``warehouse_all`` step: a large catalog in a few lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stocksync_dev.cli.scenario import ScenarioError, WarehouseStep, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "events" / "scenarios"


def scenario(**fields: Any) -> dict[str, Any]:
    return {"steps": [{"run": "pipeline"}], **fields}


def test_generated_skus_follow_the_listed_ones_named_by_prefix_and_number() -> None:
    parsed = parse_scenario(
        scenario(
            skus=[{"retailer_id": "SKU-1", "warehouse": 3}],
            generate_skus=[
                {"prefix": "GEN-", "count": 3, "warehouse": 7, "bucket": "fast"},
                {"prefix": "SLOW-", "start": 98, "count": 2, "digits": 3, "warehouse": 1, "allocation_fixed": 1},
            ],
        ),
        deployment_buckets={"fast", "slow"},
    )
    assert [sku.retailer_id for sku in parsed.skus] == [
        "SKU-1",
        "GEN-00000",
        "GEN-00001",
        "GEN-00002",
        "SLOW-098",
        "SLOW-099",
    ]
    assert {sku.warehouse for sku in parsed.skus[1:4]} == {7} and parsed.skus[1].bucket == "fast"
    assert parsed.skus[4].allocation_fixed == 1 and parsed.skus[4].catalog is None
    assert parsed.generate_skus is None  # expanded once: the scenario lists each SKU in skus


def test_warehouse_all_is_a_warehouse_step_listing_every_sku() -> None:
    parsed = parse_scenario(
        scenario(
            skus=[{"retailer_id": "A", "warehouse": 5}],
            generate_skus=[{"count": 2, "warehouse": 5}],
            steps=[{"warehouse_all": 4}, {"run": "pipeline"}],
        )
    )
    step = parsed.steps[0]
    assert isinstance(step, WarehouseStep)
    assert step.warehouse == {"A": 4, "SKU-00000": 4, "SKU-00001": 4}


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"generate_skus": [{"count": 1000, "digits": 2, "warehouse": 1}]}, "generate_skus[0]", "more than 2 digits"),
        ({"generate_skus": [{"count": 0, "warehouse": 1}]}, "generate_skus[0].count", "greater than or equal to 1"),
        ({"generate_skus": [{"count": 2, "warehouse": 1, "bucket": "nope"}]}, "generate_skus[0].bucket", "nope"),
        (
            {"skus": [{"retailer_id": "SKU-00001", "warehouse": 1}], "generate_skus": [{"count": 2, "warehouse": 1}]},
            "skus",
            "listed twice",
        ),
        ({"skus": []}, "skus", "at least one SKU"),
        (
            {"generate_skus": [{"count": 2, "warehouse": 1, "allocation_percent": 5, "allocation_fixed": 1}]},
            "",
            "not both",
        ),
    ],
)
def test_a_bad_generated_catalog_is_refused_naming_the_field(fields: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario(**fields), deployment_buckets={"fast"})
    assert caught.value.field.startswith(where)
    assert message in str(caught.value)


def test_warehouse_all_takes_a_level_and_stays_out_of_while_pushing() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario(generate_skus=[{"count": 1, "warehouse": 1}], steps=[{"warehouse_all": -1}]))
    assert caught.value.field == "steps[0].warehouse_all"
    pushing = {"while_pushing": [{"at": 1, "steps": [{"warehouse_all": 3}]}]}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario(generate_skus=[{"count": 1, "warehouse": 1}], steps=[pushing]))
    assert "no 'warehouse_all' step inside while_pushing" in str(caught.value)


def test_the_scale_scenario_is_12000_skus_each_changed_once_and_fits_the_schema() -> None:
    path = SCENARIOS / "scale" / "catalog_12000.json"
    jsonschema.validate(json.loads(path.read_text()), json.loads((SCENARIOS / "scenario.schema.json").read_text()))
    parsed = load_scenario(path)
    assert len(parsed.skus) == 12_000
    changes = [step for step in parsed.steps if isinstance(step, WarehouseStep)]
    assert len(changes) == 1 and set(changes[0].warehouse) == {sku.retailer_id for sku in parsed.skus}
    assert all(changes[0].warehouse[sku.retailer_id] != sku.warehouse for sku in parsed.skus)
