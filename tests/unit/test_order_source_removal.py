"""Telling the order API's removal from a bad parameter: the rule in README ("Where orders come from")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stocksync.errors import SourceCursorRejectedError, SourceRemovedError
from stocksync.integrations.order_sources import MetaCommerceOrders
from stocksync.models.graph import GraphErrorBody
from stocksync.models.graph_errors import (
    GraphEndpointRemovedError,
    GraphValidationError,
    error_from_response,
    says_object_unreachable,
)

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
UNSUPPORTED = (
    "Unsupported get request. Object with ID '2001' does not exist, cannot be loaded due to missing permissions, "
    "or does not support this operation. Please read the Graph API documentation at "
    "https://developers.facebook.com/docs/graph-api"
)


def answer(code: int, message: str, subcode: int | None = None, edge: str = "commerce_orders") -> Any:
    body = GraphErrorBody(message=message, code=code, error_subcode=subcode, type="OAuthException", fbtrace_id="A")
    return error_from_response(
        400, body, endpoint=f"GET 2001/{edge}", edge=edge, usage=None, retry_after_header=None, secrets=()
    )


@pytest.mark.parametrize(
    ("code", "message", "subcode"),
    [
        (12, "(#12) commerce_orders is deprecated for versions v26.0 and higher", None),
        (12, "(#12) something else entirely", None),
        (
            100,
            "(#100) Tried accessing nonexisting field (commerce_orders) on node type (CommerceMerchantSettings)",
            None,
        ),
        (2500, "Unknown path components: /commerce_orders", None),
    ],
    ids=["deprecated", "deprecated, any wording", "nonexisting field", "unknown path"],
)
def test_the_removal_shapes_are_a_removed_endpoint(code: int, message: str, subcode: int | None) -> None:
    assert type(answer(code, message, subcode)) is GraphEndpointRemovedError


@pytest.mark.parametrize(
    ("code", "message", "subcode"),
    [
        (100, "(#100) Tried accessing nonexisting field (colour) on node type (CommerceOrder)", None),
        (100, "(#100) Invalid cursor: expired-cursor", None),
        (100, "(#100) Param state must be among FB_PROCESSING, CREATED", None),
        (2500, "Unknown path components: /commerce_order", None),
    ],
    ids=["a bad field in fields=", "a rejected cursor", "a bad state", "another unknown path"],
)
def test_a_bad_parameter_is_not_a_removal(code: int, message: str, subcode: int | None) -> None:
    error = answer(code, message, subcode)
    assert type(error) is GraphValidationError and not says_object_unreachable(error)


def test_unsupported_get_request_is_left_to_the_caller() -> None:
    for error in (answer(100, UNSUPPORTED, 33), answer(100, UNSUPPORTED), answer(100, "(#100) x", 33)):
        assert type(error) is GraphValidationError and says_object_unreachable(error)


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def list_commerce_orders(self, cms_id: str, **kwargs: Any) -> Any:
        raise self.error
        yield  # a generator, like the client's


@pytest.mark.parametrize("after", [None, "saved-cursor"], ids=["fresh listing", "resumed listing"])
def test_the_listing_turns_every_removal_shape_into_source_removed(after: str | None) -> None:
    shapes = [
        answer(12, "(#12) commerce_orders is deprecated for versions v26.0 and higher"),
        answer(100, "(#100) Tried accessing nonexisting field (commerce_orders) on node type (X)"),
        answer(100, UNSUPPORTED, 33),
        answer(2500, "Unknown path components: /commerce_orders"),
    ]
    for error in shapes:
        source = MetaCommerceOrders(Refusing(error), "2001")
        with pytest.raises(SourceRemovedError, match=r"^meta_commerce: "):
            list(source.pages(updated_after=NOW, after=after, observed_at=NOW))


def test_a_code_100_without_a_removal_signature_on_a_resumed_listing_is_the_cursor() -> None:
    source = MetaCommerceOrders(Refusing(answer(100, "(#100) Invalid cursor: saved-cursor")), "2001")
    with pytest.raises(SourceCursorRejectedError):
        list(source.pages(updated_after=NOW, after="saved-cursor", observed_at=NOW))
