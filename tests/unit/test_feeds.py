"""Hybrid catalog feeds: static fields in the replace feed only, stock in the update feed only for feed buckets."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.errors import InvalidInputError
from stocksync.logic.feeds import (
    REPLACE_FEED_KEY,
    SOURCE_KEY,
    UPDATE_FEED_KEY,
    VOLATILE_FIELDS,
    FeedExporter,
    replace_feed_columns,
)
from stocksync.logic.push_planning import ReceivedPush, select
from stocksync.models.push import QueuedPush
from stocksync.models.sku import SkuState, Visibility
from tests.fakes.push import MemorySkus

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
SOURCE = (
    "\ufeffid,title,price,quantity_to_sell_on_facebook,inventory,visibility,link\n"
    "A,Red shoe,19.99 EUR,5,5,published,https://shop.example/a\n"
    ",no id,1.00 EUR,1,1,published,https://shop.example/x\n"
    "B,Blue shoe,29.99 EUR,0,0,staging,https://shop.example/b\n"
)


class MemoryStore:
    def __init__(self, objects: dict[str, str] | None = None) -> None:
        self.objects = dict(objects or {})

    def open_source(self, key: str) -> IO[str] | None:
        if key not in self.objects:
            return None
        return io.StringIO(self.objects[key].removeprefix("\ufeff"))

    def write(self, key: str, fill: Callable[[IO[str]], None]) -> None:
        out = io.StringIO()
        fill(out)
        self.objects[key] = out.getvalue()

    def rows(self, key: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.objects[key])))


class BucketSkus(MemorySkus):
    def bucket_states(
        self, bucket: str, *, page_size: int = 2, start_key: dict | None = None
    ) -> Iterator[tuple[list[SkuState], dict | None]]:
        members = sorted((s for s in self.states.values() if s.bucket == bucket), key=lambda s: s.retailer_id)
        for start in range(0, len(members), page_size):
            yield members[start : start + page_size], None


def sku(rid: str, bucket: str, value: int | None, published: int = 1, confirmed: int = 0, **extra: object) -> SkuState:
    return SkuState(
        retailer_id=rid,
        bucket=bucket,
        published_value=value,
        published_version=published,
        confirmed_version=confirmed,
        published_at=T0,
        **extra,
    )


def exporter(store: MemoryStore, skus: BucketSkus, feed_buckets: set[str]) -> FeedExporter:
    return FeedExporter(
        store=store,
        skus=skus,
        confirmations=skus,
        feed_buckets=feed_buckets,
        catalog_field="quantity_to_sell_on_facebook",
        now=lambda: T0,
    )


def test_the_replace_feed_keeps_static_fields_and_drops_every_volatile_one() -> None:
    store = MemoryStore({SOURCE_KEY: SOURCE})
    report = exporter(store, BucketSkus(), set()).export()
    assert store.rows(REPLACE_FEED_KEY) == [
        {"id": "A", "title": "Red shoe", "price": "19.99 EUR", "link": "https://shop.example/a"},
        {"id": "B", "title": "Blue shoe", "price": "29.99 EUR", "link": "https://shop.example/b"},
    ]
    assert report.replace_rows == 2
    assert UPDATE_FEED_KEY not in store.objects  # no feed buckets: stock goes by the API only


def test_the_update_feed_carries_stock_of_feed_buckets_only_and_confirms_the_exported_versions() -> None:
    skus = BucketSkus(
        [
            sku("S1", "slow", 4, published=3, confirmed=2),
            sku("S2", "slow", 0, published=2, confirmed=2, published_visibility=Visibility.STAGING),
            sku("S3", "slow", None, published=0),
            sku("F1", "fast", 9),
        ]
    )
    store = MemoryStore()
    report = exporter(store, skus, {"slow"}).export()
    assert store.rows(UPDATE_FEED_KEY) == [
        {"id": "S1", "quantity_to_sell_on_facebook": "4", "visibility": "published"},
        {"id": "S2", "quantity_to_sell_on_facebook": "0", "visibility": "staging"},
    ]
    assert not report.replace_written  # no product master uploaded yet
    assert report.confirmed == 1
    assert (skus.states["S1"].confirmed_version, skus.states["S1"].confirmed_value) == (3, 4)
    assert skus.states["F1"].confirmed_version == 0


def test_a_product_master_without_an_id_column_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInputError) as error:
        replace_feed_columns(["sku", "title"])
    assert error.value.field == "source/products.csv: header"


@given(st.lists(st.tuples(st.sampled_from(["fast", "medium", "slow"]), st.integers(0, 20)), max_size=30))
def test_no_sku_has_its_stock_in_both_the_update_feed_and_the_api_path(members: list[tuple[str, int]]) -> None:
    states = [sku(f"S{i}", bucket, value) for i, (bucket, value) in enumerate(members)]
    skus = BucketSkus(states)
    master = "id,title,quantity_to_sell_on_facebook\n" + "".join(f"S{i},x,3\n" for i in range(len(states)))
    store = MemoryStore({SOURCE_KEY: master})
    exporter(store, skus, {"slow"}).export()
    in_feed = {row["id"] for row in store.rows(UPDATE_FEED_KEY)}
    pushes = [
        ReceivedPush(
            s.retailer_id,
            QueuedPush(retailer_id=s.retailer_id, value=1, version=2, visibility="published", computed_at=T0),
        )
        for s in states
    ]
    by_api = {p.retailer_id for p in select(pushes, {s.retailer_id: s for s in states}, {"slow"}).to_send}
    assert not in_feed & by_api
    assert all(not set(row) & VOLATILE_FIELDS for row in store.rows(REPLACE_FEED_KEY))
    assert in_feed | by_api == {s.retailer_id for s in states if s.bucket == "slow" or s.bucket != "slow"} - {
        s.retailer_id for s in states if s.bucket == "slow" and s.published_value is None
    }
