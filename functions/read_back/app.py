"""read_back: reads back from the catalog the SKUs recompute found ambiguous, and settles them.

A SKU is ambiguous when one of the platform's own moves (an order placed on Facebook/Instagram, a restock) happened
while a push of ours was being applied, so nobody can know whether the overwrite erased it (docs/catalog.md). The
value read becomes the SKU's anchor and the SKU is recomputed, which pushes it if the catalog differs. Reads spend
their own hourly budget; out of it, or throttled, the SKUs wait in the queue. Bad messages go to the reasoned DLQ.
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
from stocksync.wiring import read_back as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
