"""Builds the product's parts from the settings, so handlers stay thin and tests can build the same parts.

Nothing here holds a rule; it only connects ports to adapters (DynamoDB, SQS, EventBridge, the Graph API).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.control_table import ControlTable
from stocksync.dal.ledger_table import DynamoLedger
from stocksync.dal.sku_table import SkuTable
from stocksync.integrations.messaging import BusPublisher, DeadLetters, QueuePublisher, recompute_messages
from stocksync.logic.order_ingest import OrderIngest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics


def ledger(settings: Settings, *, now: datetime | None = None) -> DynamoLedger:
    return DynamoLedger(
        aws.client("dynamodb"),
        orders_table=settings.orders_table,
        sku_table=settings.sku_table,
        now=now or clock.now(),
    )


def order_ingest(settings: Settings, *, now: datetime | None = None) -> OrderIngest:
    moment = now or clock.now()
    return OrderIngest(ledger(settings, now=moment), now=moment)


def sku_table(settings: Settings) -> SkuTable:
    return SkuTable(aws.client("dynamodb"), settings.sku_table)


def control_table(settings: Settings) -> ControlTable:
    return ControlTable(aws.client("dynamodb"), settings.control_table)


def dead_letters(settings: Settings) -> DeadLetters:
    return DeadLetters(aws.client("sqs"), settings.dead_letter_queue_url)


def bus(settings: Settings) -> BusPublisher:
    return BusPublisher(aws.client("events"), settings.event_bus_name)


class RecomputeQueue:
    """Enqueues SKUs whose inputs changed. A failed enqueue is logged and counted, not raised: the counts are
    already committed, and the bucket sweep recomputes every SKU anyway (the drift catcher)."""

    def __init__(self, settings: Settings) -> None:
        self._publisher = QueuePublisher(aws.client("sqs"), settings.recompute_queue_url)

    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None:
        messages = recompute_messages(retailer_ids, reason=reason)
        if not messages:
            return
        receipt = self._publisher.send(messages)
        metrics.add_metric(name="RecomputesEnqueued", unit="Count", value=receipt.sent)
        if receipt.failed:
            metrics.add_metric(name="RecomputeEnqueueFailures", unit="Count", value=len(receipt.failed))
            logger.error(
                "recompute enqueue failed; the next sweep will catch these SKUs",
                extra={"failed": [(body["retailer_id"], why) for body, why in receipt.failed]},
            )


def describe(obj: Any) -> dict[str, Any]:
    """A dataclass report as a JSON-friendly dict (sets become sorted lists, times ISO 8601) for handler return
    values: Lambda must serialise what a handler returns, or the invocation fails after the work was done."""
    result: dict[str, Any] = {}
    for key, value in vars(obj).items():
        if isinstance(value, set):
            result[key] = sorted(value)
        elif isinstance(value, datetime):
            result[key] = value.isoformat()
        else:
            result[key] = value
    return result
