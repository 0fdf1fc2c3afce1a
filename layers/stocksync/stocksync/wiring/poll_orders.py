"""poll_orders' composition root: the Commerce orders changed since the stored cursor into the ledger
(logic/order_polling.py), the SKUs they change to the recompute queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.control_table import ControlTable
from stocksync.errors import ConfigurationError
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.order_sources import MetaCommerceOrders
from stocksync.integrations.poll_sinks import OrderPollSinks
from stocksync.logic.order_polling import PollReport, poll_orders
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "meta_commerce"


def require_cms_id(settings: Settings) -> str:
    """Checked at cold start: the orders are listed under the commerce merchant settings id."""
    if not settings.cms_id:
        raise ConfigurationError("STOCKSYNC_CMS_ID", "poll_orders needs CommerceMerchantSettingsId")
    return settings.cms_id


def report(outcome: PollReport) -> dict[str, Any]:
    if not outcome.disabled:
        metrics.add_metric(
            name="SecondsSinceCompleteListing", unit="Seconds", value=outcome.seconds_since_complete_listing
        )
    metrics.add_metric(name="OrderSightings", unit="Count", value=outcome.sightings)
    metrics.add_metric(name="OrdersApplied", unit="Count", value=outcome.applied)
    if outcome.skipped_until is not None:
        logger.info("poll skipped: the platform asked us to wait", extra={"until": outcome.skipped_until.isoformat()})
    elif outcome.throttled_for is not None:
        metrics.add_metric(name="PollThrottled", unit="Count", value=1)
        logger.warning(
            "poll throttled; the next poll resumes from the saved cursor",
            extra={"retry_after_seconds": outcome.throttled_for},
        )
    if outcome.reenqueued_skus:
        logger.info(
            "re-enqueued SKUs a previous poll changed but may have died before enqueueing",
            extra={"skus": len(outcome.reenqueued_skus)},
        )
    if outcome.restarted_listing:
        metrics.add_metric(name="PollListingRestarted", unit="Count", value=1)
        logger.warning(
            "the saved page cursor was refused; the listing started over from its first page",
            extra={"reason": outcome.restarted_listing},
        )
    summary = parts.describe(outcome)
    logger.info("poll finished", extra=summary)
    return summary


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """The schedule's event carries nothing the poll needs."""
    now = clock.now()
    sinks = OrderPollSinks(
        source=SOURCE,
        recompute=parts.recompute_queue(settings),
        dead_letters=parts.dead_letters(settings),
        bus=parts.bus(settings),
    )
    outcome = poll_orders(
        SOURCE,
        MetaCommerceOrders(graph_client_from_settings(settings), require_cms_id(settings)),
        parts.order_ingest(settings, now=now),
        ControlTable(aws.client("dynamodb"), settings.control_table),
        sinks,
        overlap=timedelta(seconds=settings.poll_overlap_seconds),
        now=now,
        time_left=parts.time_left(context),
    )
    return report(outcome)
