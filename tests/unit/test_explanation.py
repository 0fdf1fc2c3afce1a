"""stocksync.logic.explanation: the terms explain shows are recompute's own, and status counts as recompute counts;
plus the naming rules status uses to find a stack's queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stocksync.logic.explanation import SkuExplanation, StockHealth, counted_orders, explain_sku
from stocksync.logic.ledger import LedgerPart, LineRecord
from stocksync.models.orders import OrderSource, OrderState
from stocksync.models.settings import BucketSettings, DeductionMode
from stocksync.models.sku import SkuState
from stocksync_dev.cli.stack_queues import logical_name, of_stack, stack_prefix

T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
BUCKETS = {
    "fast": BucketSettings(threshold=2, min_units_per_hour=5.0),
    "slow": BucketSettings(threshold=0, allocation_percent=50),
}
MERCHANT = DeductionMode.MERCHANT


def row(
    order_id: str, state: OrderState, lines: dict[str, int], *, synced: bool = False, minute: int = 0
) -> LedgerPart:
    return LedgerPart(
        order_id,
        0,
        1,
        OrderSource.EVENTS,
        state,
        synced,
        False,
        {rid: LineRecord(units) for rid, units in lines.items()},
        placed_at=T0 + timedelta(minutes=minute),
    )


def explain(state: SkuState, rows: list[LedgerPart], velocity: float | None = 0.0) -> SkuExplanation:
    return explain_sku(
        state,
        buckets=BUCKETS,
        default_bucket="slow",
        mode=MERCHANT,
        open_rows=rows,
        velocity=velocity,
        velocity_window_hours=24,
        hysteresis=0.2,
        now=T0,
        confirmation_timeout=timedelta(minutes=15),
        reads_enabled=True,
    )


def test_the_orders_counted_are_the_open_rows_holding_units_of_the_sku_in_p_c_or_k() -> None:
    rows = [
        row("late", OrderState.CREATED, {"SKU-1": 2}, minute=5),
        row("early", OrderState.FB_PROCESSING, {"SKU-1": 1, "SKU-2": 4}),
        row("synced", OrderState.CREATED, {"SKU-1": 7}, synced=True),  # the warehouse has it: counts nowhere
        row("other", OrderState.CREATED, {"SKU-2": 1}),
    ]
    counted = counted_orders(rows, "SKU-1")
    assert [(o.order_id, o.processing, o.created, o.acknowledged) for o in counted] == [
        ("early", 1, 0, 0),
        ("late", 0, 2, 0),
    ]


def test_an_explanation_carries_recomputes_figures_and_flags_counters_the_orders_do_not_add_up_to() -> None:
    state = SkuState(retailer_id="SKU-1", warehouse_level=10, bucket="fast", pending_processing=1, pending_created=2)
    explanation = explain(state, [row("o-1", OrderState.FB_PROCESSING, {"SKU-1": 1})], velocity=1.0)
    figures = explanation.evaluation.figures
    assert (figures.allocated, figures.deducted, figures.available, figures.published) == (10, 3, 7, 7)
    assert explanation.allocation.source == "none"
    assert explanation.orders_sum == (1, 0, 0)
    assert not explanation.counters_match_orders  # C 2 has no open order behind it
    assert explanation.bucket.velocity_would_assign == "slow"  # 1/h < fast's 5 x 0.8
    assert explanation.decision == "never confirmed"


def test_a_sku_in_no_recorded_bucket_takes_the_default_and_its_allocation() -> None:
    state = SkuState(retailer_id="SKU-9", warehouse_level=9, allocation_fixed=None)
    explanation = explain(state, [])
    assert explanation.bucket.name == "slow" and not explanation.bucket.recorded
    assert explanation.allocation.source == "bucket"
    assert explanation.evaluation.figures.allocated == 4  # 50% of 9, rounded down


def test_stock_health_counts_over_sold_and_zero_skus_as_recompute_does() -> None:
    health = StockHealth()
    health.add(SkuState(retailer_id="A", warehouse_level=2, pending_created=3), "slow", BUCKETS["slow"], MERCHANT)
    health.add(SkuState(retailer_id="B", warehouse_level=10, pending_created=8), "fast", BUCKETS["fast"], MERCHANT)
    health.add(SkuState(retailer_id="C", warehouse_level=10), "fast", BUCKETS["fast"], MERCHANT)
    health.add(SkuState(retailer_id="D"), "fast", BUCKETS["fast"], MERCHANT)
    # A: alloc 1 (50% of 2), owed 3: at 0, and short 1 of the 2 in the warehouse (over-selling is judged against I,
    # not alloc(I)). B: 10 - 8 = 2 <= threshold 2: at 0, not over-sold.
    assert (health.over_sold_count, health.over_sold, health.units_at_risk) == (1, [("A", 1)], 1)
    assert (health.at_zero_count, health.at_zero) == (2, ["A", "B"])
    assert (health.skus, health.without_warehouse_level) == (4, 1)


def test_a_stacks_queue_names_give_its_prefix_and_each_queues_logical_id() -> None:
    names = ["stocksync-prod-RecomputeQueue-1A2B", "stocksync-prod-PushQueue-3C4D", "stocksync-prod-DeadLetterQueue-X"]
    prefix = stack_prefix(names)
    assert prefix == "stocksync-prod-"
    assert logical_name("stocksync-prod-PushDeadLetterQueue-9Z", prefix) == "PushDeadLetterQueue"
    assert logical_name("someone-elses-queue", prefix) == "someone-elses-queue"
    assert stack_prefix(["only-one-queue"]) == ""
    assert of_stack("stocksync-prod-PushQueue-3C4D", prefix)
    assert not of_stack("stocksync-prod-eu-PushQueue-3C4D", prefix)  # stack stocksync-prod-eu: another catalog
