"""The platform's own copy of the catalog: what it believes each product's stock and visibility are.

This copy is what buyers order against. Uploads overwrite its quantity; orders decrement it; restocking
cancellations add back to it: the three ways the real platform's cached value moves.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VISIBILITIES = ("published", "staging")
# The stock field and its legacy name: the same number on the platform, writing either sets it.
QUANTITY_FIELD = "quantity_to_sell_on_facebook"
LEGACY_QUANTITY_FIELD = "inventory"
# A product cannot be created from an upload that lacks these (``name`` is accepted for ``title``).
REQUIRED_FOR_NEW_PRODUCT = ("title", "price")

_DIGITS = re.compile(r"^[0-9]+$")
_FIRST_PRODUCT_ID = 7_000_000_000_000_001


@dataclass
class Product:
    """One catalog item as the platform holds it. ``extra`` keeps every other uploaded field verbatim."""

    retailer_id: str
    product_id: str
    quantity: int
    visibility: str
    name: str | None = None
    price: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "retailer_id": self.retailer_id,
            "id": self.product_id,
            QUANTITY_FIELD: self.quantity,
            LEGACY_QUANTITY_FIELD: self.quantity,
            "visibility": self.visibility,
            "name": self.name,
            "price": self.price,
        }


def parse_quantity(value: Any) -> int | None:
    """A non-negative integer, given as a JSON number or (from a form) as digits; None when it is anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and _DIGITS.match(value):
        return int(value)
    return None


def invalid_field_messages(fields: Mapping[str, Any]) -> list[str]:
    """Why these uploaded product fields cannot be applied; empty when they all can."""
    messages = []
    for name in (QUANTITY_FIELD, LEGACY_QUANTITY_FIELD):
        if name in fields and parse_quantity(fields[name]) is None:
            messages.append(f"Invalid value for field {name}: {fields[name]!r} is not a non-negative integer")
    if "visibility" in fields and fields["visibility"] not in VISIBILITIES:
        messages.append(
            f"Invalid value for field visibility: {fields['visibility']!r} is not one of {', '.join(VISIBILITIES)}"
        )
    return messages


def missing_fields_for_new_product(fields: Mapping[str, Any]) -> list[str]:
    present = set(fields) | ({"title"} if "name" in fields else set())
    return [name for name in REQUIRED_FOR_NEW_PRODUCT if name not in present]


class Catalog:
    """Products by retailer_id. Not thread-safe: the simulator's lock guards it."""

    def __init__(self) -> None:
        self._products: dict[str, Product] = {}
        # Facebook product id -> retailer id, for ``GET /{product_item_id}``.
        self._by_product_id: dict[str, str] = {}
        self._next_product_id = _FIRST_PRODUCT_ID
        # Sorted retailer ids for cursor paging, rebuilt lazily after a product is created or deleted.
        self._sorted_ids: list[str] | None = None

    def __contains__(self, retailer_id: object) -> bool:
        return retailer_id in self._products

    def get(self, retailer_id: str) -> Product | None:
        return self._products.get(retailer_id)

    def by_product_id(self, product_id: str) -> Product | None:
        retailer_id = self._by_product_id.get(product_id)
        return None if retailer_id is None else self._products[retailer_id]

    def create(self, retailer_id: str, fields: Mapping[str, Any]) -> Product:
        """Create a product from already validated fields; an existing retailer_id is a ValueError."""
        if retailer_id in self._products:
            raise ValueError(f"product {retailer_id} already exists")
        product = Product(
            retailer_id=retailer_id, product_id=str(self._next_product_id), quantity=0, visibility="published"
        )
        self._next_product_id += 1
        self._products[retailer_id] = product
        self._by_product_id[product.product_id] = retailer_id
        self._sorted_ids = None
        self.update(retailer_id, fields)
        return product

    def update(self, retailer_id: str, fields: Mapping[str, Any]) -> None:
        """Apply already validated fields. The quantity overwrites the cached value, as uploads do on the platform;
        when both quantity fields are given, ``quantity_to_sell_on_facebook`` (the current name) wins."""
        product = self._products[retailer_id]
        for name, value in fields.items():
            if name in (QUANTITY_FIELD, LEGACY_QUANTITY_FIELD, "id", "retailer_id"):
                continue
            if name == "visibility":
                product.visibility = value
            elif name in ("title", "name"):
                product.name = str(value)
            elif name == "price":
                product.price = str(value)
            else:
                product.extra[name] = value
        for name in (LEGACY_QUANTITY_FIELD, QUANTITY_FIELD):
            quantity = parse_quantity(fields.get(name))
            if quantity is not None:
                product.quantity = quantity

    def delete(self, retailer_id: str) -> None:
        product = self._products.pop(retailer_id)
        del self._by_product_id[product.product_id]
        self._sorted_ids = None

    def sell(self, retailer_id: str, units: int) -> None:
        """Take sold units off the cached quantity; the caller has checked that enough are left."""
        self._products[retailer_id].quantity -= units

    def restock(self, retailer_id: str, units: int) -> None:
        """Put cancelled units back; a product deleted since the sale has nothing to put them back into."""
        product = self._products.get(retailer_id)
        if product is not None:
            product.quantity += units

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {retailer_id: product.as_dict() for retailer_id, product in self._products.items()}

    def page(
        self, after_retailer_id: str | None, limit: int, retailer_ids: frozenset[str] | None = None
    ) -> tuple[list[Product], bool]:
        """Up to ``limit`` products in retailer_id order after the given one, and whether more follow.

        ``retailer_ids`` (a filter) keeps only those products; ids not in the catalog are simply not listed.
        """
        if retailer_ids is None:
            if self._sorted_ids is None:
                self._sorted_ids = sorted(self._products)
            candidates = self._sorted_ids
        else:
            candidates = sorted(retailer_id for retailer_id in retailer_ids if retailer_id in self._products)
        start = 0 if after_retailer_id is None else bisect_right(candidates, after_retailer_id)
        ids = candidates[start : start + limit]
        return [self._products[retailer_id] for retailer_id in ids], start + limit < len(candidates)
