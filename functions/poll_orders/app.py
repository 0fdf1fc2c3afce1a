"""poll_orders: on its schedule, reads Commerce orders changed since the stored cursor into the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import clock, composition
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.order_sources import MetaCommerceOrders
from stocksync.logic.order_polling import poll_orders
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

SOURCE = "meta_commerce"
get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


class _Sinks:
    def __init__(self) -> None:
        settings = get_settings()
        self._recompute = composition.recompute_queue(settings)
        self._dead_letters = composition.dead_letters(settings)
        self._bus = composition.bus(settings)

    def enqueue_recompute(self, retailer_ids: Any) -> None:
        self._recompute.enqueue(retailer_ids, reason="orders")

    def reject(self, raw: Any, reason: str) -> None:
        metrics.add_metric(name="OrdersRejected", unit="Count", value=1)
        logger.error("order rejected", extra={"reason": reason})
        self._dead_letters.send(source=f"poll_orders:{SOURCE}", reason=reason, body=raw)

    def source_removed(self, source: str, reason: str) -> None:
        metrics.add_metric(name="OrderSourceRemoved", unit="Count", value=1)
        logger.error(
            "order source removed by the platform; polling stopped", extra={"source": source, "reason": reason}
        )
        self._bus.put("Order Source Removed", [{"source": source, "reason": reason}])


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    now = clock.now()
    report = poll_orders(
        SOURCE,
        MetaCommerceOrders(graph_client_from_settings(settings), settings.cms_id),
        composition.order_ingest(settings, now=now),
        composition.control_table(settings),
        _Sinks(),
        overlap=timedelta(seconds=settings.poll_overlap_seconds),
        now=now,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    if not report.disabled:
        metrics.add_metric(
            name="SecondsSinceCompleteListing", unit="Seconds", value=report.seconds_since_complete_listing
        )
    metrics.add_metric(name="OrderSightings", unit="Count", value=report.sightings)
    metrics.add_metric(name="OrdersApplied", unit="Count", value=report.applied)
    if report.skipped_until is not None:
        logger.info("poll skipped: the platform asked us to wait", extra={"until": report.skipped_until.isoformat()})
    elif report.throttled_for is not None:
        metrics.add_metric(name="PollThrottled", unit="Count", value=1)
        logger.warning(
            "poll throttled; the next poll resumes from the saved cursor",
            extra={"retry_after_seconds": report.throttled_for},
        )
    if report.reenqueued_skus:
        logger.info(
            "re-enqueued SKUs a previous poll changed but may have died before enqueueing",
            extra={"skus": len(report.reenqueued_skus)},
        )
    if report.restarted_listing:
        metrics.add_metric(name="PollListingRestarted", unit="Count", value=1)
        logger.warning(
            "the saved page cursor was refused; the listing started over from its first page",
            extra={"reason": report.restarted_listing},
        )
    summary = composition.describe(report)
    logger.info("poll finished", extra=summary)
    return summary
