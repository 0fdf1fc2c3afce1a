"""The simulated platform's stock and order rules, through the Python API tests and the replay drive it with.

No HTTP here: the simulator is not started, so these run without sockets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stocksync_dev.simulator import CommercePlatformSimulator, OrderActionRefused, OrderRefused, UnknownOrderError

START = datetime(2026, 11, 1, 10, tzinfo=UTC)


@pytest.fixture
def sim() -> CommercePlatformSimulator:
    sim = CommercePlatformSimulator(start=START)
    sim.add_product("MUG", quantity=10, name="Mug", price="9.99 USD")
    sim.add_product("CUP", quantity=2, name="Cup", price="4.50 USD")
    return sim


def quantity(sim: CommercePlatformSimulator, retailer_id: str) -> int:
    return sim.catalog()[retailer_id]["quantity_to_sell_on_facebook"]


def test_an_order_decrements_the_platform_quantity_and_both_field_names_agree(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 3), ("CUP", 1)])

    catalog = sim.catalog()
    assert catalog["MUG"]["quantity_to_sell_on_facebook"] == 7
    assert catalog["MUG"]["inventory"] == 7
    assert catalog["CUP"]["quantity_to_sell_on_facebook"] == 1
    order = sim.orders()["o-1"]
    assert order["state"] == "FB_PROCESSING"
    assert order["created"] == order["last_updated"] == START


def test_an_order_for_more_than_is_left_is_refused_with_no_partial_effect(sim: CommercePlatformSimulator) -> None:
    with pytest.raises(OrderRefused) as refused:
        sim.place_order("o-1", [("MUG", 3), ("CUP", 3)])

    assert (refused.value.retailer_id, refused.value.requested, refused.value.available) == ("CUP", 3, 2)
    assert quantity(sim, "MUG") == 10
    assert sim.orders() == {}


def test_two_lines_of_one_product_count_together_against_the_stock(sim: CommercePlatformSimulator) -> None:
    with pytest.raises(OrderRefused):
        sim.place_order("o-1", [("CUP", 2), ("CUP", 1)])

    assert quantity(sim, "CUP") == 2


def test_staging_and_unknown_products_cannot_be_ordered(sim: CommercePlatformSimulator) -> None:
    sim.add_product("HIDDEN", quantity=5, visibility="staging")

    with pytest.raises(OrderRefused, match="staging"):
        sim.place_order("o-1", [("HIDDEN", 1)])
    with pytest.raises(OrderRefused, match="no such product"):
        sim.place_order("o-2", [("GHOST", 1)])
    assert quantity(sim, "HIDDEN") == 5


def test_a_sold_out_product_refuses_the_next_order(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("CUP", 2)])

    with pytest.raises(OrderRefused):
        sim.place_order("o-2", [("CUP", 1)])
    assert quantity(sim, "CUP") == 0


def test_duplicate_order_ids_and_bad_quantities_are_value_errors(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 1)])

    with pytest.raises(ValueError):
        sim.place_order("o-1", [("MUG", 1)])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            sim.place_order("o-2", [("MUG", bad)])  # type: ignore[list-item]
    assert quantity(sim, "MUG") == 9


def test_orders_move_forward_only_and_stamp_last_updated(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 1)])
    sim.advance(90)

    sim.move_order("o-1", "CREATED")

    order = sim.orders()["o-1"]
    assert order["state"] == "CREATED"
    assert order["last_updated"] == START + timedelta(seconds=90)
    assert order["created"] == START
    for backwards_or_same in ("FB_PROCESSING", "CREATED"):
        with pytest.raises(OrderActionRefused):
            sim.move_order("o-1", backwards_or_same)
    with pytest.raises(UnknownOrderError):
        sim.move_order("o-404", "CREATED")


def test_buyer_cancellations_always_restock(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 4)])

    sim.cancel_order("o-1", [("MUG", 1)], by="buyer", restock_items=False)

    assert quantity(sim, "MUG") == 7
    cancellation = sim.orders()["o-1"]["cancellations"][0]
    assert cancellation["restock_items"] is True
    assert cancellation["by"] == "buyer"


def test_seller_cancellations_restock_only_when_asked(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 4)], state="CREATED")

    sim.cancel_order("o-1", [("MUG", 1)], by="seller", reason_code="OUT_OF_STOCK")
    assert quantity(sim, "MUG") == 6
    sim.cancel_order("o-1", [("MUG", 2)], by="seller", restock_items=True, reason_code="OUT_OF_STOCK")
    assert quantity(sim, "MUG") == 8

    order = sim.orders()["o-1"]
    assert [c["restock_items"] for c in order["cancellations"]] == [False, True]
    assert order["items"][0]["cancelled_quantity"] == 3
    assert order["state"] == "CREATED"


def test_cancelling_everything_left_completes_the_order(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 2), ("CUP", 1)], state="IN_PROGRESS")
    sim.cancel_order("o-1", [("MUG", 1)])
    sim.advance(60)

    sim.cancel_order("o-1")

    order = sim.orders()["o-1"]
    assert order["state"] == "COMPLETED"
    assert order["cancellations"][1]["items"] == [
        {"retailer_id": "MUG", "quantity": 1},
        {"retailer_id": "CUP", "quantity": 1},
    ]
    assert order["last_updated"] == START + timedelta(seconds=60)
    assert quantity(sim, "MUG") == 10
    assert quantity(sim, "CUP") == 2


def test_cancelling_more_than_remains_changes_nothing(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 2), ("CUP", 1)], state="CREATED")

    with pytest.raises(OrderActionRefused):
        sim.cancel_order("o-1", [("MUG", 1), ("CUP", 2)], by="seller", restock_items=True)
    with pytest.raises(OrderActionRefused):
        sim.cancel_order("o-1", [("TEAPOT", 1)])

    order = sim.orders()["o-1"]
    assert order["cancellations"] == []
    assert quantity(sim, "MUG") == 8
    assert quantity(sim, "CUP") == 1


def test_a_completed_order_has_nothing_left_to_cancel(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 2)], state="IN_PROGRESS")
    sim.move_order("o-1", "COMPLETED")

    with pytest.raises(OrderActionRefused):
        sim.cancel_order("o-1")
    assert quantity(sim, "MUG") == 8


def test_catalog_and_orders_are_copies(sim: CommercePlatformSimulator) -> None:
    sim.place_order("o-1", [("MUG", 1)])

    sim.catalog()["MUG"]["quantity_to_sell_on_facebook"] = 999
    sim.orders()["o-1"]["items"][0]["quantity"] = 999

    assert quantity(sim, "MUG") == 9
    assert sim.orders()["o-1"]["items"][0]["quantity"] == 1


def test_add_product_validates_like_an_upload(sim: CommercePlatformSimulator) -> None:
    with pytest.raises(ValueError, match="quantity_to_sell_on_facebook"):
        sim.add_product("BAD", quantity=-1)
    with pytest.raises(ValueError, match="visibility"):
        sim.add_product("BAD", visibility="hidden")
    with pytest.raises(ValueError):
        sim.add_product("MUG", quantity=1)
    assert "BAD" not in sim.catalog()


def test_the_clock_is_utc_aware_and_only_moves_forward() -> None:
    sim = CommercePlatformSimulator(start=datetime(2026, 11, 1, 11, 30, tzinfo=UTC))

    assert sim.now().tzinfo is UTC
    assert sim.advance(30.5) == datetime(2026, 11, 1, 11, 30, 30, 500000, tzinfo=UTC)
    with pytest.raises(ValueError):
        sim.advance(-1)
    with pytest.raises(ValueError):
        CommercePlatformSimulator(start=datetime(2026, 11, 1))  # naive
