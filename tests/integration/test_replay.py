"""`stocksync replay` end to end: shipped scenarios reach their expected catalog, bad scenarios exit 2 untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli.main import main

SCENARIOS = Path(__file__).resolve().parents[2] / "events" / "scenarios"
CHECKED = sorted(path for path in SCENARIOS.glob("*.json") if path.name != "scenario.schema.json")
# A whole simulated day (what `make demo` runs): the slow tier replays it, the regular tier the shorter scenarios.
LONG = {"demo_day"}


def replay_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["replay", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(path, marks=[pytest.mark.slow] if path.stem in LONG else [], id=path.stem) for path in CHECKED],
)
def test_a_shipped_scenario_ends_with_its_expected_catalog_and_the_catalog_equals_a(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = json.loads(scenario.read_text())["expect"]
    code, report = replay_json(capsys, str(scenario))
    assert code == 0, report["dead_letters"]
    for retailer_id, shown in expected["catalog"].items():
        assert report["catalog"][retailer_id] == shown, retailer_id
    assert report["refused_orders"] == expected.get("refused_orders", [])
    # A scenario with demand steps may pin what its seeded buyers got (totals of the report's demand section).
    for name, value in expected.get("demand", {}).items():
        assert report["demand"][name] == value, name
    for retailer_id, sku in report["skus"].items():
        assert report["catalog"][retailer_id]["units"] == sku["A"], retailer_id
        assert sku["confirmed"], retailer_id
    assert report["dead_letters"] == []
    # After every run: pipeline the catalog showed A, or the report says why it could not (an edit outside stocksync).
    assert [difference for difference in report["catalog_differs_from_a"] if not difference["why"]] == []
    assert set(report["graph_calls"]) >= {"commerce_orders", "items_batch", "check_batch_request_status"}
    latency = report["change_to_confirm_seconds"]
    assert latency["count"] >= len(report["skus"]) and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


def test_an_invalid_scenario_exits_2_naming_the_step_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = json.loads((SCENARIOS / "readme_example.json").read_text())
    scenario["steps"][4] = {"cancel": {"id": "o-2", "items": [{"retailer_id": "SKU-2", "quantity": 5}], "by": "buyer"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    assert main(["replay", str(path)]) == 2
    error = capsys.readouterr().err
    assert "steps[4].cancel.items[0].quantity" in error


def test_one_sample_event_through_one_handler_like_sam_local_invoke(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SCENARIOS.parent / "order_events_sqs_batch.json"
    code = main(["replay", str(sample), "--function", "order_events"])
    answer = json.loads(capsys.readouterr().out)
    assert answer["result"] == {"batchItemFailures": []}
    assert code == 1  # the sample's second record is bad on purpose: it is left in the dead-letter queue
    assert [letter["reason"].split(":")[0] for letter in answer["dead_letters"]] == ["items.0.quantity"]


def over_selling_scenario(over_sold: dict[str, int]) -> dict[str, Any]:
    """Two units sold on the platform, then the warehouse counts one: SKU-1 owes a unit more than it holds."""
    return {
        "description": "SKU-1 over-sold by one unit: sold 2 on the platform, then the warehouse counts 1.",
        "settings": {"buckets": {"slow": {"threshold": 0, "allocation_percent": 100}}},
        "skus": [{"retailer_id": "SKU-1", "warehouse": 2, "bucket": "slow"}],
        "steps": [
            {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-1", "quantity": 2}]}},
            {"run": "pipeline"},
            {"warehouse": {"SKU-1": 1}},
            {"run": "pipeline"},
        ],
        "expect": {"catalog": {"SKU-1": {"units": 0, "visibility": "published"}}, "over_sold": over_sold},
    }


def test_replay_marks_an_over_sold_sku_and_checks_the_expect_block_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    met = tmp_path / "over_sold.json"
    met.write_text(json.dumps(over_selling_scenario({"SKU-1": 1})))
    assert main(["replay", str(met)]) == 0
    printed = capsys.readouterr()
    row = next(line for line in printed.out.splitlines() if line.startswith("SKU-1 "))
    assert row.split()[:8] == ["SKU-1", "slow", "1", "2", "0", "1", "0", "0"]  # I P C alloc thr A
    assert row.endswith("OVER-SOLD by 1")
    assert "over-sold now: 1 SKUs, 1 units owed beyond the warehouse level (units at risk): SKU-1 by 1" in printed.out
    assert printed.out.rstrip().endswith("expect: met")

    missed = tmp_path / "missed.json"
    missed.write_text(json.dumps(over_selling_scenario({})))  # the scenario claims nothing is over-sold
    assert main(["replay", str(missed), "--json"]) == 1
    printed = capsys.readouterr()
    assert "expect not met: expect.over_sold: wanted {}, got {'SKU-1': 1}" in printed.err.splitlines()
    assert json.loads(printed.out)["expect_unmet"] == ["expect.over_sold: wanted {}, got {'SKU-1': 1}"]


@pytest.mark.parametrize(
    ("sample", "function"),
    [
        ("order_changed_bus_event.json", "order_events"),
        ("push_queue_batch.json", "verify_batch"),
        ("order_events_sqs_batch.json", "no_such_function"),
    ],
)
def test_replay_refuses_a_mismatched_sample_in_one_line_before_anything_runs(
    sample: str, function: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(SCENARIOS.parent / sample), "--function", function]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("refused: ") and printed.err.count("\n") == 1 and "Traceback" not in printed.err


@pytest.mark.parametrize(
    ("sample", "function"),
    [
        ("snapshot_object_created.json", "load_snapshot"),  # the file, in the local stack's bucket
        ("push_queue_batch.json", "push_batch"),  # the SKUs, at the rows' claimed versions, and in the catalog
        ("verify_queue_batch.json", "verify_batch"),  # a batch pushed first, its handle checked
    ],
)
def test_a_sample_of_a_later_stage_seeds_what_earlier_stages_make_and_succeeds(
    sample: str, function: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(SCENARIOS.parent / sample), "--function", function])
    printed = capsys.readouterr()
    answer = json.loads(printed.out)
    assert (code, answer["dead_letters"], answer["result"]) == (0, [], {"batchItemFailures": []})
    assert f"{sample} ({function}): seeds itself locally" in printed.err
