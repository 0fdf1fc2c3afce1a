"""sweep_stock: the drift-catching sweep of one velocity bucket, on that bucket's schedule.

The schedule's input names the bucket (``{"bucket": "fast"}``); the sweep pages through the bucket's SKUs on the
bucket index and pushes only what differs from the catalog. When the Lambda's time runs short it sends the rest of
the bucket (``{"bucket": ..., "after": <last SKU done>, ...}``) to the sweep queue, which invokes this function
again: a 100,000-SKU bucket is one sweep in as many invocations as it needs. That sweep holds a lease on its bucket
from its first part to its last (the hand-over carries its run), so a schedule that fires meanwhile skips, and two
sweeps of a bucket never overlap.
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
from stocksync.wiring import sweep_stock as wiring
from stocksync.wiring.sweep_stock import require_sweep_queue

require_sweep_queue(get_settings())  # validate the environment at cold start


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
