"""The merchant's SKU mapping CSV: parsed and bounded, bad rows named, cached per container and re-checked by ETag."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stocksync.dal.sku_mapping_source import S3SkuMappingSource, SkuMappingError, parse_mapping
from stocksync.models.settings import Settings
from stocksync.wiring.shop_order_parts import sku_mapping


def test_a_good_file_maps_each_shop_sku_and_knows_nothing_else() -> None:
    data = '\ufeffshop_sku,retailer_id\r\nSHOP-1,MUG-RED\r\n\r\n"SHOP,2",MUG-BLUE\r\nSHOP-3,MUG-RED\r\nSHOP-1,MUG-RED\n'
    assert parse_mapping(data.encode()) == {"SHOP-1": "MUG-RED", "SHOP,2": "MUG-BLUE", "SHOP-3": "MUG-RED"}


def test_the_header_is_required() -> None:
    with pytest.raises(SkuMappingError, match="line 1: the header must be shop_sku,retailer_id"):
        parse_mapping(b"sku,id\nA,B\n")
    with pytest.raises(SkuMappingError, match="line 1"):
        parse_mapping(b"")


def test_bad_rows_are_named_by_line_and_the_whole_file_refused() -> None:
    data = (
        "shop_sku,retailer_id\n"
        "OK,FINE\n"
        "A\n"  # line 3: one field
        ",B\n"  # line 4: empty shop SKU
        "C,D\x07\n"  # line 5: control character
        f"E,{'x' * 101}\n"  # line 6: too long
        " F,G\n"  # line 7: whitespace
        "H,I,J\n"  # line 8: three fields
    )
    with pytest.raises(SkuMappingError) as raised:
        parse_mapping(data.encode())
    message = str(raised.value)
    assert "line 3: expected 2 fields" in message
    assert "line 4: shop_sku is empty" in message
    assert "line 5: retailer_id has a control character" in message
    assert "line 6: retailer_id is longer than 100 characters" in message
    assert "line 7: shop_sku has leading or trailing whitespace" in message
    assert "line 8: expected 2 fields (shop_sku,retailer_id), found 3" in message
    assert "line 2" not in message


def test_a_shop_sku_with_two_targets_is_refused_naming_both_lines() -> None:
    with pytest.raises(SkuMappingError, match="line 4: shop_sku 'A' maps to 'Z' here and to 'X' on line 2"):
        parse_mapping(b"shop_sku,retailer_id\nA,X\nB,Y\nA,Z\n")


def test_only_the_first_problems_are_listed() -> None:
    data = "shop_sku,retailer_id\n" + "A\n" * 15
    with pytest.raises(SkuMappingError, match=r"\(and 5 more\)$"):
        parse_mapping(data.encode())


def test_size_rows_encoding_and_emptiness_are_bounded() -> None:
    with pytest.raises(SkuMappingError, match="more than the 100 allowed"):
        parse_mapping(b"shop_sku,retailer_id\n" + b"A,B\n" * 30, max_bytes=100)
    with pytest.raises(SkuMappingError, match="more than 3 rows"):
        parse_mapping(b"shop_sku,retailer_id\nA,1\nB,2\nC,3\nD,4\n", max_rows=3)
    with pytest.raises(SkuMappingError, match="not UTF-8"):
        parse_mapping(b"shop_sku,retailer_id\nA,\xff\n")
    with pytest.raises(SkuMappingError, match="has no rows"):
        parse_mapping(b"shop_sku,retailer_id\n\n")
    with pytest.raises(SkuMappingError, match="not valid CSV"):
        parse_mapping(b'shop_sku,retailer_id\n"A"x,B\n')


class FakeS3:
    """get_object with ETags and If-None-Match, as S3 answers them."""

    def __init__(self, data: bytes, etag: str = '"v1"') -> None:
        self.data, self.etag = data, etag
        self.calls: list[dict[str, Any]] = []
        self.error: str | None = None

    def get_object(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": ""}}, "GetObject")
        if request.get("IfNoneMatch") == self.etag:
            raise ClientError({"Error": {"Code": "304", "Message": "Not Modified"}}, "GetObject")
        return {"Body": io.BytesIO(self.data), "ContentLength": len(self.data), "ETag": self.etag}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_mapping_is_cached_for_its_ttl_and_an_unchanged_object_is_not_read_again() -> None:
    s3, clock = FakeS3(b"shop_sku,retailer_id\nS1,MUG-RED\n"), Clock()
    source = S3SkuMappingSource(s3, bucket="b", key="k.csv", ttl_seconds=300, monotonic=clock)
    assert source.mapping().retailer_id("S1") == "MUG-RED"
    assert source.mapping().retailer_id("MUG-RED") is None  # an explicit mapping does not fall back to identity
    clock.now = 299
    source.mapping()
    assert len(s3.calls) == 1
    clock.now = 301  # re-checked with the ETag: 304, the parsed table kept
    assert source.mapping().retailer_id("S1") == "MUG-RED"
    assert s3.calls[-1]["IfNoneMatch"] == '"v1"' and source.downloads == 1
    s3.data, s3.etag = b"shop_sku,retailer_id\nS1,MUG-BLUE\n", '"v2"'
    clock.now = 700
    assert source.mapping().retailer_id("S1") == "MUG-BLUE" and source.downloads == 2


def test_an_unreadable_or_bad_object_raises_naming_it_and_is_never_served_from_the_cache() -> None:
    s3, clock = FakeS3(b"shop_sku,retailer_id\nS1,MUG-RED\n"), Clock()
    source = S3SkuMappingSource(s3, bucket="b", key="k.csv", ttl_seconds=300, monotonic=clock)
    source.mapping()
    s3.data, s3.etag = b"shop_sku,retailer_id\nS1,A\nS1,B\n", '"v2"'
    clock.now = 400
    with pytest.raises(SkuMappingError, match=r"s3://b/k.csv: line 3: shop_sku 'S1'"):
        source.mapping()
    with pytest.raises(SkuMappingError):  # the old mapping is not quietly kept either
        source.mapping()
    s3.error = "AccessDenied"
    with pytest.raises(SkuMappingError, match=r"s3://b/k.csv cannot be read \(AccessDenied\)"):
        source.mapping()


def test_an_object_over_the_size_bound_is_refused_before_it_is_read() -> None:
    s3 = FakeS3(b"shop_sku,retailer_id\n" + b"A,B\n" * 100)
    source = S3SkuMappingSource(s3, bucket="b", key="k.csv", max_bytes=100)
    with pytest.raises(SkuMappingError, match=r"s3://b/k\.csv is 421 bytes, more than the 100 allowed"):
        source.mapping()


def test_without_a_key_the_sku_is_the_retailer_id() -> None:
    settings = Settings.model_construct(sku_mapping_key="", feed_bucket_name="feeds")
    assert sku_mapping(settings).retailer_id("ANY") == "ANY"


def test_the_key_is_a_plain_s3_key() -> None:
    field = Settings.model_fields["sku_mapping_key"]
    assert field.default == ""
    base = {
        "STOCKSYNC_CATALOG_ID": "1",
        "STOCKSYNC_BUCKETS": '{"fast": {}}',
        "STOCKSYNC_DEFAULT_BUCKET": "fast",
        "STOCKSYNC_GRAPH_CREDENTIALS": "ssm:x",
        **dict.fromkeys(
            [
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
            ],
            "x",
        ),
    }
    assert Settings.from_env({**base, "STOCKSYNC_SKU_MAPPING_KEY": "source/sku-mapping.csv"}).sku_mapping_key
    with pytest.raises(Exception, match="STOCKSYNC_SKU_MAPPING_KEY"):
        Settings.from_env({**base, "STOCKSYNC_SKU_MAPPING_KEY": "bad key\n"})
