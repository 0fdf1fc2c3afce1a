"""The stock recompute's adapters: push queue, sweep hand-over queue, bus alerts, Graph API cancellations,
dead letters, and the run report (EMF metrics per bucket, warnings naming SKUs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from stocksync.errors import StockSyncError
from stocksync.integrations.messaging import BusPublisher, DeadLetters, QueuePublisher
from stocksync.logic.recompute import RecomputeReport
from stocksync.models.graph import CancelLine, CancelReasonCode
from stocksync.models.recompute import CatalogReadRequest, SweepRequest
from stocksync.models.sku import PushMessage
from stocksync.observability import logger, metrics

if TYPE_CHECKING:
    # Annotations only: the Graph client (and requests) is loaded where a function calls Graph, not by every
    # function that recomputes stock.
    from stocksync.integrations.graph_api import GraphApiClient

OVER_SELLING_DETAIL_TYPE = "Over-Selling Detected"
# How many SKU names a warning carries; the count beside it is exact.
_NAMES_PER_WARNING = 50


class PushQueueSender:
    """PushSender on the push queue: 10 messages per SendMessageBatch, failures mapped back to their pushes."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def send(self, pushes: Sequence[PushMessage]) -> list[tuple[PushMessage, str]]:
        by_id = {push.retailer_id: push for push in pushes}
        receipt = self._publisher.send([push.model_dump(mode="json", exclude_defaults=True) for push in pushes])
        return [(by_id[body["retailer_id"]], why) for body, why in receipt.failed]


class CatalogReadQueue:
    """CatalogReads on the catalog read queue: one message per SKU, read back by the read_back function."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def request(self, retailer_ids: Sequence[str]) -> list[tuple[str, str]]:
        bodies = [CatalogReadRequest(retailer_id=rid).model_dump() for rid in sorted(set(retailer_ids))]
        receipt = self._publisher.send(bodies)
        return [(body["retailer_id"], why) for body, why in receipt.failed]


class SweepHandOver:
    """Sends the rest of a sweep to the sweep queue, whose consumer is the sweep itself."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def hand_over(self, request: SweepRequest) -> None:
        receipt = self._publisher.send([request.model_dump(mode="json", exclude_none=True)])
        if receipt.failed:
            raise StockSyncError(f"sweep of bucket {request.bucket}: hand-over not sent ({receipt.failed[0][1]})")


class BusOverSellingAlerts:
    """One "Over-Selling Detected" event per over-sold SKU on the product's bus."""

    def __init__(self, bus: BusPublisher) -> None:
        self._bus = bus

    def over_sold(self, details: Sequence[Mapping[str, Any]]) -> None:
        receipt = self._bus.put(OVER_SELLING_DETAIL_TYPE, details)
        if receipt.failed:  # the SKU stays over-sold, so the next recompute or sweep announces it again
            metrics.add_metric(name="OverSellingEventFailures", unit=MetricUnit.Count, value=len(receipt.failed))
            logger.error(
                "over-selling events not published",
                extra={"failed": [(detail["retailer_id"], why) for detail, why in receipt.failed]},
            )


class GraphOrderCanceller:
    """OrderCanceller through the Commerce cancellations endpoint."""

    def __init__(self, graph: GraphApiClient) -> None:
        self._graph = graph

    def cancel_out_of_stock(self, order_id: str, retailer_id: str, units: int, *, idempotency_key: str) -> None:
        self._graph.cancel_order(
            order_id,
            [CancelLine(retailer_id=retailer_id, quantity=units)],
            reason_code=CancelReasonCode.OUT_OF_STOCK,
            reason_description="Not enough stock left for this order.",
            restock_items=False,  # the units do not exist: giving them back to the catalog would over-sell again
            idempotency_key=idempotency_key,
        )


