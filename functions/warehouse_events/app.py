"""warehouse_events: stock levels (I) and "order synced" notices that the merchant's warehouse puts on the bus.

The bus routes "Warehouse Stock Levels" and "Warehouse Orders Synced" events to this function's queue; each SQS
record carries one EventBridge event. A bad entry of a many-SKU event is dead-lettered alone, with its index; a bad
event (unknown detail-type, a malformed envelope) is dead-lettered whole; the rest of the batch is applied.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import warehouse_events as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
