"""reconcile: once a day (EventBridge Scheduler), recount P, C and K from the ledger and repair counters that disagree.

The same run is the command ``stocksync reconcile [--dry-run]``. With no fault it repairs nothing; each repair is
logged (retailer_id, counter, was, now), counted in the CounterRepairs metric, and its SKU is recomputed.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import reconcile as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
