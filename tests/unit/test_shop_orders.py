"""Web shop orders into ledger sightings: SKU mapping, merged lines, unplaced lines reported, platform restocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stocksync.logic.shop_orders import IdentityMapping, ShopLine, ShopOrder, TableMapping, sighting
from stocksync.models.orders import OrderLine, OrderSource, OrderState

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)


def order(*lines: ShopLine, channel: str = "web", updated_at: datetime = T0) -> ShopOrder:
    return ShopOrder("shop:1001", OrderState.CREATED, lines, updated_at=updated_at, placed_at=T0, channel=channel)


def test_lines_of_one_catalog_item_merge_and_the_sighting_is_dated_by_its_content() -> None:
    result = sighting(
        order(ShopLine("l1", "A", 2), ShopLine("l2", "A", 1, cancelled=1), ShopLine("l3", "B", 4)),
        IdentityMapping(),
        observed_at=T0 + timedelta(minutes=5),
    )
    observation = result.observation
    assert observation.lines == (
        OrderLine(retailer_id="A", quantity=3, cancelled=1),
        OrderLine(retailer_id="B", quantity=4),
    )
    assert (observation.source, observation.observed_at, observation.sold_on_platform) == (
        OrderSource.EVENTS,
        T0,
        False,
    )
    assert result.unplaced == []


def test_a_line_without_sku_or_with_an_unmapped_one_is_reported_and_the_rest_kept() -> None:
    mapping = TableMapping({"shop-a": "A"})
    result = sighting(
        order(ShopLine("l1", "shop-a", 2), ShopLine("l2", None, 1), ShopLine("l3", "shop-z", 1)),
        mapping,
        observed_at=T0,
    )
    assert result.observation.lines == (OrderLine(retailer_id="A", quantity=2),)
    assert [(u.order_id, u.line_ref, u.sku, u.reason) for u in result.unplaced] == [
        ("shop:1001", "l2", None, "line item has no SKU"),
        ("shop:1001", "l3", "shop-z", "SKU not in the SKU mapping"),
    ]


def test_a_mapping_may_fall_back_to_the_shops_own_sku() -> None:
    mapping = TableMapping({"shop-a": "A"}, fallback_to_identity=True)
    assert (mapping.retailer_id("shop-a"), mapping.retailer_id("B")) == ("A", "B")


def test_only_the_platforms_own_orders_carry_restocks() -> None:
    line = ShopLine("l1", "A", 3, cancelled=2, restocked=2)
    assert sighting(order(line), IdentityMapping(), observed_at=T0).observation.lines[0].restocked == 0
    instagram = sighting(order(line, channel="Instagram"), IdentityMapping(), observed_at=T0).observation
    assert instagram.sold_on_platform and instagram.lines[0].restocked == 2
