"""export_feeds through its real entry point against the stack in moto: the hybrid catalog's two feed files in S3."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.models.settings import get_settings
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import FakeLambdaContext, load_handler, sqs_event

SCHEDULE_EVENT = json.loads((Path(__file__).resolve().parents[2] / "events/export_feeds_schedule.json").read_text())
MASTER = (
    "\ufeffid,title,price,link,quantity_to_sell_on_facebook,visibility\r\n"
    "SLOW-1,Wool socks,9.99 EUR,https://shop.example/s1,12,published\r\n"
    "FAST-1,Sneakers,89.00 EUR,https://shop.example/f1,3,published\r\n"
)


@pytest.fixture
def feed_bucket(local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The stack's feed bucket, emptied (the per-test reset covers tables and queues, not buckets), slow fed by feed."""
    s3, bucket = local_aws.client("s3"), aws_env["FEED_BUCKET"]
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    monkeypatch.setenv("STOCKSYNC_FEED_BUCKETS", "slow")
    get_settings.cache_clear()
    return bucket


def put_state(local_aws: LocalAws, rid: str, bucket: str, value: int, version: int) -> None:
    local_aws.client("dynamodb").put_item(
        TableName=local_aws.function_environment()["SKU_TABLE"],
        Item=encode(
            {
                "retailer_id": rid,
                "record": "state",
                "bucket": bucket,
                "published_value": value,
                "published_version": version,
                "published_visibility": "published",
                "published_at": "2026-11-23T09:00:00+00:00",
            }
        ),
    )


def read(local_aws: LocalAws, key: str) -> list[dict[str, str]]:
    body = local_aws.client("s3").get_object(Bucket=local_aws.function_environment()["FEED_BUCKET"], Key=key)["Body"]
    return list(csv.DictReader(io.StringIO(body.read().decode())))


def test_the_export_writes_static_fields_for_all_and_stock_only_for_the_feed_buckets(
    local_aws: LocalAws, aws_env: dict[str, str], feed_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_aws.client("s3").put_object(Bucket=feed_bucket, Key="source/products.csv", Body=MASTER.encode())
    put_state(local_aws, "SLOW-1", "slow", 7, 2)
    put_state(local_aws, "FAST-1", "fast", 1, 4)

    report = load_handler("export_feeds").lambda_handler(SCHEDULE_EVENT, FakeLambdaContext())
    assert (report["replace_rows"], report["update_rows"], report["confirmed"]) == (2, 1, 1)
    assert read(local_aws, "feeds/products_replace.csv") == [
        {"id": "SLOW-1", "title": "Wool socks", "price": "9.99 EUR", "link": "https://shop.example/s1"},
        {"id": "FAST-1", "title": "Sneakers", "price": "89.00 EUR", "link": "https://shop.example/f1"},
    ]
    assert read(local_aws, "feeds/inventory_update.csv") == [
        {"id": "SLOW-1", "quantity_to_sell_on_facebook": "7", "visibility": "published"}
    ]
    state = decode(
        local_aws.client("dynamodb").get_item(
            TableName=aws_env["SKU_TABLE"], Key=encode({"retailer_id": "SLOW-1", "record": "state"})
        )["Item"]
    )
    assert (state["confirmed_value"], state["confirmed_version"]) == (7, 2)

    # The API path leaves the feed-served SKU to the feed; the fast one goes out by items_batch.
    with CommercePlatformSimulator(access_token="feed-token", app_secret="feed-secret") as sim:
        sim.add_product("FAST-1", quantity=0)
        monkeypatch.setenv("STOCKSYNC_GRAPH_BASE_URL", sim.url)
        local_aws.put_graph_credentials("feed-token", "feed-secret")
        get_settings.cache_clear()
        pushed = load_handler("push_batch").lambda_handler(
            sqs_event([_push("SLOW-1", 8, 3), _push("FAST-1", 1, 4)]), FakeLambdaContext()
        )
        assert pushed == {"batchItemFailures": []}
        [(_method, _path, params)] = [call for call in sim.requests_log if call[1].endswith("/items_batch")]
        assert [request["data"]["id"] for request in json.loads(params["requests"])] == ["FAST-1"]


def test_without_a_product_master_only_the_update_feed_is_written(local_aws: LocalAws, feed_bucket: str) -> None:
    put_state(local_aws, "SLOW-1", "slow", 4, 1)
    report = load_handler("export_feeds").lambda_handler({}, FakeLambdaContext())
    assert (report["replace_written"], report["update_written"]) == (False, True)
    listed = local_aws.client("s3").list_objects_v2(Bucket=feed_bucket).get("Contents", [])
    assert [item["Key"] for item in listed] == ["feeds/inventory_update.csv"]


def _push(rid: str, value: int, version: int) -> str:
    return json.dumps(
        {
            "retailer_id": rid,
            "value": value,
            "version": version,
            "visibility": "published",
            "computed_at": "2026-11-23T09:00:00Z",
        }
    )
