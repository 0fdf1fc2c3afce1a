"""The merchant's SKU mapping end to end on moto: a stack deployed with ``SkuMappingKey`` (and the Shopify connector),
the mapping CSV uploaded to the feed bucket, Shopify orders whose SKUs are the shop's own ids delivered through the
partner bus to shopify_orders: mapped lines count against the catalog's retailer_id, an unmapped one is
dead-lettered naming order and line, and a mapping file that cannot be parsed fails the whole batch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from stocksync.dal.codec import decode, encode
from stocksync.dal.sku_mapping_source import forget_sources
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import translate_template
from tests.integration.test_shopify_orders import PARTNER_ACCOUNT, REGION, UNPLACED, order, webhook_event
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler, pointed_at

SOURCE_NAME = f"aws.partner/shopify.com/7261741/stocksync-skumap-{uuid.uuid4().hex[:8]}"
KEY = "source/sku-mapping.csv"


@pytest.fixture(scope="module")
def mapped_aws() -> Iterator[LocalAws]:
    get_backend("events")[PARTNER_ACCOUNT][REGION].create_partner_event_source(SOURCE_NAME, DEFAULT_ACCOUNT_ID)
    stack = f"stocksync-skumap-{uuid.uuid4().hex[:8]}"
    overrides = {"ShopifyEventSourceName": SOURCE_NAME, "SkuMappingKey": KEY, "WebhookEndpoint": "none"}
    with LocalAws(parameter_overrides=overrides, stack_name=stack) as aws:
        yield aws


@pytest.fixture
def env(mapped_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with pointed_at(mapped_aws, monkeypatch, also_forget=(forget_sources,)) as environment:
        yield environment


def upload(aws: LocalAws, text: str) -> None:
    aws.client("s3").put_object(Bucket=aws.outputs["FeedBucketName"], Key=KEY, Body=text.encode())


def deliver(aws: LocalAws, *events: dict[str, Any]) -> dict[str, Any]:
    """Shopify's PutPartnerEvents, the rule to the queue, the queue's records to the real handler."""
    get_backend("events")[PARTNER_ACCOUNT][REGION].put_partner_events(
        [
            {
                "Source": SOURCE_NAME,
                "EventBusName": SOURCE_NAME,
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
            for event in events
        ]
    )
    sqs, url = aws.client("sqs"), aws.outputs["ShopifyOrdersQueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == len(events), "the partner bus rule did not deliver every event"
    records = [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ShopifyOrdersQueue",
            "awsRegion": REGION,
        }
        for message in messages
    ]
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return load_handler("shopify_orders").lambda_handler({"Records": records}, FakeLambdaContext())


def pending_created(aws: LocalAws, sku: str) -> int | None:
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=aws.function_environment()["SKU_TABLE"], Key=encode({"retailer_id": sku, "record": "state"})
        )
        .get("Item")
    )
    return None if item is None else decode(item)["pending_created"]


def test_the_connectors_may_read_the_mapping_object_and_only_it() -> None:
    template = translate_template()
    resources = template["Resources"]
    for function, connector in (("ShopifyOrders", "HasShopify"), ("WebhookOrders", "HasWebhookEndpoint")):
        policy = resources[f"SkuMappingReadFor{function}"]
        condition = policy["Condition"]
        assert template["Conditions"][condition] == {
            "Fn::And": [{"Condition": connector}, {"Condition": "HasSkuMapping"}]
        }
        assert policy["Properties"]["Roles"] == [{"Ref": f"{function}FunctionRole"}]
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert statement["Resource"] == {"Fn::Sub": "${FeedBucket.Arn}/${SkuMappingKey}"}
    assert template["Parameters"]["SkuMappingKey"]["Default"] == ""


def test_the_stack_with_a_mapping_grants_the_read(mapped_aws: LocalAws) -> None:
    assert mapped_aws.resources["SkuMappingReadForShopifyOrders"][0] == "AWS::IAM::Policy"
    assert "SkuMappingReadForWebhookOrders" not in mapped_aws.resources  # the webhook endpoint is off here


def test_mapped_skus_count_against_the_catalog_id_and_an_unmapped_one_is_dead_lettered(
    mapped_aws: LocalAws, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert env["STOCKSYNC_SKU_MAPPING_KEY"] == KEY
    upload(mapped_aws, "shop_sku,retailer_id\nSHOP-1001,MUG-RED\nSHOP-1002,MUG-BLUE\n")
    capsys.readouterr()
    payload = order(("SHOP-1001", 2, 2), ("SHOP-9999", 1, 1), ("SHOP-1002", 1, 1), order_id=8001)
    assert deliver(mapped_aws, webhook_event("orders/create", payload)) == {"batchItemFailures": []}
    assert pending_created(mapped_aws, "MUG-RED") == 2 and pending_created(mapped_aws, "MUG-BLUE") == 1
    assert pending_created(mapped_aws, "SHOP-1001") is None  # the shop's id is not the catalog's
    assert emitted_metrics(capsys.readouterr().out)[UNPLACED] == [1.0]
    letters = drain_queue(mapped_aws.client("sqs"), env["DEAD_LETTER_QUEUE_URL"])
    assert [letter["attributes"]["reason"] for letter in letters] == [
        "order shopify:8001 line 14371844292695: SKU not in the SKU mapping (SHOP-9999)"
    ]
    assert letters[0]["body"]["body"]["sku"] == "SHOP-9999"


def test_a_mapping_file_that_cannot_be_parsed_fails_the_batch_naming_the_problem(
    mapped_aws: LocalAws, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    upload(mapped_aws, "shop_sku,retailer_id\nSHOP-1001,MUG-RED\nSHOP-1001,MUG-BLUE\n")
    with pytest.raises(Exception, match="line 3: shop_sku 'SHOP-1001' maps to 'MUG-BLUE' here and to 'MUG-RED'"):
        deliver(mapped_aws, webhook_event("orders/create", order(("SHOP-1001", 1, 1), order_id=8002)))
    (logged,) = [
        record for record in caplog.records if record.getMessage() == "SKU mapping unusable; the batch is retried"
    ]
    assert f"s3://{env['FEED_BUCKET']}/{KEY}: line 3" in logged.problem  # type: ignore[attr-defined]
    assert pending_created(mapped_aws, "MUG-RED") is None  # nothing applied, nothing counted as its own id
    assert pending_created(mapped_aws, "SHOP-1001") is None
    assert drain_queue(mapped_aws.client("sqs"), env["DEAD_LETTER_QUEUE_URL"]) == []


def test_a_missing_mapping_object_fails_the_batch(mapped_aws: LocalAws, env: dict[str, str]) -> None:
    mapped_aws.client("s3").delete_object(Bucket=env["FEED_BUCKET"], Key=KEY)
    with pytest.raises(Exception, match=f"s3://{env['FEED_BUCKET']}/{KEY} cannot be read"):
        deliver(mapped_aws, webhook_event("orders/create", order(("SHOP-1001", 1, 1), order_id=8003)))
    assert pending_created(mapped_aws, "SHOP-1001") is None
