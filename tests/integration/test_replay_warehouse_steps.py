"""`stocksync replay` through its real entry point: warehouse steps with no clock movement between them keep their
order (each is stamped strictly later than the one before), whatever order the warehouse queue delivers them in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli.main import main
from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.cli.replay import ScenarioPlayer

SKUS = [{"retailer_id": "SKU-1", "warehouse": 10}, {"retailer_id": "SKU-2", "warehouse": 5}]
STEPS = [{"warehouse": {"SKU-1": 10}}, {"warehouse": {"SKU-1": 8}}, {"warehouse": {"SKU-1": 6}}, {"run": "pipeline"}]


def replay_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"skus": SKUS, "steps": STEPS}))
    code = main(["replay", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def warehouse_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every "Warehouse Stock Levels" detail the replay puts on the bus, in the order it puts them."""
    sent: list[dict[str, Any]] = []
    put = ScenarioPlayer._put

    def recording(self: ScenarioPlayer, detail_type: str, details: list[dict[str, Any]]) -> None:
        if detail_type == "Warehouse Stock Levels":
            sent.extend(details)
        put(self, detail_type, details)

    monkeypatch.setattr(ScenarioPlayer, "_put", recording)
    yield sent


def test_warehouse_steps_without_clock_movement_end_with_the_last_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], warehouse_events: list[dict[str, Any]]
) -> None:
    code, report = replay_json(tmp_path, capsys)

    assert code == 0, report["dead_letters"]
    assert (report["skus"]["SKU-1"]["I"], report["skus"]["SKU-1"]["A"]) == (6, 6)
    assert report["catalog"]["SKU-1"]["units"] == 6
    # Each step is stamped strictly later than the one before (the initial publish first), though the clock stood.
    stamps = [
        (entry["as_of"], entry["sequence"])
        for detail in warehouse_events
        for entry in detail["levels"]
        if entry["retailer_id"] == "SKU-1"
    ]
    assert len({as_of for as_of, _ in stamps[1:]}) == 1  # the steps share the clock (the first publish drained)
    assert [sequence for _, sequence in stamps] == [1, 2, 3, 4]


def test_warehouse_steps_win_by_their_sequence_even_when_delivered_in_reverse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS does not promise order: a replay whose warehouse queue hands the three events over last-first still ends
    with the last step's level, because the steps carry increasing sequences."""
    invoke = LocalPipeline.invoke
    batches: list[list[str]] = []

    def reversed_batches(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        if function == "warehouse_events":
            event = {"Records": list(reversed(event["Records"]))}
            batches.append([record["body"] for record in event["Records"]])
        return invoke(self, function, event)

    monkeypatch.setattr(LocalPipeline, "invoke", reversed_batches)
    code, report = replay_json(tmp_path, capsys)
    assert code == 0, report["dead_letters"]
    assert report["skus"]["SKU-1"]["I"] == 6
    assert [len(batch) for batch in batches] == [1, 3]  # the initial publish, then the three steps in one batch
