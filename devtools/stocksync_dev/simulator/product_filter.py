"""The products edge's ``filter`` parameter: the part of Graph's filter rules the simulator understands.

``GET /{catalog_id}/products`` takes a JSON rule ``{"<field>": {"<operator>": <value>}}``; Meta's reference shows
``{"name": {"i_contains": "shoe"}}``, and operators such as ``eq`` and ``is_any``
(https://developers.facebook.com/docs/marketing-api/reference/product-catalog/products). The product reads its
catalog back by retailer id, so the simulator honours exactly two rules:

- ``{"retailer_id": {"is_any": ["SKU-1", "SKU-2"]}}``: the products with any of these retailer ids;
- ``{"retailer_id": {"eq": "SKU-1"}}``: the product with this one.

Anything else (not JSON, another field or operator, a value of the wrong type, several rules) is refused with code
100 and a message naming ``filter``, never silently ignored: ignoring it would hand the whole catalog to a client
that believes it asked for a few SKUs. Graph's exact wording for a bad filter is not documented; these messages are
the simulator's own. Ids that are not in the catalog are simply not listed, as with any filter that matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stocksync_dev.simulator.errors import GraphError, invalid_parameter
from stocksync_dev.simulator.graph_request import json_value

FILTER_PARAM = "filter"
_SUPPORTED = 'supported: {"retailer_id":{"is_any":["SKU-1","SKU-2"]}} or {"retailer_id":{"eq":"SKU-1"}}'


def retailer_id_filter(params: Mapping[str, Any]) -> frozenset[str] | None:
    """The retailer ids the ``filter`` parameter selects; None when there is no filter."""
    raw = params.get(FILTER_PARAM)
    if raw is None or raw == "":
        return None
    rule = json_value(params, FILTER_PARAM)
    if not isinstance(rule, dict) or len(rule) != 1:
        raise _refused("must be a JSON object holding one rule")
    ((field, condition),) = rule.items()
    if field != "retailer_id":
        raise _refused(f"filtering on {field!r} is not supported")
    if not isinstance(condition, dict) or len(condition) != 1:
        raise _refused("the rule on retailer_id must be an object holding one operator")
    ((operator, value),) = condition.items()
    if operator == "eq":
        return frozenset({_retailer_id(value)})
    if operator == "is_any":
        if not isinstance(value, list) or not value:
            raise _refused("is_any takes a non-empty JSON array of retailer ids")
        return frozenset(_retailer_id(item) for item in value)
    raise _refused(f"operator {operator!r} is not supported on retailer_id")


def _retailer_id(value: Any) -> str:
    """A retailer id as a filter value: a non-empty string, or a number (Graph ids may be sent unquoted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise _refused(f"{value!r} is not a retailer id")


def _refused(reason: str) -> GraphError:
    return invalid_parameter(f"Param {FILTER_PARAM} is invalid: {reason} ({_SUPPORTED})")
