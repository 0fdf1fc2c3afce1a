"""verify_batch: checks one items_batch handle per verify queue message and settles the rows it carried.

Messages arrive delayed (the platform processes batches asynchronously); while a batch is still processing, the
function schedules its own next check, when the catalog's observed processing times say it should be done
(docs/push.md). Status calls spend their own hourly budget (StatusChecksPerHour): with none left, the check waits in
the verify queue. A message naming an unknown handle, or a status response that cannot be read, is dead-lettered
with the reason; a throttled or failed status call is retried.
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
from stocksync.wiring import verify_batch as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
