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
