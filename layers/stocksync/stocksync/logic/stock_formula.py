"""The number the catalog should show for one SKU: pre-allocation, pending deductions, the pessimistic threshold.

Both deduction modes, side by side (docs/design.md, "The number the product publishes"; docs/recompute.md):

=====================  ===========================================  ==============================================
                       merchant (default)                           platform
=====================  ===========================================  ==============================================
what Meta subtracts    nothing of its own: the value we upload is   the orders it has not confirmed yet (P and C)
                       what it sells (it decrements that copy on    from the value we upload, and keeps
                       each Facebook/Instagram order)               acknowledged orders in its counter for 30 min
we subtract            P + C: every order the warehouse has not     K: acknowledged orders the warehouse has not
                       taken yet (any channel)                      taken yet (must land within those 30 minutes)
published value        A = max(0, alloc(I) - P - C)                 A = max(0, alloc(I) - K)
then                   A := 0 when A <= threshold(bucket)           A := 0 when A <= threshold(bucket)
over-sold when         P + C > I                                    P + C + K > I
=====================  ===========================================  ==============================================

Over-selling is judged against the warehouse level ``I``, not ``alloc(I)``: the units outside the allocation are the
other channels' to sell, and an order they take there is one the warehouse fills. Judging against ``alloc(I)``
flagged (and, with auto-cancel, cancelled Commerce orders of) every SKU whose web shop sold into its own share.

The merchant mode can only under-sell (an order is never counted upward twice), which is why it is the default
while Meta's exact netting is unconfirmed (docs/graph-api.md, "What is not known").

``alloc(I)`` is the share of the warehouse level dedicated to Facebook/Instagram: a percentage (rounded down, so a
share never rounds up into units another channel holds), a fixed cap (``min(I, cap)``), or all of ``I``. A SKU's
own allocation replaces its bucket's; at most one of percentage and cap is set at each level.
"""

from __future__ import annotations

from dataclasses import dataclass

from stocksync.models.settings import DeductionMode


@dataclass(frozen=True, slots=True)
class Allocation:
    """At most one of ``percent`` and ``fixed``; neither means all of the warehouse level."""

    percent: int | None = None
    fixed: int | None = None

    def __post_init__(self) -> None:
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ValueError(f"allocation percent must be 0..100, not {self.percent}")
        if self.fixed is not None and self.fixed < 0:
            raise ValueError(f"allocation cap must be 0 or more, not {self.fixed}")
        if self.percent is not None and self.fixed is not None:
            raise ValueError("set an allocation percent or a fixed cap, not both")

    @property
    def is_set(self) -> bool:
        return self.percent is not None or self.fixed is not None

    def units(self, warehouse_level: int) -> int:
        """alloc(I). A negative level (a warehouse reporting a deficit) allocates nothing."""
        level = max(0, warehouse_level)
        if self.percent is not None:
            return level * self.percent // 100
        if self.fixed is not None:
            return min(level, self.fixed)
        return level


def resolve_allocation(sku: Allocation, bucket: Allocation) -> Allocation:
    """The SKU's own allocation when it has one, otherwise its bucket's (possibly none: all of I)."""
    return sku if sku.is_set else bucket


@dataclass(frozen=True, slots=True)
class PendingUnits:
    """The counters the ledger maintains for one SKU."""

    processing: int = 0  # P: units in FB_PROCESSING orders
    created: int = 0  # C: units in CREATED orders the warehouse has not accounted for
    acknowledged: int = 0  # K: units in acknowledged orders the warehouse has not accounted for

    def deducted(self, mode: DeductionMode) -> int:
        """Units we subtract from alloc(I) ourselves in this mode."""
        if mode is DeductionMode.PLATFORM:
            return self.acknowledged
        return self.processing + self.created

    def owed(self, mode: DeductionMode) -> int:
        """Units promised to buyers that the warehouse level does not reflect yet (over-selling check).

        In the merchant mode acknowledged orders are assumed to be in I already; the platform mode says they are not.
        """
        owed = self.processing + self.created
        return owed + self.acknowledged if mode is DeductionMode.PLATFORM else owed


@dataclass(frozen=True, slots=True)
class StockFigures:
    """The formula's intermediate values for one SKU, kept for metrics, logs and the over-selling event."""

    allocated: int  # alloc(I)
    deducted: int  # P + C (merchant) or K (platform)
    available: int  # max(0, allocated - deducted), before the threshold
    published: int  # A: available, or 0 when available <= threshold
    shortfall: int  # owed units beyond I (the warehouse level): 0 unless the SKU is over-sold

    @property
    def over_sold(self) -> bool:
        return self.shortfall > 0


def stock_figures(
    warehouse_level: int, pending: PendingUnits, allocation: Allocation, *, threshold: int, mode: DeductionMode
) -> StockFigures:
    """A = max(0, alloc(I) - deducted), then 0 when A <= threshold."""
    if threshold < 0:
        raise ValueError(f"threshold must be 0 or more, not {threshold}")
    allocated = allocation.units(warehouse_level)
    deducted = pending.deducted(mode)
    available = max(0, allocated - deducted)
    published = 0 if available <= threshold else available
    return StockFigures(
        allocated=allocated,
        deducted=deducted,
        available=available,
        published=published,
        shortfall=max(0, pending.owed(mode) - max(0, warehouse_level)),
    )
