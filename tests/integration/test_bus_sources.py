"""Only the sources the template names reach the functions: a bus rule that matched detail-type alone would let any
principal of the account allowed events:PutEvents discontinue SKUs or freeze stock (issue 16).

Checked twice: on the translated template (every rule's pattern names its sources, the parameters' defaults are what
the local senders send), and through moto, whose EventBridge matches the whole pattern, source included: an event
with the right detail-type and a foreign source lands on no queue.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from stocksync.errors import ConfigurationError
from stocksync_dev.local.aws import BUS_SOURCES, LocalAws
from stocksync_dev.local.template import REPO_ROOT, load_template, parameter_values, translate_template
from tests.support import drain_queue

# Rule on the product's bus -> the parameter naming its sources and the queue output it delivers to.
BUS_RULES = {
    "OrderEventsRule": ("OrderEventSources", "OrderEventsQueueUrl"),
    "WarehouseEventsRule": ("WarehouseEventSources", "WarehouseEventsQueueUrl"),
    "SkuSettingsRule": ("SettingsEventSources", "RecomputeQueueUrl"),
}
DETAILS = {
    "Order Changed": {"order_id": "web-1", "state": "placed", "items": [{"retailer_id": "SKU-1", "quantity": 1}]},
    "Warehouse Stock Levels": {"levels": [{"retailer_id": "SKU-1", "level": 0, "as_of": "2026-11-23T06:00:00Z"}]},
    "Warehouse Orders Synced": {"order_ids": ["web-1"], "as_of": "2026-11-23T06:00:00Z"},
    "SKU Settings Changed": {"retailer_id": "SKU-1", "as_of": "2026-11-23T06:00:00Z", "discontinued": True},
}
QUEUE_OF = {
    "Order Changed": "OrderEventsQueueUrl",
    "Warehouse Stock Levels": "WarehouseEventsQueueUrl",
    "Warehouse Orders Synced": "WarehouseEventsQueueUrl",
    "SKU Settings Changed": "RecomputeQueueUrl",
}


@cache
def rules() -> dict[str, dict[str, Any]]:
    resources = translate_template()["Resources"]
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::Events::Rule"}


# ------------------------------------------------------------------ the template
def test_every_rule_with_an_event_pattern_filters_on_source() -> None:
    patterned = {name: rule["Properties"].get("EventPattern") for name, rule in rules().items()}
    patterned = {name: pattern for name, pattern in patterned.items() if pattern is not None}
    assert {*BUS_RULES, "SnapshotCreatedRule", "ShopifyOrdersRule"} <= patterned.keys()
    assert [name for name, pattern in patterned.items() if not pattern.get("source")] == []


@pytest.mark.parametrize("rule", sorted(BUS_RULES))
def test_each_bus_rule_takes_its_sources_from_its_parameter(rule: str) -> None:
    parameter, _queue = BUS_RULES[rule]
    properties = rules()[rule]["Properties"]
    assert properties["EventBusName"] == {"Fn::GetAtt": ["StockSyncBus", "Name"]}
    assert properties["EventPattern"]["source"] == {"Ref": parameter}
    assert load_template()["Parameters"][parameter]["Type"] == "CommaDelimitedList"


def test_the_parameter_defaults_are_the_sources_the_local_senders_use() -> None:
    """The replay, tests and benchmarks send BUS_SOURCES; a default changed alone would silently drop their events."""
    parameters = load_template()["Parameters"]
    defaults = {
        detail_type: parameters[BUS_RULES[rule][0]]["Default"]
        for rule in BUS_RULES
        for detail_type in rules()[rule]["Properties"]["EventPattern"]["detail-type"]
    }
    assert defaults == BUS_SOURCES


def test_the_aws_rules_keep_the_sources_only_aws_can_send() -> None:
    snapshot = rules()["SnapshotCreatedRule"]["Properties"]["EventPattern"]
    assert snapshot["source"] == ["aws.s3"] and snapshot["detail"]["bucket"]["name"] == [{"Ref": "SnapshotBucket"}]
    shopify = rules()["ShopifyOrdersRule"]
    assert shopify["Properties"]["EventPattern"]["source"] == [{"Ref": "ShopifyEventSourceName"}]
    # Shopify's events carry the partner event source's name, which the partner bus is named after.
    sample = json.loads((REPO_ROOT / "events" / "shopify_orders_create.json").read_text())
    assert sample["source"].startswith("aws.partner/shopify.com/")


def test_a_merchant_may_accept_several_sources_each_checked_like_one() -> None:
    template = load_template()
    required = {"CatalogId": "1001"}
    values = parameter_values(template, {**required, "OrderEventSources": "stocksync.orders,com.example.webshop"})
    assert values["OrderEventSources"] == "stocksync.orders,com.example.webshop"
    for refused in ("stocksync.orders,", "stocksync orders", "stocksync.orders,*"):
        with pytest.raises(ConfigurationError) as raised:
            parameter_values(template, {**required, "OrderEventSources": refused})
        assert raised.value.setting == "OrderEventSources"


# ------------------------------------------------------------------ through moto's EventBridge
def put(local_aws: LocalAws, detail_type: str, source: str) -> None:
    answer = local_aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": local_aws.outputs["EventBusName"],
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(DETAILS[detail_type]),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0  # the bus takes it; the rule decides whether it goes anywhere


@pytest.mark.parametrize("detail_type", sorted(BUS_SOURCES))
def test_an_event_from_a_foreign_source_reaches_no_queue(
    local_aws: LocalAws, aws_env: dict[str, str], detail_type: str
) -> None:
    sqs = local_aws.client("sqs")
    queues = {key: url for key, url in local_aws.outputs.items() if key.endswith("QueueUrl")}
    for foreign in ("com.example.intruder", "stocksync", BUS_SOURCES[detail_type].upper()):
        put(local_aws, detail_type, foreign)
    delivered = {key: drain_queue(sqs, url) for key, url in queues.items()}
    assert {key: messages for key, messages in delivered.items() if messages} == {}


@pytest.mark.parametrize("detail_type", sorted(BUS_SOURCES))
def test_an_event_from_its_source_reaches_its_queue(
    local_aws: LocalAws, aws_env: dict[str, str], detail_type: str
) -> None:
    put(local_aws, detail_type, BUS_SOURCES[detail_type])
    delivered = drain_queue(local_aws.client("sqs"), local_aws.outputs[QUEUE_OF[detail_type]])
    assert [(m["body"]["source"], m["body"]["detail-type"]) for m in delivered] == [
        (BUS_SOURCES[detail_type], detail_type)
    ]


# ------------------------------------------------------------------ producers in other accounts
def test_other_accounts_may_put_events_only_when_named_and_only_with_the_accepted_sources() -> None:
    template = translate_template()
    parameter = template["Parameters"]["BusProducerAccounts"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert template["Conditions"]["HasBusProducerAccounts"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "BusProducerAccounts"}, ""]}]
    }
    [policy] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::EventBusPolicy"]
    assert policy["Condition"] == "HasBusProducerAccounts"  # the default deploys no policy: this account only
    properties = policy["Properties"]
    assert properties["EventBusName"] == {"Fn::GetAtt": ["StockSyncBus", "Name"]}
    statement = properties["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    assert statement["Principal"] == {"AWS": {"Fn::Split": [",", {"Ref": "BusProducerAccounts"}]}}
    assert statement["Resource"] == {"Fn::GetAtt": ["StockSyncBus", "Arn"]}
    sources = statement["Condition"]["ForAllValues:StringEquals"]["events:source"]
    joined = sources["Fn::Split"][1]["Fn::Join"][1]
    assert joined == [{"Fn::Join": [",", {"Ref": parameter}]} for parameter, _queue in BUS_RULES.values()]


@pytest.mark.parametrize("accounts", ["", "123456789012", "123456789012,210987654321"])
def test_producer_accounts_are_empty_or_account_ids(accounts: str) -> None:
    assert parameter_values(load_template(), {"CatalogId": "1", "BusProducerAccounts": accounts})


@pytest.mark.parametrize("accounts", ["12345", "*", "arn:aws:iam::123456789012:root", "123456789012,", ",123456789012"])
def test_anything_but_account_ids_is_refused_as_a_producer(accounts: str) -> None:
    with pytest.raises(ConfigurationError, match="BusProducerAccounts"):
        parameter_values(load_template(), {"CatalogId": "1", "BusProducerAccounts": accounts})
