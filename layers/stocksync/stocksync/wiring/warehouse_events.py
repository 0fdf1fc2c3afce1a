"""warehouse_events' composition root: "Warehouse Stock Levels" and "Warehouse Orders Synced" events, one per SQS
record, into the SKU table and the ledger (logic/warehouse_input.py); the SKUs they change to the recompute queue.
A bad entry of a many-SKU event is dead-lettered alone, with its index; a bad event whole."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync import clock
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor
from stocksync.logic.warehouse_input import WarehouseInput, WarehouseReceipt
from stocksync.models.bus import BusEvent
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "warehouse_events"


def build(settings: Settings) -> WarehouseInput:
    return WarehouseInput(
        levels=parts.sku_table(settings),
        ingest=parts.order_ingest(settings, now=clock.now()),
        sinks=parts.warehouse_sinks(settings, source=SOURCE),
        default_bucket=settings.default_bucket,
    )


def report(receipt: WarehouseReceipt) -> None:
    metrics.add_metric(name="WarehouseLevelsStored", unit="Count", value=receipt.levels.stored)
    metrics.add_metric(name="WarehouseLevelsStale", unit="Count", value=receipt.levels.stale)
    metrics.add_metric(name="WarehouseOrdersSynced", unit="Count", value=receipt.orders_synced)
    if receipt.levels.superseded_in_event:
        metrics.add_metric(name="WarehouseLevelsDuplicated", unit="Count", value=receipt.levels.superseded_in_event)
        logger.warning(
            "a levels event listed SKUs more than once; the newest entry of each was applied",
            extra={"superseded_in_event": receipt.levels.superseded_in_event},
        )


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))

    def apply(record: SQSRecord) -> None:
        # Built per record: the order ingest stamps what it writes with the time the record is applied.
        report(build(settings).apply(BusEvent.model_validate_json(record.body)))

    return processor.run(event, context, apply)
