"""The simulator's Graph ``fields`` parser and cursor paging: the pieces every listing endpoint relies on."""

from __future__ import annotations

import pytest

from stocksync_dev.simulator.errors import GraphError
from stocksync_dev.simulator.graph_fields import parse_fields, resolve_fields
from stocksync_dev.simulator.graph_views import ORDER, PRODUCT
from stocksync_dev.simulator.paging import decode_cursor, encode_cursor, page_limit, paged_response


def test_nested_fields_parse_into_a_tree() -> None:
    spec = parse_fields("id, items{retailer_id,quantity}, cancellations{id,items{quantity}},order_status")

    assert spec == {
        "id": None,
        "items": {"retailer_id": None, "quantity": None},
        "cancellations": {"id": None, "items": {"quantity": None}},
        "order_status": None,
    }


@pytest.mark.parametrize("text", ["id,", "items{retailer_id", "id}", "items{}", "id;name", "{id}"])
def test_malformed_fields_are_a_syntax_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fields(text)


def test_without_fields_only_the_default_order_fields_come_back() -> None:
    assert list(resolve_fields(ORDER, None)) == ["id", "order_status", "created", "last_updated"]


def test_an_edge_named_without_braces_gets_its_default_fields() -> None:
    spec = resolve_fields(ORDER, "id,items")

    assert spec["items"] == {"id": None, "retailer_id": None, "product_id": None, "quantity": None}


def test_an_unknown_field_is_graph_error_100_naming_it() -> None:
    with pytest.raises(GraphError) as raised:
        resolve_fields(ORDER, "id,items{retailer_id,colour}")

    assert raised.value.code == 100
    assert "(colour)" in raised.value.message
    assert "CommerceOrderItem" in raised.value.message


def test_a_scalar_field_cannot_be_expanded() -> None:
    with pytest.raises(GraphError):
        resolve_fields(PRODUCT, "retailer_id{id}")


def test_cursors_round_trip_and_reject_garbage() -> None:
    cursor = encode_cursor((1793491200, "o-1"))

    assert decode_cursor(cursor) == [1793491200, "o-1"]
    assert "=" not in cursor
    for garbage in ("not-base64!!", encode_cursor(()), "e30"):  # "e30" is base64 of "{}"
        with pytest.raises(GraphError):
            decode_cursor(garbage)


def test_limit_defaults_caps_and_rejects_nonsense() -> None:
    assert page_limit({}, default=25, maximum=25) == 25
    assert page_limit({"limit": "10"}, default=25, maximum=25) == 10
    assert page_limit({"limit": "500"}, default=25, maximum=25) == 25
    for bad in ("0", "-3", "ten"):
        with pytest.raises(GraphError):
            page_limit({"limit": bad}, default=25, maximum=25)


def test_paging_has_next_only_when_more_rows_follow() -> None:
    last_page = paged_response([{"id": "a"}], [("a",)], False, "http://sim/v25.0/1/products", {"limit": "1"})
    middle_page = paged_response([{"id": "a"}], [("a",)], True, "http://sim/v25.0/1/products", {"limit": "1"})

    assert "next" not in last_page["paging"]
    assert last_page["paging"]["cursors"] == {"before": encode_cursor(("a",)), "after": encode_cursor(("a",))}
    assert middle_page["paging"]["next"] == f"http://sim/v25.0/1/products?limit=1&after={encode_cursor(('a',))}"
    assert paged_response([], [], False, "http://sim/x", {}) == {"data": []}
