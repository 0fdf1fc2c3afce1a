"""Which pushes are urgent: the ones whose delay costs the most.

A push that takes a SKU out of stock (the formula publishes 0 once A reaches the bucket's threshold, so this is also
"lowered to its threshold"), brings it back into stock, or changes its visibility goes into the next call slot before
routine changes. Why these: while the catalog still shows stock the SKU no longer has, every sale is an over-sale,
and while it shows 0 for stock that came back, every visitor is a lost sale; a routine change (12 -> 11) costs
nothing until the stock runs low, and the threshold is what absorbs that. The rule needs what the catalog shows (or
will show once the pending push lands); when nothing is known (never confirmed, or ambiguous), a 0 is urgent and
anything else is routine, since an unknown catalog may be showing stock that is gone.
"""

from __future__ import annotations

from stocksync.logic.catalog_model import CatalogValue


def is_urgent(previous: CatalogValue | None, target: CatalogValue) -> bool:
    """True when pushing ``target`` over ``previous`` (what the catalog shows or will show) cannot wait."""
    if previous is None:
        return target.value == 0
    if previous.visibility != target.visibility:
        return True
    return (previous.value > 0) != (target.value > 0)
