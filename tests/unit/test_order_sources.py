"""Both order sources produce the same sightings; bad records fail naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from stocksync.errors import InvalidInputError, SourceCursorRejectedError, describe_validation_error
from stocksync.integrations.order_sources import (
    MetaCommerceOrders,
    merchant_order_event,
    observation_from_commerce_order,
)
from stocksync.models.graph import CommerceOrder, CommerceOrderPage
from stocksync.models.graph_errors import GraphValidationError
from stocksync.models.orders import OrderSource, OrderState

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def commerce_order(**overrides: Any) -> CommerceOrder:
    raw: dict[str, Any] = {
        "id": "368500000000001",
        "order_status": {"state": "CREATED"},
        "created": "2026-11-23T10:00:00+0000",
        "last_updated": "2026-11-23T11:00:00+0000",
        "items": {
            "data": [
                {"id": "l1", "retailer_id": "SKU-1", "quantity": 2},
                {"id": "l2", "retailer_id": "SKU-1", "quantity": 1},
                {"id": "l3", "retailer_id": "SKU-2", "quantity": 4},
            ]
        },
        "cancellations": {
            "data": [
                {"id": "c1", "items": {"data": [{"retailer_id": "SKU-2", "quantity": 1}]}, "restock_items": True},
                {"id": "c2", "items": {"data": [{"retailer_id": "SKU-2", "quantity": 2}]}, "restock_items": False},
            ]
        },
    }
    raw.update(overrides)
    return CommerceOrder.model_validate(raw)


def test_a_commerce_order_sums_lines_and_cancellations_per_sku() -> None:
    sighting = observation_from_commerce_order(commerce_order(), observed_at=NOW)
    assert sighting.source is OrderSource.META_COMMERCE and sighting.sold_on_platform
    assert sighting.state is OrderState.CREATED
    lines = {line.retailer_id: line for line in sighting.lines}
    assert (lines["SKU-1"].quantity, lines["SKU-1"].cancelled) == (3, 0)
    assert (lines["SKU-2"].quantity, lines["SKU-2"].cancelled, lines["SKU-2"].restocked) == (4, 3, 1)
    assert sighting.placed_at == datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_cancelling_more_than_was_ordered_names_the_sku() -> None:
    too_many = {
        "data": [{"id": "c1", "items": {"data": [{"retailer_id": "SKU-1", "quantity": 9}]}, "restock_items": False}]
    }
    with pytest.raises(InvalidInputError) as caught:
        observation_from_commerce_order(commerce_order(cancellations=too_many), observed_at=NOW)
    assert caught.value.field == "cancellations[SKU-1].quantity"


def test_a_merchant_event_maps_the_merchants_vocabulary_onto_the_state_model() -> None:
    detail = {
        "order_id": "web-1001",
        "state": "placed",
        "channel": "webshop",
        "items": [{"retailer_id": "SKU-1", "quantity": 2, "cancelled": 1}],
        "occurred_at": "2026-11-23T10:00:00Z",
    }
    sighting = merchant_order_event(detail, observed_at=NOW)
    assert sighting.source is OrderSource.EVENTS and sighting.state is OrderState.CREATED
    assert not sighting.sold_on_platform and sighting.lines[0].restocked == 0
    assert merchant_order_event({**detail, "state": "IN_PROGRESS"}, observed_at=NOW).state is OrderState.IN_PROGRESS
    instagram = merchant_order_event({**detail, "channel": "instagram"}, observed_at=NOW)
    assert instagram.sold_on_platform and instagram.lines[0].restocked == 1


def test_a_merchant_event_is_dated_when_its_content_was_true_not_when_it_was_processed() -> None:
    # A restock the next event shows happened after this content: dating it by processing time would place the
    # restock later than it was, after a push that in fact erased it.
    detail = {
        "order_id": "fb-1",
        "state": "placed",
        "channel": "facebook",
        "items": [{"retailer_id": "SKU-1", "quantity": 2}],
        "occurred_at": "2026-11-23T09:00:00Z",
    }
    late = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    assert merchant_order_event(detail, observed_at=late).observed_at == datetime(2026, 11, 23, 9, tzinfo=UTC)
    # A sender's clock ahead of ours never dates the content after we saw it.
    ahead = {**detail, "occurred_at": "2026-11-23T09:10:00Z"}
    assert merchant_order_event(ahead, observed_at=late).observed_at == late


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"state": "SHIPPED_TO_MARS"}, "state"),
        ({"order_id": ""}, "order_id"),
        ({"items": [{"retailer_id": "SKU-1", "quantity": -1}]}, "items.0.quantity"),
        ({"items": [{"retailer_id": "SKU-1", "quantity": "2"}]}, "items.0.quantity"),
        ({"items": [{"retailer_id": "SKU-1", "quantity": 1.5}]}, "items.0.quantity"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_a_bad_merchant_event_names_the_field(change: dict[str, Any], field: str) -> None:
    detail = {"order_id": "web-1", "state": "pending", "channel": "webshop", "occurred_at": "2026-11-23T10:00:00Z"}
    with pytest.raises(ValidationError) as caught:
        merchant_order_event({**detail, **change}, observed_at=NOW)
    assert describe_validation_error(caught.value).startswith(f"{field}:")


class RefusingClient:
    """Serves some pages, then refuses the request the way Graph refuses a bad parameter (code 100 by default)."""

    def __init__(self, *, pages_before_refusal: int, code: int = 100) -> None:
        self.pages_before_refusal = pages_before_refusal
        self.code = code

    def list_commerce_orders(self, cms_id: str, **kwargs: Any) -> Any:
        for _ in range(self.pages_before_refusal):
            yield CommerceOrderPage(orders=[commerce_order()], rejected=[], after="next", has_next=True)
        raise GraphValidationError(f"(#{self.code}) refused", code=self.code, http_status=400)


def read_all(source: MetaCommerceOrders, after: str | None) -> list[Any]:
    return list(source.pages(updated_after=NOW, after=after, observed_at=NOW))


def test_a_refused_first_page_of_a_resumed_listing_is_a_rejected_cursor() -> None:
    with pytest.raises(SourceCursorRejectedError, match="page cursor rejected"):
        read_all(MetaCommerceOrders(RefusingClient(pages_before_refusal=0), "cms-1"), after="saved")


@pytest.mark.parametrize(
    ("after", "pages_before_refusal", "code"),
    [(None, 0, 100), ("saved", 1, 100), ("saved", 0, 803)],
    ids=["a fresh listing", "a later page of a resumed listing", "another code on a resumed first page"],
)
def test_any_other_refusal_is_not_blamed_on_the_cursor(after: str | None, pages_before_refusal: int, code: int) -> None:
    source = MetaCommerceOrders(RefusingClient(pages_before_refusal=pages_before_refusal, code=code), "cms-1")
    with pytest.raises(GraphValidationError):
        read_all(source, after=after)