class DeadLetterRejects:
    """SKU records a sweep cannot process: logged with the reason and dead-lettered, the sweep goes on."""

    def __init__(self, dead_letters: DeadLetters, *, source: str, bucket: str) -> None:
        self._dead_letters = dead_letters
        self._source = source
        self._bucket = bucket

    def reject(self, retailer_id: str, reason: str) -> None:
        logger.error("invalid SKU record", extra={"retailer_id": retailer_id, "reason": reason})
        metrics.add_metric(name="InvalidInput", unit=MetricUnit.Count, value=1)
        self._dead_letters.send(
            source=self._source, reason=reason, body={"retailer_id": retailer_id, "bucket": self._bucket}
        )


def report_run(report: RecomputeReport, *, trigger: str) -> dict[str, Any]:
    """Emit the run's metrics (one EMF document per bucket, dimensions bucket and trigger), log what needs a look,
    and return a JSON-friendly summary for the handler's answer."""
    for bucket, tally in sorted(report.buckets.items()):
        per_bucket = EphemeralMetrics()
        per_bucket.add_dimension(name="bucket", value=bucket)
        per_bucket.add_dimension(name="trigger", value=trigger)
        per_bucket.add_metric(name="PushesEnqueued", unit=MetricUnit.Count, value=tally.pushes_enqueued)
        per_bucket.add_metric(name="CatalogReadsRequested", unit=MetricUnit.Count, value=tally.reads_requested)
        per_bucket.add_metric(name="SkusAtZero", unit=MetricUnit.Count, value=tally.at_zero)
        per_bucket.add_metric(name="UnitsAtRisk", unit=MetricUnit.Count, value=tally.units_at_risk)
        per_bucket.add_metric(name="SkusOverSold", unit=MetricUnit.Count, value=tally.over_sold)
        per_bucket.add_metric(
            name="SkusWithoutWarehouseLevel", unit=MetricUnit.Count, value=tally.without_warehouse_level
        )
        per_bucket.add_metric(name="SkusEvaluated", unit=MetricUnit.Count, value=tally.evaluated)
        per_bucket.flush_metrics()
    evaluated = sum(tally.evaluated for tally in report.buckets.values())
    metrics.add_metric(name="SkusRecomputed", unit=MetricUnit.Count, value=evaluated)
    without_level = sum(tally.without_warehouse_level for tally in report.buckets.values())
    if without_level:
        logger.warning(
            "SKUs without a warehouse level: nothing published for them",
            extra={"count": without_level, "retailer_ids": report.without_warehouse_level[:_NAMES_PER_WARNING]},
        )
    if report.push_failures:
        metrics.add_metric(name="PushEnqueueFailures", unit=MetricUnit.Count, value=len(report.push_failures))
        logger.error(
            "pushes claimed but not enqueued; their messages are delivered again and send them",
            extra={"failed": report.push_failures[:_NAMES_PER_WARNING]},
        )
    if report.read_failures:
        metrics.add_metric(name="CatalogReadEnqueueFailures", unit=MetricUnit.Count, value=len(report.read_failures))
        logger.error(
            "catalog reads not enqueued; their messages are delivered again",
            extra={"failed": report.read_failures[:_NAMES_PER_WARNING]},
        )
    over = report.over_selling
    if over.skus:
        metrics.add_metric(name="OrdersCancelledUnits", unit=MetricUnit.Count, value=over.cancelled_units)
        logger.warning(
            "over-selling detected",
            extra={"skus": over.skus, "units_at_risk": over.units_at_risk, "cancelled_units": over.cancelled_units},
        )
    if over.cancel_failures:
        metrics.add_metric(name="CancelFailures", unit=MetricUnit.Count, value=len(over.cancel_failures))
        logger.error(
            "out-of-stock cancellations failed; retried at the next recompute", extra={"failed": over.cancel_failures}
        )
    return {
        "evaluated": evaluated,
        "pushes_enqueued": report.pushes_enqueued,
        "unchanged": report.unchanged,
        "conflicts": report.conflicts,
        "push_failures": len(report.push_failures),
        "reads_requested": sum(tally.reads_requested for tally in report.buckets.values()),
        "push_reasons": dict(sorted(report.reasons.items())),
        "not_in_catalog": report.not_in_catalog,
        "without_warehouse_level": without_level,
        "over_sold": over.skus,
        "units_at_risk": over.units_at_risk,
        "cancelled_units": over.cancelled_units,
    }
