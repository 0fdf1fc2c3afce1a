"""Shopify's EventBridge webhooks at the edge: the checks, the state mapping (docs/connectors.md, "Shopify"), and
deliveries in any order and any number of times landing in the ledger as the newest one says."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stocksync.errors import InvalidInputError
from stocksync.integrations.shopify import parse_delivery
from stocksync.integrations.sqs_batch import rejection_reason
from stocksync.logic.order_ingest import OrderIngest
from stocksync.logic.shop_orders import IdentityMapping, sighting
from stocksync.models.orders import OrderState
from tests.fakes.ledger import InMemoryLedger

EVENTS = Path(__file__).resolve().parents[2] / "events"
T0 = datetime(2026, 11, 23, 9, 58, tzinfo=UTC)


def sample() -> dict[str, Any]:
    return json.loads((EVENTS / "shopify_orders_create.json").read_text())


def webhook(topic: str, payload: dict[str, Any], *, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") -> str:
    event = sample()
    event["detail"]["metadata"]["X-Shopify-Topic"] = topic
    event["detail"]["metadata"]["X-Shopify-Webhook-Id"] = webhook_id
    event["detail"]["payload"] = payload
    return json.dumps(event)


def order_payload(
    *lines: tuple[str | None, int, int | None],
    financial: str | None = "paid",
    fulfillment: str | None = None,
    cancelled_at: str | None = None,
    updated_at: datetime = T0,
    order_id: int = 5904326025302,
) -> dict[str, Any]:
    """A REST order payload; each line is (sku, quantity, current_quantity)."""
    return {
        "id": order_id,
        "created_at": T0.isoformat(),
        "updated_at": updated_at.isoformat(),
        "cancelled_at": cancelled_at,
        "financial_status": financial,
        "fulfillment_status": fulfillment,
        "source_name": "web",
        "line_items": [
            {"id": 1000 + index, "sku": sku, "quantity": quantity, "current_quantity": current}
            for index, (sku, quantity, current) in enumerate(lines)
        ],
    }


def reason(body: str) -> str:
    with pytest.raises((ValidationError, InvalidInputError)) as caught:
        parse_delivery(body)
    found = rejection_reason(caught.value)
    assert found is not None
    return found


# ------------------------------------------------------------------ the edge
def test_the_shipped_sample_is_an_order_namespaced_by_shopify_with_its_headers() -> None:
    delivery = parse_delivery(json.dumps(sample()))
    assert (delivery.topic, delivery.webhook_id, delivery.shop_domain) == (
        "orders/create",
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "mugs-and-more.myshopify.com",
    )
    order = delivery.order
    assert order is not None and order.order_id == delivery.order_id == "shopify:5904326025302"
    assert order.state is OrderState.CREATED and order.channel == "shopify"
    assert [(line.line_ref, line.sku, line.quantity, line.cancelled) for line in order.lines] == [
        ("14371844292694", "MUG-RED", 2, 0),
        ("14371844325462", "MUG-BLUE", 1, 0),
    ]
    assert order.updated_at == datetime(2026, 11, 23, 9, 58, 4, tzinfo=UTC)
    assert order.placed_at == datetime(2026, 11, 23, 9, 58, 2, tzinfo=UTC)


def test_ids_given_as_strings_of_digits_are_the_same_ids() -> None:
    payload = order_payload(("A", 1, 1))
    payload["id"] = "5904326025302"
    payload["line_items"][0]["id"] = "1000"
    delivery = parse_delivery(webhook("orders/updated", payload))
    assert delivery.order is not None and delivery.order.order_id == "shopify:5904326025302"
    assert delivery.order.lines[0].line_ref == "1000"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["line_items"][0].update(quantity=0), "detail.payload.line_items.0.quantity"),
        (lambda p: p["line_items"][0].update(quantity=2_000_000), "detail.payload.line_items.0.quantity"),
        (lambda p: p["line_items"][0].update(quantity="2"), "detail.payload.line_items.0.quantity"),
        (lambda p: p["line_items"][0].update(current_quantity=5), "detail.payload.line_items.0"),
        (lambda p: p["line_items"][0].update(sku="MUG\nRED"), "detail.payload.line_items.0.sku"),
        (lambda p: p["line_items"][0].update(id=True), "detail.payload.line_items.0.id"),
        (lambda p: p.update(id="59043-26025302"), "detail.payload.id"),
        (lambda p: p.update(updated_at="2026-11-23T10:00:00"), "detail.payload.updated_at"),
        (lambda p: p.update(financial_status="Paid\x00"), "detail.payload.financial_status"),
        (lambda p: p.pop("line_items"), "detail.payload.line_items"),
    ],
)
def test_a_bad_payload_is_refused_naming_the_field(change: Any, field: str) -> None:
    payload = order_payload(("A", 1, 1))
    change(payload)
    assert reason(webhook("orders/create", payload)).startswith(f"{field}:")


def test_a_bad_envelope_is_refused_naming_the_field() -> None:
    event = sample()
    event["detail"]["metadata"]["X-Shopify-Topic"] = "products/update"
    assert reason(json.dumps(event)).startswith("detail.metadata.X-Shopify-Topic:")
    event = sample()
    event["detail-type"] = "Order Changed"
    assert reason(json.dumps(event)).startswith("detail-type:")
    event = sample()
    del event["detail"]["metadata"]["X-Shopify-Webhook-Id"]
    assert reason(json.dumps(event)).startswith("detail.metadata.X-Shopify-Webhook-Id:")
    event = sample()
    event["source"] = "com.example.webshop"
    assert reason(json.dumps(event)).startswith("source:")
    # Every sender-stamped time is bounded like an order's, the headers' too (docs/design.md, "Bounds at the edges").
    event = sample()
    event["detail"]["metadata"]["X-Shopify-Triggered-At"] = "2099-01-01T00:00:00+00:00"
    assert "in the future" in reason(json.dumps(event))
    assert reason(json.dumps(event)).startswith("detail.metadata.X-Shopify-Triggered-At:")


def test_a_refund_or_edit_dated_in_the_future_is_refused_naming_the_field() -> None:
    refund = {"id": 1, "order_id": 5904326025302, "created_at": "2099-01-01T00:00:00+00:00"}
    assert reason(webhook("refunds/create", refund)).startswith("detail.payload.created_at:")
    edit = {"order_edit": {"id": 2, "order_id": 5904326025302, "created_at": T0.isoformat()}}
    edit["order_edit"]["committed_at"] = "2099-01-01T00:00:00+00:00"
    assert reason(webhook("orders/edited", edit)).startswith("detail.payload.order_edit.committed_at:")


def test_a_blank_sku_is_no_sku_and_its_line_is_reported_not_dropped() -> None:
    delivery = parse_delivery(webhook("orders/create", order_payload(("A", 2, 2), ("  ", 1, 1), (None, 1, 1))))
    assert delivery.order is not None
    seen = sighting(delivery.order, IdentityMapping(), observed_at=T0 + timedelta(minutes=1))
    assert [(line.retailer_id, line.quantity) for line in seen.observation.lines] == [("A", 2)]
    assert [(line.order_id, line.line_ref, line.reason) for line in seen.unplaced] == [
        ("shopify:5904326025302", "1001", "line item has no SKU"),
        ("shopify:5904326025302", "1002", "line item has no SKU"),
    ]


# ------------------------------------------------------------------ the state mapping
@pytest.mark.parametrize(
    ("financial", "fulfillment", "cancelled_at", "state"),
    [
        ("pending", None, None, OrderState.FB_PROCESSING),
        ("authorized", None, None, OrderState.FB_PROCESSING),
        ("paid", None, None, OrderState.CREATED),
        ("partially_paid", None, None, OrderState.CREATED),
        ("partially_refunded", None, None, OrderState.CREATED),
        ("refunded", None, None, OrderState.CREATED),
        ("voided", None, None, OrderState.CREATED),
        (None, None, None, OrderState.CREATED),
        ("paid", "partial", None, OrderState.CREATED),  # unshipped units stay counted (K is not subtracted)
        ("authorized", "partial", None, OrderState.FB_PROCESSING),
        ("paid", "fulfilled", None, OrderState.COMPLETED),
        ("paid", "restocked", None, OrderState.COMPLETED),
        ("pending", None, "2026-11-23T11:00:00+01:00", OrderState.COMPLETED),
        ("voided", None, "2026-11-23T11:00:00+01:00", OrderState.COMPLETED),
    ],
)
def test_each_status_maps_onto_the_products_state(
    financial: str | None, fulfillment: str | None, cancelled_at: str | None, state: OrderState
) -> None:
    payload = order_payload(("A", 2, 2), financial=financial, fulfillment=fulfillment, cancelled_at=cancelled_at)
    delivery = parse_delivery(webhook("orders/updated", payload))
    assert delivery.order is not None and delivery.order.state is state


def test_a_cancelled_order_cancels_every_unit_whatever_its_current_quantities() -> None:
    payload = order_payload(("A", 3, 2), ("B", 1, 1), cancelled_at="2026-11-23T11:00:00+01:00")
    delivery = parse_delivery(webhook("orders/cancelled", payload))
    assert delivery.order is not None
    assert [(line.quantity, line.cancelled) for line in delivery.order.lines] == [(3, 3), (1, 1)]


def test_an_edit_or_refund_that_removed_units_cancels_them_and_nothing_else() -> None:
    delivery = parse_delivery(webhook("orders/updated", order_payload(("A", 5, 3), ("B", 2, 0), ("C", 1, None))))
    assert delivery.order is not None
    assert [(line.sku, line.quantity, line.cancelled) for line in delivery.order.lines] == [
        ("A", 5, 2),
        ("B", 2, 2),
        ("C", 1, 0),  # an older API version without current_quantity: nothing known removed
    ]


def test_a_refund_and_an_order_edit_are_checked_and_noted_not_applied() -> None:
    refund = {
        "id": 996953686102,
        "order_id": 5904326025302,
        "created_at": "2026-11-23T12:10:40+01:00",
        "refund_line_items": [
            {"id": 1, "line_item_id": 1000, "quantity": 1, "restock_type": "cancel"},
            {"id": 2, "line_item_id": 1001, "quantity": 2, "restock_type": "return"},
        ],
    }
    delivery = parse_delivery(webhook("refunds/create", refund))
    assert (delivery.order, delivery.order_id) == (None, "shopify:5904326025302")
    assert "restock ['cancel', 'return']" in delivery.note
    refund["refund_line_items"][0]["restock_type"] = "maybe"
    assert reason(webhook("refunds/create", refund)).startswith("detail.payload.refund_line_items.0.restock_type:")

    edit = {
        "order_edit": {
            "id": 78,
            "order_id": 5904326025302,
            "created_at": "2026-11-23T12:00:00+01:00",
            "committed_at": "2026-11-23T12:00:05+01:00",
            "line_items": {"additions": [{"id": 1003, "delta": 1}], "removals": [{"id": 1000, "delta": 1}]},
        }
    }
    delivery = parse_delivery(webhook("orders/edited", edit))
    assert delivery.order is None and delivery.order_id == "shopify:5904326025302"
    assert "1 addition(s), 1 removal(s)" in delivery.note


def test_a_250_line_order_maps_every_line() -> None:
    lines = [(f"SKU-{index:03d}", 1 + index % 3, 1 + index % 3) for index in range(250)]
    delivery = parse_delivery(webhook("orders/create", order_payload(*lines)))
    assert delivery.order is not None and len(delivery.order.lines) == 250
    seen = sighting(delivery.order, IdentityMapping(), observed_at=T0 + timedelta(minutes=1))
    assert len(seen.observation.lines) == 250 and seen.unplaced == []
    assert sum(line.quantity for line in seen.observation.lines) == sum(quantity for _, quantity, _ in lines)


# ------------------------------------------------------------------ repeats and out-of-order deliveries
def lifecycle(removed: int, end: str) -> list[dict[str, Any]]:
    """The deliveries of one order, oldest first: created pending, paid, ``removed`` units of A refunded, then
    fulfilled, cancelled or left open."""
    payloads = [
        order_payload(("A", 4, 4), ("B", 2, 2), financial="pending", updated_at=T0),
        order_payload(("A", 4, 4), ("B", 2, 2), financial="paid", updated_at=T0 + timedelta(minutes=1)),
        order_payload(
            ("A", 4, 4 - removed), ("B", 2, 2), financial="partially_refunded", updated_at=T0 + timedelta(minutes=2)
        ),
    ]
    if end == "fulfilled":
        payloads.append(copy.deepcopy(payloads[-1]) | {"fulfillment_status": "fulfilled"})
    elif end == "cancelled":
        payloads.append(copy.deepcopy(payloads[-1]) | {"cancelled_at": (T0 + timedelta(minutes=3)).isoformat()})
    if len(payloads) == 4:
        payloads[-1]["updated_at"] = (T0 + timedelta(minutes=3)).isoformat()
    return payloads


def apply_all(payloads: list[dict[str, Any]]) -> InMemoryLedger:
    ledger = InMemoryLedger()
    for index, payload in enumerate(payloads):
        delivery = parse_delivery(webhook("orders/updated", payload, webhook_id=f"w-{index}"))
        assert delivery.order is not None
        seen = sighting(delivery.order, IdentityMapping(), observed_at=T0 + timedelta(hours=1))
        receipt = OrderIngest(ledger, now=T0 + timedelta(hours=1)).apply([seen.observation])
        assert receipt.rejected == []
    return ledger


def counters(ledger: InMemoryLedger) -> dict[str, tuple[int, int, int]]:
    return {sku: (c["processing"], c["created"], c["acknowledged"]) for sku, c in ledger.counters.items()}


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("open", {"A": (0, 3, 0), "B": (0, 2, 0)}),
        ("fulfilled", {"A": (0, 0, 0), "B": (0, 0, 0)}),
        ("cancelled", {"A": (0, 0, 0), "B": (0, 0, 0)}),
    ],
)
def test_in_order_deliveries_count_each_path_exactly(end: str, expected: dict[str, tuple[int, int, int]]) -> None:
    ledger = apply_all(lifecycle(1, end))
    assert counters(ledger) == expected
    assert dict(ledger.sold) == {"A": 4, "B": 2}  # ordered units counted once, for velocity


@settings(max_examples=60, deadline=None)
@given(
    removed=st.integers(min_value=0, max_value=4),
    end=st.sampled_from(["open", "fulfilled", "cancelled"]),
    data=st.data(),
)
def test_any_order_and_any_repeats_of_the_deliveries_end_where_the_newest_says(
    removed: int, end: str, data: st.DataObject
) -> None:
    payloads = lifecycle(removed, end)
    deliveries = data.draw(st.lists(st.sampled_from(payloads), min_size=1, max_size=12))
    deliveries = data.draw(st.permutations([*deliveries, payloads[-1]]))  # the newest arrives at some point
    assert counters(apply_all(deliveries)) == counters(apply_all(payloads))
