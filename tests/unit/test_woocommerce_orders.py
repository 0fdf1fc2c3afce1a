"""WooCommerce and generic webhook payloads -> ShopOrder -> the ledger (an in-memory one): every status, refunds
and cancellations, duplicates and out-of-order deliveries with exact counts, lines without SKU, a 250-line order."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stocksync.errors import InvalidInputError
from stocksync.integrations import shopify
from stocksync.integrations.woocommerce import (
    WOOCOMMERCE_STATES,
    generic_order,
    parse_delivery,
    woocommerce_order,
)
from stocksync.logic.order_ingest import OrderIngest
from stocksync.logic.shop_orders import IdentityMapping, sighting
from stocksync.models.orders import OrderState
from stocksync.models.webhooks import INLINE_BODY_BYTES, WebhookDelivery
from tests.fakes.ledger import InMemoryLedger

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def woo(status: str, *, modified: datetime = T0, lines: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    return {
        "id": 727,
        "status": status,
        "date_created_gmt": "2026-12-04T09:55:00",
        "date_modified_gmt": modified.replace(tzinfo=None).isoformat(),
        "line_items": lines
        if lines is not None
        else [
            {"id": 315, "name": "Mug", "sku": "MUG-1", "quantity": 2, "total": "20.00"},
            {"id": 316, "name": "Cap", "sku": "CAP-1", "quantity": 1, "total": "15.00"},
        ],
        "refunds": [],
        "billing": {"email": "buyer@example.com"},
        **extra,
    }


def apply(ledger: InMemoryLedger, *payloads: dict) -> list[Any]:
    receipts = []
    for payload in payloads:
        order = woocommerce_order(payload)
        assert order is not None
        shop = sighting(order, IdentityMapping(), observed_at=NOW)
        receipts.append(OrderIngest(ledger, now=NOW).apply([shop.observation]))
    return receipts


def counters(ledger: InMemoryLedger, sku: str) -> dict[str, int]:
    return dict(ledger.counters[sku])


# ------------------------------------------------------------------ each status
@pytest.mark.parametrize(
    ("status", "processing", "created", "cancelled"),
    [
        ("pending", 2, 0, 0),
        ("on-hold", 0, 2, 0),
        ("processing", 0, 2, 0),
        ("completed", 0, 0, 0),
        ("cancelled", 0, 0, 2),
        ("refunded", 0, 0, 2),
        ("failed", 0, 0, 2),
    ],
)
def test_each_woocommerce_status_maps_onto_the_state_model(
    status: str, processing: int, created: int, cancelled: int
) -> None:
    order = woocommerce_order(woo(status))
    assert order is not None
    assert order.order_id == "woocommerce:727"
    assert order.state is WOOCOMMERCE_STATES[status].state
    assert order.updated_at == T0 and order.placed_at == datetime(2026, 12, 4, 9, 55, tzinfo=UTC)
    assert [line.cancelled for line in order.lines] == [cancelled, cancelled // 2]
    ledger = InMemoryLedger()
    apply(ledger, woo(status))
    assert counters(ledger, "MUG-1") == {"processing": processing, "created": created, "acknowledged": 0}
    assert ledger.sold["MUG-1"] == 2  # the order was placed, whatever became of it


def test_every_documented_status_has_a_mapping() -> None:
    assert set(WOOCOMMERCE_STATES) == {
        "pending",
        "on-hold",
        "processing",
        "completed",
        "cancelled",
        "refunded",
        "failed",
    }


@pytest.mark.parametrize("status", ["cancelled", "refunded", "failed"])
def test_cancel_and_refund_release_the_units_a_processing_order_held(status: str) -> None:
    ledger = InMemoryLedger()
    apply(ledger, woo("processing"), woo(status, modified=T0 + timedelta(minutes=5)))
    assert counters(ledger, "MUG-1") == {"processing": 0, "created": 0, "acknowledged": 0}
    assert counters(ledger, "CAP-1") == {"processing": 0, "created": 0, "acknowledged": 0}
    row = ledger.rows[("woocommerce:727", 0)]
    assert row.state is OrderState.COMPLETED
    assert row.lines["MUG-1"].cancelled == 2
    assert row.lines["MUG-1"].restocked == 0  # web orders never touched the platform's copy


def test_pending_then_paid_moves_units_from_p_to_c() -> None:
    ledger = InMemoryLedger()
    apply(ledger, woo("pending"))
    assert counters(ledger, "MUG-1")["processing"] == 2
    apply(ledger, woo("processing", modified=T0 + timedelta(minutes=1)))
    assert counters(ledger, "MUG-1") == {"processing": 0, "created": 2, "acknowledged": 0}
    assert ledger.sold["MUG-1"] == 2


def test_a_partial_refund_on_a_processing_order_changes_nothing() -> None:
    ledger = InMemoryLedger()
    refunds = [{"id": 726, "reason": "", "total": "-10.00"}]
    apply(ledger, woo("processing"), woo("processing", modified=T0 + timedelta(minutes=3), refunds=refunds))
    assert counters(ledger, "MUG-1")["created"] == 2


def test_an_unknown_status_is_bad_input_naming_the_order_and_status() -> None:
    with pytest.raises(InvalidInputError, match=r"woocommerce:727.*'wc-custom'"):
        woocommerce_order(woo("wc-custom"))


def test_a_draft_is_not_an_order_yet() -> None:
    assert woocommerce_order(woo("checkout-draft")) is None


# ------------------------------------------------------------------ duplicates and out of order
def test_a_duplicate_delivery_changes_nothing() -> None:
    ledger = InMemoryLedger()
    first, second = apply(ledger, woo("processing"), woo("processing"))
    assert first.applied == 1 and second.unchanged == 1 and not second.changed_skus
    assert counters(ledger, "MUG-1")["created"] == 2
    assert ledger.sold["MUG-1"] == 2


def test_an_older_delivery_never_undoes_a_newer_one_in_any_arrival_order() -> None:
    history = [
        woo("pending", modified=T0),
        woo("processing", modified=T0 + timedelta(minutes=1)),
        woo("cancelled", modified=T0 + timedelta(minutes=2)),
    ]
    for arrival in itertools.permutations(history):
        ledger = InMemoryLedger()
        apply(ledger, *arrival, *arrival)  # and every delivery twice
        assert counters(ledger, "MUG-1") == {"processing": 0, "created": 0, "acknowledged": 0}, arrival
        assert ledger.sold["MUG-1"] == 2
        assert ledger.rows[("woocommerce:727", 0)].lines["MUG-1"].cancelled == 2


def test_completed_after_processing_out_of_order_keeps_the_order_closed() -> None:
    ledger = InMemoryLedger()
    apply(ledger, woo("completed", modified=T0 + timedelta(minutes=9)), woo("processing", modified=T0))
    assert counters(ledger, "MUG-1") == {"processing": 0, "created": 0, "acknowledged": 0}
    assert ledger.sold["MUG-1"] == 2


# ------------------------------------------------------------------ lines
def test_a_line_without_sku_is_unplaced_and_the_rest_applies() -> None:
    lines = [{"id": 1, "sku": "", "quantity": 1}, {"id": 2, "sku": "MUG-1", "quantity": 3}]
    order = woocommerce_order(woo("processing", lines=lines))
    assert order is not None
    shop = sighting(order, IdentityMapping(), observed_at=NOW)
    assert [(u.order_id, u.line_ref, u.reason) for u in shop.unplaced] == [
        ("woocommerce:727", "1", "line item has no SKU")
    ]
    ledger = InMemoryLedger()
    OrderIngest(ledger, now=NOW).apply([shop.observation])
    assert counters(ledger, "MUG-1")["created"] == 3


def test_a_250_line_order_is_counted_line_for_line() -> None:
    lines = [{"id": 1000 + n, "sku": f"SKU-{n:03d}", "quantity": 1 + n % 3} for n in range(250)]
    ledger = InMemoryLedger()
    apply(ledger, woo("processing", lines=lines))
    for n in range(250):
        assert counters(ledger, f"SKU-{n:03d}")["created"] == 1 + n % 3
    apply(ledger, woo("cancelled", modified=T0 + timedelta(minutes=1), lines=lines))
    assert all(counters(ledger, f"SKU-{n:03d}")["created"] == 0 for n in range(250))
    assert sum(ledger.sold.values()) == sum(1 + n % 3 for n in range(250))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": 0}, "id"),
        ({"id": "727"}, "id"),
        ({"date_modified_gmt": None}, "date_modified_gmt"),
        ({"date_modified_gmt": "yesterday"}, "date_modified_gmt"),
        ({"status": "proc\nessing"}, "status"),
        ({"line_items": [{"id": 1, "sku": "A\x00B", "quantity": 1}]}, "line_items.0.sku"),
        ({"line_items": [{"id": 1, "sku": "A", "quantity": 0}]}, "line_items.0.quantity"),
        ({"line_items": [{"id": 1, "sku": "A", "quantity": 10**9}]}, "line_items.0.quantity"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        woocommerce_order({**woo("processing"), **change})
    assert field in {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


def test_an_aware_modified_time_is_kept() -> None:
    order = woocommerce_order({**woo("processing"), "date_modified_gmt": "2026-12-04T10:00:00+01:00"})
    assert order is not None and order.updated_at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


# ------------------------------------------------------------------ generic shape
def generic(**change: Any) -> dict[str, Any]:
    return {
        "order_id": "ERP-42",
        "state": "placed",
        "channel": "web",
        "updated_at": "2026-12-04T10:00:00Z",
        "placed_at": "2026-12-04T09:59:00Z",
        "lines": [{"line_ref": "1", "sku": "MUG-1", "quantity": 2}],
        **change,
    }


def test_the_generic_shape_maps_like_an_order_event() -> None:
    order = generic_order(generic())
    assert order.order_id == "generic:ERP-42" and order.state is OrderState.CREATED
    cancelled = generic_order(generic(state="cancelled"))
    assert cancelled.state is OrderState.COMPLETED and cancelled.lines[0].cancelled == 2
    partial = generic_order(
        generic(state="accepted", lines=[{"line_ref": "1", "sku": "M", "quantity": 3, "cancelled": 1}])
    )
    assert partial.state is OrderState.IN_PROGRESS and partial.lines[0].cancelled == 1


def test_the_generic_shape_refuses_naive_times_unknown_fields_and_impossible_counts() -> None:
    with pytest.raises(ValidationError, match="updated_at"):
        generic_order(generic(updated_at="2026-12-04T10:00:00"))
    with pytest.raises(ValidationError, match="colour"):
        generic_order(generic(colour="red"))
    with pytest.raises(InvalidInputError, match="ERP-42 line 1"):
        generic_order(generic(lines=[{"line_ref": "1", "sku": "M", "quantity": 1, "cancelled": 2}]))
    with pytest.raises(InvalidInputError, match="'lost'"):
        generic_order(generic(state="lost"))


# ------------------------------------------------------------------ queued deliveries
def delivery(platform: str, body: Any, topic: str | None = "order.updated") -> WebhookDelivery:
    raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    return WebhookDelivery.of(platform=platform, delivery_id="d-1", topic=topic, received_at=NOW, raw=raw)


def test_a_large_body_is_queued_compressed_and_read_back_unchanged() -> None:
    lines = [
        {"id": n + 1, "sku": f"SKU-{n:03d}", "quantity": 1, "name": "x" * 400, "meta_data": []} for n in range(250)
    ]
    body = json.dumps(woo("processing", lines=lines))
    assert len(body) > INLINE_BODY_BYTES
    queued = delivery("woocommerce", body)
    assert queued.body is None and queued.body_zlib_base64 is not None
    assert len(queued.model_dump_json()) < 200_000
    assert WebhookDelivery.model_validate_json(queued.model_dump_json()).text() == body
    parsed = parse_delivery(queued)
    assert parsed.order is not None and len(parsed.order.lines) == 250


def test_deliveries_that_carry_nothing_to_apply_say_why() -> None:
    deleted = parse_delivery(delivery("woocommerce", {"id": 727}, topic="order.deleted"))
    assert deleted.order is None and "woocommerce:727 deleted" in (deleted.skipped or "")
    product = parse_delivery(delivery("woocommerce", {"id": 5}, topic="product.updated"))
    assert product.order is None and "not an order topic" in (product.skipped or "")


def test_undecodable_or_unparsed_deliveries_are_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="body: not valid JSON"):
        parse_delivery(delivery("woocommerce", "webhook_id=12"))
    with pytest.raises(InvalidInputError, match=r"detail\.payload"):
        parse_delivery(delivery("shopify", {"id": 1}, topic="orders/updated"))  # no line items, no times
    with pytest.raises(ValidationError, match="exactly one"):
        WebhookDelivery.model_validate({"platform": "generic", "delivery_id": "d", "received_at": NOW.isoformat()})
    with pytest.raises(ValidationError, match="delivery_id"):
        WebhookDelivery.of(platform="generic", delivery_id="d\n1", topic=None, received_at=NOW, raw=b"{}")


def test_a_shopify_https_delivery_is_parsed_like_its_eventbridge_twin() -> None:
    """The same order payload, signed over HTTPS instead of routed through EventBridge: the same ShopOrder."""
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "shopify_orders_create.json").read_text())
    from_bus = shopify.parse_delivery(json.dumps(event))
    over_https = parse_delivery(delivery("shopify", event["detail"]["payload"], topic="orders/create"))
    assert over_https.order is not None and over_https.order == from_bus.order
    refund = parse_delivery(delivery("shopify", {"id": 9}, topic="refunds/create"))
    assert refund.order is None and "carries no whole order" in (refund.skipped or "")
