"""Why a SKU shows the number it shows, term by term, and which SKUs need attention now (``stocksync explain`` and
``stocksync status``).

Nothing here computes the number a second way: every figure comes from the functions recompute itself runs
(``evaluate``, ``stock_figures`` through it, ``resolve_allocation``, ``catalog_belief``, ``pending_push``,
``push_reason``, ``contributions``, ``assign_bucket``), so an explanation cannot drift from the number published.
This module only lays those results side by side, with the inputs that produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stocksync.logic.bucketing import assign_bucket
from stocksync.logic.catalog_model import CatalogBelief, CatalogValue, catalog_belief
from stocksync.logic.ledger import LedgerPart, contributions
from stocksync.logic.recompute import Evaluation, evaluate, pending_push, push_reason
from stocksync.logic.stock_formula import Allocation, resolve_allocation
from stocksync.models.settings import BucketSettings, DeductionMode
from stocksync.models.sku import SkuState

# How many SKUs status names per list (the counts are always exact).
MAX_NAMED = 50


@dataclass(frozen=True, slots=True)
class CountedOrder:
    """One open ledger row's units of the SKU, and the counter they are in (the counters are their sum)."""

    order_id: str
    part: int
    state: str | None
    source: str
    synced: bool
    placed_at: datetime | None
    processing: int  # in P
    created: int  # in C
    acknowledged: int  # in K


@dataclass(frozen=True, slots=True)
class BucketWhy:
    """Which bucket the SKU is in, and why: set by the merchant, or assigned from its sales velocity."""

    name: str
    explicit: bool
    recorded: bool  # False: the SKU record names no bucket, so the default bucket applies
    velocity_units_per_hour: float | None
    velocity_window_hours: int
    velocity_would_assign: str | None  # what assign_buckets would choose now (None for an explicit bucket)


@dataclass(frozen=True, slots=True)
class AllocationWhy:
    source: str  # "sku", "bucket" or "none" (all of I)
    percent: int | None
    fixed: int | None


@dataclass
class SkuExplanation:
    """Every term of one SKU's number. ``evaluation.figures`` is None while the warehouse never reported the SKU."""

    state: SkuState
    mode: DeductionMode
    bucket: BucketWhy
    bucket_settings: BucketSettings
    allocation: AllocationWhy
    evaluation: Evaluation
    orders: list[CountedOrder]
    belief: CatalogBelief | None  # what the catalog shows now, as far as the product can tell
    pending: CatalogValue | None  # what the catalog will show once the unconfirmed push lands
    decision: str | None  # what recompute would do now: a push reason, "read back" or "nothing"
    orders_sum: tuple[int, int, int] = (0, 0, 0)  # (P, C, K) summed from the open ledger rows

    @property
    def counters_match_orders(self) -> bool:
        """The counters equal what the open ledger rows imply (``stocksync reconcile`` repairs them otherwise)."""
        s = self.state
        return self.orders_sum == (s.pending_processing, s.pending_created, s.acknowledged_unsynced)


def counted_orders(rows: Iterable[LedgerPart], retailer_id: str) -> list[CountedOrder]:
    """The open ledger rows that hold units of ``retailer_id`` in P, C or K, oldest placed first."""
    found = []
    for row in rows:
        delta = contributions(row).get(retailer_id)
        if delta is None or not (delta.processing or delta.created or delta.acknowledged):
            continue
        found.append(
            CountedOrder(
                order_id=row.order_id,
                part=row.part,
                state=row.state.value if row.state else None,
                source=row.source.value,
                synced=row.synced,
                placed_at=row.placed_at,
                processing=delta.processing,
                created=delta.created,
                acknowledged=delta.acknowledged,
            )
        )
    return sorted(found, key=lambda order: (order.placed_at is None, order.placed_at or datetime.min, order.order_id))


def explain_sku(
    state: SkuState,
    *,
    buckets: Mapping[str, BucketSettings],
    default_bucket: str,
    mode: DeductionMode,
    open_rows: Iterable[LedgerPart],
    velocity: float | None,
    velocity_window_hours: int,
    hysteresis: float,
    now: datetime,
    confirmation_timeout: timedelta,
    reads_enabled: bool,
) -> SkuExplanation:
    """The explanation of one SKU. ``velocity``: its units sold per hour over the trailing window (None: unknown).

    Raises KeyError for a bucket the settings do not know (recompute dead-letters such a SKU: the caller says so)."""
    bucket_name = state.bucket or default_bucket
    settings = buckets[bucket_name]
    evaluation = evaluate(state, bucket_name, settings, mode)
    sku_allocation = Allocation(state.allocation_percent, state.allocation_fixed)
    chosen = resolve_allocation(sku_allocation, Allocation(settings.allocation_percent, settings.allocation_fixed))
    source = "sku" if sku_allocation.is_set else ("bucket" if chosen.is_set else "none")
    would_assign = None
    if not state.bucket_explicit and velocity is not None:
        would_assign = assign_bucket(state.bucket, velocity, buckets, hysteresis=hysteresis)
    orders = counted_orders(open_rows, state.retailer_id)
    decision = None
    if evaluation.target is not None:
        decision = push_reason(
            state,
            evaluation.target,
            mode=mode,
            now=now,
            confirmation_timeout=confirmation_timeout,
            reads_enabled=reads_enabled,
        ).value
    return SkuExplanation(
        state=state,
        mode=mode,
        bucket=BucketWhy(
            name=bucket_name,
            explicit=state.bucket_explicit,
            recorded=state.bucket is not None,
            velocity_units_per_hour=velocity,
            velocity_window_hours=velocity_window_hours,
            velocity_would_assign=would_assign,
        ),
        bucket_settings=settings,
        allocation=AllocationWhy(source, chosen.percent, chosen.fixed),
        evaluation=evaluation,
        orders=orders,
        belief=catalog_belief(state, mode),
        pending=pending_push(state, mode),
        decision=decision,
        orders_sum=(
            sum(order.processing for order in orders),
            sum(order.created for order in orders),
            sum(order.acknowledged for order in orders),
        ),
    )


@dataclass
class StockHealth:
    """What a pass over every SKU found: the over-sold ones (owed units beyond alloc(I)) and those published at 0."""

    skus: int = 0
    without_warehouse_level: int = 0
    over_sold: list[tuple[str, int]] = field(default_factory=list)  # (retailer id, shortfall), first MAX_NAMED
    over_sold_count: int = 0
    units_at_risk: int = 0
    at_zero: list[str] = field(default_factory=list)  # first MAX_NAMED
    at_zero_count: int = 0

    def add(self, state: SkuState, bucket: str, settings: BucketSettings, mode: DeductionMode) -> None:
        """Count one SKU of ``bucket``, as recompute counts it (BucketTally: at zero, over-sold, units at risk)."""
        self.skus += 1
        evaluation = evaluate(state, bucket, settings, mode)
        if evaluation.target is None:
            self.without_warehouse_level += 1
            return
        if evaluation.target.value == 0:
            self.at_zero_count += 1
            if len(self.at_zero) < MAX_NAMED:
                self.at_zero.append(state.retailer_id)
        figures = evaluation.figures
        if figures is not None and figures.over_sold:
            self.over_sold_count += 1
            self.units_at_risk += figures.shortfall
            if len(self.over_sold) < MAX_NAMED:
                self.over_sold.append((state.retailer_id, figures.shortfall))
