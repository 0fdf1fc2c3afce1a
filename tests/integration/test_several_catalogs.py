"""Several catalogs, one stack each (README, "Several catalogs"): two stacks of template.yaml with different names
deploy side by side into one account (here one moto process, which holds the session's stack already) without a
name clash, and each function environment points at its own catalog, tables, queues, bus and metrics."""

from __future__ import annotations

from typing import Any

from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import translate_template

STACK_NAMED = ("LayerName", "LogGroupName", "Name", "DashboardName")


def test_every_name_the_template_fixes_carries_the_stack_name() -> None:
    """A fixed physical name without the stack's name would clash when a second stack is deployed in the account.
    The one exception is the Shopify partner bus, which must bear its partner event source's name (one per shop)."""
    fixed: dict[str, Any] = {}
    for logical_id, resource in translate_template()["Resources"].items():
        for key in STACK_NAMED:
            if key in resource.get("Properties", {}):
                fixed[logical_id] = resource["Properties"][key]
    assert {"StockSyncBus", "OperationsDashboard", "PushBatchLogGroup"} <= fixed.keys()
    assert any(logical_id.startswith("StockSyncLayer") for logical_id in fixed)  # the layer's id gets a hash
    for logical_id, name in fixed.items():
        if logical_id == "ShopifyEventBus":
            assert name == {"Ref": "ShopifyEventSourceName"}
            continue
        assert isinstance(name, dict) and "${AWS::StackName}" in name["Fn::Sub"], logical_id


def test_two_stacks_for_two_catalogs_deploy_side_by_side(local_aws: LocalAws) -> None:
    with LocalAws(stack_name="stocksync-shop-b", parameter_overrides={"CatalogId": "2002"}) as shop_b:
        a, b = local_aws.function_environment(), shop_b.function_environment()
        assert (a["STOCKSYNC_CATALOG_ID"], b["STOCKSYNC_CATALOG_ID"]) == ("1001", "2002")
        for name in ("SKU_TABLE", "ORDERS_TABLE", "PUSH_QUEUE_URL", "EVENT_BUS_NAME", "POWERTOOLS_SERVICE_NAME"):
            assert a[name] != b[name], name
        assert b["POWERTOOLS_SERVICE_NAME"] == "stocksync-shop-b"  # metrics and alarms of this stack only
        physical_a = {physical for _type, physical in local_aws.resources.values() if physical}
        physical_b = {physical for _type, physical in shop_b.resources.values() if physical}
        assert len(physical_b) > 50 and physical_a.isdisjoint(physical_b)
        # Each stack's store is its own: an item written through shop B's table is not in shop A's.
        dynamodb = shop_b.client("dynamodb")
        dynamodb.put_item(TableName=b["CONTROL_TABLE"], Item={"name": {"S": "probe#shop-b"}})
        assert "Item" not in dynamodb.get_item(TableName=a["CONTROL_TABLE"], Key={"name": {"S": "probe#shop-b"}})
        for stack in ("stocksync-local", "stocksync-shop-b"):
            prefix = f"/aws/lambda/{stack}/push_"
            groups = shop_b.client("logs").describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
            assert [group["logGroupName"] for group in groups] == [f"{prefix}batch"]
