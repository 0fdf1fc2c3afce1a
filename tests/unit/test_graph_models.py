"""Graph response models: what parses, and that what does not names the JSON path of the bad field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from stocksync.errors import InvalidInputError
from stocksync.integrations.graph_parsing import json_path, parse_model, parse_records, parse_usage
from stocksync.models.graph import (
    BatchRequestStatus,
    BatchStatus,
    CommerceOrder,
    ItemUpdate,
    ListResponse,
)
from stocksync.models.graph_errors import GraphResponseError
from stocksync.models.orders import OrderState


def order(order_id: str = "o-1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": order_id,
        "order_status": {"state": "CREATED"},
        "created": "2026-11-01T10:00:00+0000",
        "last_updated": "2026-11-01T11:30:00+0200",
        "items": {"data": [{"id": "line-1", "retailer_id": "SKU-1", "product_id": "p1", "quantity": 2}]},
        "channel": "facebook",  # a field the model does not use: ignored, not rejected
    }
    record.update(overrides)
    return record


def test_order_parses_times_as_utc_and_keeps_the_wire_shape() -> None:
    parsed = CommerceOrder.model_validate(
        order(
            cancellations={
                "data": [
                    {
                        "id": "c-1",
                        "items": {"data": [{"retailer_id": "SKU-1", "quantity": 1}]},
                        "restock_items": True,
                        "cancel_reason": {"reason_code": "CUSTOMER_REQUESTED", "reason_description": "changed mind"},
                    }
                ]
            }
        )
    )
    assert parsed.state is OrderState.CREATED
    assert parsed.created == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert parsed.last_updated == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert parsed.last_updated.utcoffset() is not None
    assert parsed.items.data[0].quantity == 2
    assert parsed.cancellations.data[0].items.data[0].retailer_id == "SKU-1"
    assert parsed.cancellations.data[0].restock_items is True


def test_order_without_cancellations_edge_has_none() -> None:
    assert CommerceOrder.model_validate(order()).cancellations.data == []


def test_page_keeps_good_orders_and_rejects_each_bad_one_with_its_path_and_raw_record() -> None:
    bad_state = order("o-2", order_status={"state": "SHIPPED_BY_DRONE"})
    bad_quantity = order("o-3", items={"data": [{"id": "l", "retailer_id": "SKU-1", "quantity": "two"}]})
    negative = order("o-4", items={"data": [{"id": "l", "retailer_id": "SKU-1", "quantity": -1}]})
    missing_id = order()
    del missing_id["id"]
    page = ListResponse(data=[order("o-1"), bad_state, bad_quantity, negative, missing_id, "not an object"])

    orders, rejected = parse_records(CommerceOrder, page, endpoint="GET 2001/commerce_orders")

    assert [o.id for o in orders] == ["o-1"]
    assert [r.error.field for r in rejected] == [
        "data[1].order_status.state",
        "data[2].items.data[0].quantity",
        "data[3].items.data[0].quantity",
        "data[4].id",
        "data[5]",
    ]
    assert [r.raw for r in rejected] == [bad_state, bad_quantity, negative, missing_id, "not an object"]
    assert all(isinstance(r.error, GraphResponseError) for r in rejected)
    assert all(isinstance(r.error, InvalidInputError) for r in rejected)
    assert "SHIPPED_BY_DRONE" in rejected[0].error.problem
    assert rejected[0].error.raw is bad_state


@pytest.mark.parametrize("quantity", ["2", 2.0, True, 0, None])
def test_quantity_must_be_a_positive_json_integer(quantity: object) -> None:
    with pytest.raises(ValidationError):
        CommerceOrder.model_validate(order(items={"data": [{"id": "l", "retailer_id": "SKU-1", "quantity": quantity}]}))


def test_time_without_offset_is_rejected() -> None:
    with pytest.raises(GraphResponseError) as caught:
        parse_model(CommerceOrder, order(created="2026-11-01T10:00:00"), field="data[0]", endpoint="GET x")
    assert caught.value.field == "data[0].created"


def test_order_whose_lines_do_not_fit_one_nested_page_is_rejected_not_undercounted() -> None:
    truncated = order(items={"data": [{"id": "l", "retailer_id": "S", "quantity": 1}], "paging": {"next": "https://x"}})
    _, rejected = parse_records(CommerceOrder, ListResponse(data=[truncated]), endpoint="GET x")
    assert rejected[0].error.field == "data[0].items"
    assert "more lines" in rejected[0].error.problem


def test_order_without_lines_is_rejected() -> None:
    record = order()
    del record["items"]
    _, rejected = parse_records(CommerceOrder, ListResponse(data=[record]), endpoint="GET x")
    assert rejected[0].error.field == "data[0].items"


def test_batch_status_parses_and_knows_final_states() -> None:
    status = BatchRequestStatus.model_validate(
        {
            "handle": "h1",
            "status": "finished",
            "errors": [{"line": 2, "id": "SKU-2", "message": "bad value"}],
            "errors_total_count": 1,
            "ids_of_invalid_requests": ["SKU-2"],
        }
    )
    assert status.status is BatchStatus.FINISHED and status.status.is_final
    assert status.errors[0].id == "SKU-2"
    assert not BatchStatus.STARTED.is_final and not BatchStatus.DISPATCHED.is_final
    assert BatchStatus.ERROR.is_final and BatchStatus.CANCELED.is_final


def test_unknown_batch_status_names_the_field() -> None:
    with pytest.raises(GraphResponseError) as caught:
        parse_model(BatchRequestStatus, {"handle": "h", "status": "exploded"}, field="data[0]", endpoint="GET x")
    assert caught.value.field == "data[0].status"


def test_item_update_puts_the_retailer_id_into_data_id() -> None:
    update = ItemUpdate(retailer_id="SKU-1", fields={"quantity_to_sell_on_facebook": 4})
    assert update.to_request() == {"method": "UPDATE", "data": {"quantity_to_sell_on_facebook": 4, "id": "SKU-1"}}


def test_item_update_refuses_fields_that_would_rename_the_item() -> None:
    with pytest.raises(ValidationError, match="retailer_id"):
        ItemUpdate(retailer_id="SKU-1", fields={"retailer_id": "SKU-2"})


def test_json_path() -> None:
    assert json_path("data[3]", ("items", "data", 0, "quantity")) == "data[3].items.data[0].quantity"
    assert json_path("", ("handles", 1)) == "handles[1]"
    assert json_path("", ()) == "body"


def test_business_use_case_usage_is_nested_and_in_minutes() -> None:
    usage = parse_usage(
        {
            "X-App-Usage": '{"call_count": 12, "total_cputime": 40, "total_time": 7}',
            "X-Business-Use-Case-Usage": (
                '{"1001": [{"type": "catalog_batch", "call_count": 100, "total_cputime": 3, "total_time": 3,'
                ' "estimated_time_to_regain_access": 2}],'
                ' "2001": [{"type": "pages", "call_count": 5, "total_cputime": 1, "total_time": 1,'
                ' "estimated_time_to_regain_access": 0},'
                ' {"type": "ads_management", "call_count": 1, "total_cputime": 1, "total_time": 1,'
                ' "estimated_time_to_regain_access": 7}]}'
            ),
        }
    )
    assert usage is not None
    assert usage.regain_access_seconds == 7 * 60
    assert usage.max_percent == 100
    assert usage.app is not None and usage.app.max_percent == 40
    assert usage.business_use_cases["1001"][0].type == "catalog_batch"


def test_missing_usage_headers_mean_no_report() -> None:
    assert parse_usage({"Content-Type": "application/json"}) is None


def test_malformed_usage_header_is_ignored_not_fatal() -> None:
    usage = parse_usage({"X-App-Usage": "{not json", "X-Business-Use-Case-Usage": '{"1": [{"call_count": 90}]}'})
    assert usage is not None and usage.app is None
    assert usage.max_percent == 90 and usage.regain_access_seconds == 0
