"""Builds the product's parts from the settings, so handlers stay thin and tests can build the same parts.

Nothing here holds a rule; it only connects ports to adapters (DynamoDB, SQS, EventBridge, the Graph API).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.control_table import ControlTable
from stocksync.dal.ledger_table import DynamoLedger
from stocksync.dal.sku_table import SkuTable
from stocksync.integrations.messaging import BusPublisher, DeadLetters, QueuePublisher, RecomputeQueue
from stocksync.integrations.warehouse_outputs import WarehouseSinks
from stocksync.logic.order_ingest import OrderIngest
from stocksync.models.settings import Settings


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


def warehouse_sinks(settings: Settings, *, source: str) -> WarehouseSinks:
    """Where warehouse input goes besides the SKU table: the recompute queue and the reasoned dead letters."""
    return WarehouseSinks(recompute=recompute_queue(settings), dead_letters=dead_letters(settings), source=source)


def recompute_queue(settings: Settings) -> RecomputeQueue:
    """The recompute queue's publisher (changed SKUs in, a failed enqueue logged and counted)."""
    return RecomputeQueue(QueuePublisher(aws.client("sqs"), settings.recompute_queue_url))


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
