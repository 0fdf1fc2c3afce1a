"""The parts several functions build alike, from the settings: tables, queues, the bus, the Graph client.

Nothing here holds a rule; it only connects ports to adapters (DynamoDB, SQS, EventBridge, the Graph API).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.ledger_table import DynamoLedger
from stocksync.dal.sku_table import SkuTable
from stocksync.integrations.messaging import BusPublisher, DeadLetters, QueuePublisher, RecomputeQueue
from stocksync.integrations.warehouse_outputs import WarehouseSinks
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


def dead_letters(settings: Settings) -> DeadLetters:
    return DeadLetters(aws.client("sqs"), settings.dead_letter_queue_url)


def bus(settings: Settings) -> BusPublisher:
    return BusPublisher(aws.client("events"), settings.event_bus_name)


def queue(url: str) -> QueuePublisher:
    return QueuePublisher(aws.client("sqs"), url)


def warehouse_sinks(settings: Settings, *, source: str) -> WarehouseSinks:
    """Where warehouse input goes besides the SKU table: the recompute queue and the reasoned dead letters."""
    return WarehouseSinks(recompute=recompute_queue(settings), dead_letters=dead_letters(settings), source=source)


def recompute_queue(settings: Settings) -> RecomputeQueue:
    """The recompute queue's publisher (changed SKUs in, a failed enqueue logged and counted)."""
    return RecomputeQueue(queue(settings.recompute_queue_url))


def time_left(context: Any) -> Callable[[], float]:
    """Seconds this invocation has left, for the jobs that stop (and hand over) before Lambda's deadline."""
    return lambda: context.get_remaining_time_in_millis() / 1000


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


def reject_event(settings: Settings, *, source: str, reason: str, event: Any) -> dict[str, Any]:
    """A scheduled (or operator's) input that is invalid would fail the same way on every retry: logged naming the
    field, counted and dead-lettered with the reason, not raised. The answer says why."""
    logger.error("invalid input", extra={"source": source, "reason": reason})
    metrics.add_metric(name="InvalidInput", unit="Count", value=1)
    dead_letters(settings).send(source=source, reason=reason, body=event)
    return {"rejected": reason}
