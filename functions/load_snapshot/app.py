"""load_snapshot: bulk warehouse levels from a CSV or JSON lines object put in the snapshot bucket.

S3 sends "Object Created" to EventBridge, a rule puts it on the snapshot queue, and this function loads the object
from its first line. When the invocation is about to run out of time, the load sends its continuation (bucket, key,
ETag, byte offset, line number) back to the same queue and the next invocation goes on from there
(logic/snapshot_load.py). One message per invocation (batch size 1): a load uses the whole invocation.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import load_snapshot as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
