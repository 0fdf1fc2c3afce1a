"""Per-item errors the platform reports for one product of a batch (or of a single-product update), by kind.

Permanent errors cannot be fixed by sending the same row again: the retailer id is not in the catalog, or a value
is invalid. They go to the dead-letter queue with the platform's message. Anything else (including a row whose
message the platform left out of its error sample) is retried at the same version, a bounded number of times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The code of a row the catalog refused because it has no item with that retailer id (the SKU is not in the catalog).
NOT_IN_CATALOG_CODE = "product_not_found"
# How often verify sends one version back after per-item errors before it gives up and dead-letters it.
MAX_ITEM_RETRIES = 3

_NOT_FOUND = re.compile(r"not found|does not exist|unknown (retailer|product|item)|no such product", re.IGNORECASE)
_INVALID_VALUE = re.compile(r"invalid value|not a non-negative|must be (a|an|one of)|is not one of", re.IGNORECASE)


@dataclass(frozen=True)
class ItemError:
    """``code`` labels the error for metrics (ItemErrors by ErrorCode) and dead letters."""

    code: str
    permanent: bool
    message: str


def classify_item_error(message: str | None) -> ItemError:
    """The kind of a per-item error from the platform's message (None: the row was not in the error sample)."""
    if message is None:
        return ItemError("unreported", permanent=False, message="the platform did not report this row's error")
    if _NOT_FOUND.search(message):
        return ItemError(NOT_IN_CATALOG_CODE, permanent=True, message=message)
    if _INVALID_VALUE.search(message):
        return ItemError("invalid_value", permanent=True, message=message)
    return ItemError("item_error", permanent=False, message=message)
