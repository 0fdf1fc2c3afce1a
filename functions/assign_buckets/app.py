"""assign_buckets: on its schedule, moves SKUs without an explicit bucket to the bucket their sales velocity calls
for (with hysteresis), and queues the moved SKUs for a recompute (their threshold changed).

A pass over a large catalog may take several runs: each resumes where the previous one stopped.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import assign_buckets as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
