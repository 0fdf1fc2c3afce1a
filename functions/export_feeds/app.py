"""export_feeds: on its schedule, writes the hybrid catalog's feed files to the feed bucket (docs/feeds.md).

The replace feed (static fields of every product, from ``source/products.csv``) and, for the feed buckets only,
the update feed with their stock. A source file without an ``id`` column fails the run with that reason.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import export_feeds as wiring
from stocksync.wiring.export_feeds import require_feed_bucket

require_feed_bucket(get_settings())  # validate the environment at cold start


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
