"""warehouse_events: stock levels (I) and "order synced" notices that the merchant's warehouse puts on the bus.

The bus routes "Warehouse Stock Levels" and "Warehouse Orders Synced" events to this function's queue; each SQS
record carries one EventBridge event. A bad entry of a many-SKU event is dead-lettered alone, with its index; a bad
event (unknown detail-type, a malformed envelope) is dead-lettered whole; the rest of the batch is applied.
"""

from __future__ import annotations

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import clock, composition
from stocksync.integrations.sqs_batch import handle_sqs_batch
from stocksync.logic.warehouse_input import WarehouseInput
from stocksync.models.bus import BusEvent
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

SOURCE = "warehouse_events"
get_settings()  # validate the environment at cold start


def _handle(record: SQSRecord) -> None:
    settings = get_settings()
    event = BusEvent.model_validate_json(record.body)
    warehouse = WarehouseInput(
        levels=composition.sku_table(settings),
        ingest=composition.order_ingest(settings, now=clock.now()),
        sinks=composition.warehouse_sinks(settings, source=SOURCE),
        default_bucket=settings.default_bucket,
    )
    receipt = warehouse.apply(event)
    metrics.add_metric(name="WarehouseLevelsStored", unit="Count", value=receipt.levels.stored)
    metrics.add_metric(name="WarehouseLevelsStale", unit="Count", value=receipt.levels.stale)
    metrics.add_metric(name="WarehouseOrdersSynced", unit="Count", value=receipt.orders_synced)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_sqs_batch(
        event,
        context,
        source=SOURCE,
        handle_record=_handle,
        dead_letters=composition.dead_letters(get_settings()),
    )
