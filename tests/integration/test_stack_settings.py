"""``--stack-name``: the commands read the functions' settings from a deployed stack, here the template deployed through
CloudFormation into moto server (real HTTP), with none of the functions' variables in the environment."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.models.settings import Settings
from stocksync_dev.cli import main as cli
from stocksync_dev.cli.stack_settings import SettingsError, function_logical_id, resolve_settings, stack_variables
from stocksync_dev.local.aws import LocalAws
from tests.support import drain_queue, pointed_at

SETTING_NAMES = {field.alias for field in Settings.model_fields.values() if field.alias}
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def only_aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """boto3 pointed at moto and nothing else: none of the functions' variables in the environment."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    with pointed_at(local_aws, monkeypatch, only_aws=True) as environment:
        local_aws.reset_data()
        yield environment
    assert not SETTING_NAMES & set(os.environ), "a command left the stack's settings in the environment"


def stack_args(local_aws: LocalAws, **more: Any) -> argparse.Namespace:
    return argparse.Namespace(stack_name=local_aws.stack_name, profile=None, region=None, **more)


def sku_state(local_aws: LocalAws, retailer_id: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Key=encode({"retailer_id": retailer_id, "record": "state"}),
    )
    return decode(answer.get("Item", {}))


def test_the_settings_are_the_named_functions_own_as_the_stack_resolved_them(
    local_aws: LocalAws, only_aws: dict[str, str]
) -> None:
    deployed = local_aws.function_environment()
    variables = stack_variables(stack_args(local_aws), "OrderWebhookFunction")
    for name in ("SKU_TABLE", "ORDERS_TABLE", "DEAD_LETTER_QUEUE_URL", "EVENT_BUS_NAME", "STOCKSYNC_BUCKETS"):
        assert variables[name] == deployed[name]
    assert variables["WEBHOOK_QUEUE_URL"] == deployed["WEBHOOK_QUEUE_URL"]  # the webhook function's own variable
    assert "WEBHOOK_QUEUE_URL" not in stack_variables(stack_args(local_aws), "ReconcileFunction")
    assert all(isinstance(value, str) for value in variables.values())  # moto keeps YAML numbers numbers
    settings = Settings.model_validate(resolve_settings(stack_args(local_aws), "OrderWebhookFunction"))
    assert settings.catalog_id == "1001" and settings.sku_table == deployed["SKU_TABLE"]
    assert settings.webhook_queue_url == deployed["WEBHOOK_QUEUE_URL"]


def test_a_missing_stack_or_function_is_one_clear_error(local_aws: LocalAws, only_aws: dict[str, str]) -> None:
    missing = argparse.Namespace(stack_name="no-such-stack", profile=None, region=None)
    with pytest.raises(SettingsError, match="cannot read stack 'no-such-stack'"):
        stack_variables(missing)
    with pytest.raises(SettingsError, match="has no function ShopifyOrdersFunction") as raised:
        stack_variables(stack_args(local_aws), "ShopifyOrdersFunction")  # HasShopify is false in the local stack
    assert "ReconcileFunction" in str(raised.value)  # the functions it does have
    assert function_logical_id("push_batch") == "PushBatchFunction"


def test_discontinue_runs_through_the_cli_against_the_stack_alone(
    local_aws: LocalAws, only_aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["discontinue", "MUG-RED", "--stack-name", local_aws.stack_name]) == 0
    assert capsys.readouterr().out.splitlines() == ["MUG-RED: discontinued (staging, 0 units)"]
    assert sku_state(local_aws, "MUG-RED")["discontinued"] is True
    queued = drain_queue(local_aws.client("sqs"), local_aws.function_environment()["RECOMPUTE_QUEUE_URL"])
    assert [message["body"] for message in queued] == [{"retailer_id": "MUG-RED", "reason": "discontinue"}]


def test_discontinue_still_runs_on_the_environment_without_a_stack(
    local_aws: LocalAws, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["discontinue", "MUG-RED", "--undo"]) == 0
    assert capsys.readouterr().out.splitlines() == ["MUG-RED: published again"]
    assert sku_state(local_aws, "MUG-RED")["discontinued"] is False


def test_reconcile_and_a_replayed_event_run_against_the_stack_alone(
    local_aws: LocalAws, only_aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["reconcile", "--json", "--stack-name", local_aws.stack_name]) == 0
    assert json.loads(capsys.readouterr().out)["repairs"] == []

    event = EVENTS / "recompute_queue_batch.json"
    arguments = ["replay", str(event), "--function", "recompute_stock", "--stack-name", local_aws.stack_name]
    assert cli.main(arguments) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}


def test_without_a_stack_every_missing_setting_is_named_at_once(
    local_aws: LocalAws, only_aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["reconcile"]) == 2
    error = capsys.readouterr().err
    required = [
        "STOCKSYNC_CATALOG_ID",
        "STOCKSYNC_BUCKETS",
        "STOCKSYNC_DEFAULT_BUCKET",
        "STOCKSYNC_GRAPH_CREDENTIALS",
        "SKU_TABLE",
        "ORDERS_TABLE",
        "BATCHES_TABLE",
        "CONTROL_TABLE",
        "IDEMPOTENCY_TABLE",
        "RECOMPUTE_QUEUE_URL",
        "PUSH_QUEUE_URL",
        "VERIFY_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "EVENT_BUS_NAME",
    ]
    assert error.startswith(f"stocksync reconcile: {len(required)} setting(s) missing or invalid")
    for name in required:
        assert f"\n  {name}: Field required" in error
    assert "--stack-name" in error
