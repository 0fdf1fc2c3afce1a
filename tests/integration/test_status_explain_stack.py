"""``stocksync status --stack-name`` and ``stocksync explain --stack-name``: the settings read from the deployed stack
(the template deployed through CloudFormation into moto server), with none of the functions' variables in the
environment. The stack is given its state through the CLI too: a warehouse level and the order sample replayed into
their functions with ``--stack-name``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stocksync.models.settings import Settings
from stocksync_dev.cli import main as cli
from stocksync_dev.local.aws import LocalAws
from tests.integration.test_stack_settings import only_aws  # noqa: F401  (the fixture, used by name below)

EVENTS = Path(__file__).resolve().parents[2] / "events"
pytestmark = pytest.mark.usefixtures("only_aws")


def warehouse_event(tmp_path: Path, retailer_id: str, level: int) -> Path:
    """The warehouse sample with one level: ``retailer_id`` at ``level``."""
    sample = json.loads((EVENTS / "warehouse_levels.json").read_text())
    record = sample["Records"][0]
    body = json.loads(record["body"])
    body["detail"]["levels"] = [{"retailer_id": retailer_id, "level": level, "as_of": "2026-11-23T06:00:00Z"}]
    record["body"] = json.dumps(body)
    path = tmp_path / "warehouse.json"
    path.write_text(json.dumps(sample))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def seeded(local_aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """MUG-RED at 1 in the warehouse, then the order sample: web-100234 places 2 of it (C 2, over-sold by 1) and
    its bad second record goes to the reasoned dead-letter queue. Both through the stack's own functions."""
    stack = local_aws.stack_name
    level = warehouse_event(tmp_path, "MUG-RED", 1)
    code, _, err = run_cli(capsys, "replay", str(level), "--function", "warehouse_events", "--stack-name", stack)
    assert code == 0, err
    orders = str(EVENTS / "order_events_sqs_batch.json")
    code, _, err = run_cli(capsys, "replay", orders, "--function", "order_events", "--stack-name", stack)
    assert code == 0, err  # its second record is bad on purpose: dead-lettered with its reason, the batch succeeds
    return stack


def test_status_reads_the_stack_it_is_named(
    local_aws: LocalAws, seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "status", "--stack-name", seeded, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["catalog_id"] == "1001"  # the stack's CatalogId, from no variable of this process
    assert status["stock"]["over_sold"] == {
        "count": 1,
        "units_at_risk": 1,
        "skus": [{"retailer_id": "MUG-RED", "shortfall": 1}],
    }
    assert status["dead_letters"] == 1
    counts = {queue["name"]: queue["messages"] for queue in status["dead_letter_queues"]}
    assert counts["DeadLetterQueue"] == 1
    waiting = {queue["name"]: queue["messages"] for queue in status["queues"]}
    assert waiting["RecomputeQueue"] >= 1  # the orders' and the level's SKUs, not yet recomputed
    assert {"PushQueue", "OrderEventsQueue", "WarehouseEventsQueue"} <= set(waiting)
    deployed = local_aws.function_environment()
    assert status["call_budgets"]["items_batch"]["per_hour"] == int(deployed["STOCKSYNC_BATCH_CALLS_PER_HOUR"])
    assert status["order_poll"]["state"] == "never polled"

    code, out, err = run_cli(capsys, "status", "--stack-name", seeded)
    assert code == 0, err
    assert "over-sold now: 1 (1 units at risk)" in out and "MUG-RED (short 1)" in out


def test_explain_reads_the_stack_it_is_named(
    local_aws: LocalAws, seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "explain", "MUG-RED", "--stack-name", seeded, "--json")
    assert code == 0, err
    sku = json.loads(out)
    assert sku["I"] == {"units": 1, "as_of": "2026-11-23T06:00:00+00:00"}
    assert (sku["P"], sku["C"], sku["K"]) == (0, 2, 0)
    assert [(order["order_id"], order["C"]) for order in sku["orders"]] == [("events:web-100234", 2)]  # namespaced
    assert sku["counters_match_orders"]
    deployed = local_aws.function_environment()
    assert sku["bucket"]["name"] == deployed["STOCKSYNC_DEFAULT_BUCKET"]
    assert sku["threshold"] == Settings.model_validate(deployed).buckets[sku["bucket"]["name"]].threshold
    assert (sku["over_sold"], sku["shortfall"], sku["A"]) == (True, 1, 0)

    code, out, err = run_cli(capsys, "explain", "NO-SUCH-SKU", "--stack-name", seeded)
    assert (code, out) == (2, "")
    assert err.startswith("stocksync explain: unknown SKU 'NO-SUCH-SKU'")


def test_without_a_stack_every_missing_setting_is_named_and_a_wrong_stack_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["status"], ["explain", "MUG-RED"]):
        code, out, err = run_cli(capsys, *argv)
        assert (code, out) == (2, "")
        assert err.startswith(f"stocksync {argv[0]}: 14 setting(s) missing or invalid in the environment")
        for name in ("STOCKSYNC_CATALOG_ID", "SKU_TABLE", "CONTROL_TABLE", "DEAD_LETTER_QUEUE_URL", "EVENT_BUS_NAME"):
            assert f"\n  {name}: Field required" in err
        code, out, err = run_cli(capsys, *argv, "--stack-name", "no-such-stack")
        assert (code, out) == (2, "")
        assert err.startswith(f"stocksync {argv[0]}: cannot read stack 'no-such-stack'")
