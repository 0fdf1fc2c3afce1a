"""Ids and units at the edges: a control character in a retailer id, or units past MAX_UNITS, refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from stocksync.models.inventory import WarehouseLevel
from stocksync.models.orders import MAX_UNITS, OrderLine
from stocksync.models.recompute import CatalogReadRequest, RecomputeRequest
from stocksync.models.sku import SkuSettingsChange

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
EDGES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (OrderLine, {"quantity": 1}),
    (WarehouseLevel, {"level": 3, "as_of": T0}),
    (RecomputeRequest, {}),
    (CatalogReadRequest, {}),
    (SkuSettingsChange, {"as_of": T0, "bucket": "fast"}),
]


@pytest.mark.parametrize(("model", "rest"), EDGES, ids=lambda value: getattr(value, "__name__", ""))
@pytest.mark.parametrize(
    ("retailer_id", "character", "position"),
    [("SKU\x00-1", "U+0000", 3), ("SKU-1\n", "U+000A", 5), ("SK\tU", "U+0009", 2), ("S\x7fKU", "U+007F", 1)],
)
def test_a_control_character_is_refused_with_what_and_where(
    model: type[BaseModel], rest: dict[str, Any], retailer_id: str, character: str, position: int
) -> None:
    if retailer_id.endswith("\n"):
        retailer_id = f"{retailer_id}X"  # an outer newline is whitespace, stripped like a space; an inner one is not
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"retailer_id": retailer_id, **rest})
    (error,) = caught.value.errors()
    assert error["loc"] == ("retailer_id",)
    assert f"contains a control character ({character} at position {position})" in error["msg"]


@pytest.mark.parametrize(("model", "rest"), EDGES, ids=lambda value: getattr(value, "__name__", ""))
@pytest.mark.parametrize("retailer_id", ["SKU-1", "ACME SHOES/42 é", "x" * 100, "SKU\u200b1"])
def test_printable_ids_pass_unchanged(model: type[BaseModel], rest: dict[str, Any], retailer_id: str) -> None:
    assert model.model_validate({"retailer_id": retailer_id, **rest}).retailer_id == retailer_id  # type: ignore[attr-defined]


def test_surrounding_whitespace_is_still_stripped_and_101_characters_still_refused() -> None:
    assert OrderLine.model_validate({"retailer_id": " SKU-1\t", "quantity": 1}).retailer_id == "SKU-1"
    with pytest.raises(ValidationError, match="at most 100 characters"):
        OrderLine.model_validate({"retailer_id": "x" * 101, "quantity": 1})


# ------------------------------------------------------- units: at most MAX_UNITS, so never a DynamoDB overflow
UNIT_FIELDS: list[tuple[type[BaseModel], str, dict[str, Any]]] = [
    (OrderLine, "quantity", {"retailer_id": "SKU-1"}),
    (WarehouseLevel, "level", {"retailer_id": "SKU-1", "as_of": T0}),
    (SkuSettingsChange, "allocation_fixed", {"retailer_id": "SKU-1", "as_of": T0}),
]


@pytest.mark.parametrize(("model", "field", "rest"), UNIT_FIELDS, ids=lambda value: getattr(value, "__name__", value))
def test_units_up_to_the_bound_pass_and_past_it_are_refused_naming_the_field(
    model: type[BaseModel], field: str, rest: dict[str, Any]
) -> None:
    assert getattr(model.model_validate({field: MAX_UNITS, **rest}), field) == MAX_UNITS
    for too_many in (MAX_UNITS + 1, 10**12, 10**40):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({field: too_many, **rest})
        (error,) = caught.value.errors()
        assert error["loc"] == (field,)
        assert error["msg"] == "Input should be less than or equal to 1000000000"


# ------------------------------------------------------- a SKU listed twice in one levels event: the newest entry wins
def test_a_sku_listed_twice_keeps_its_newest_entry_and_a_tie_goes_to_the_later_one() -> None:
    from stocksync.logic.warehouse_input import newest_per_sku

    def level(sku: str, units: int, minute: int, sequence: int | None = None) -> WarehouseLevel:
        return WarehouseLevel(retailer_id=sku, level=units, as_of=T0.replace(minute=minute), sequence=sequence)

    entries = [
        level("A", 9, 5),  # newer than the A below: kept
        level("B", 1, 0),
        level("A", 3, 4),
        level("C", 4, 0, sequence=2),  # the greater sequence at the same as_of: kept
        level("C", 8, 0, sequence=1),
        level("B", 2, 0),  # a tie with the B above: the later entry wins
    ]
    kept, superseded = newest_per_sku(entries)
    assert [(entry.retailer_id, entry.level) for entry in kept] == [("A", 9), ("C", 4), ("B", 2)]
    assert superseded == 3
    assert newest_per_sku(entries[:2]) == (entries[:2], 0)
