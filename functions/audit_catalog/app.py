"""audit_catalog: on a schedule (CatalogAuditRate), pages the whole catalog's stock and visibility and repairs drift.

Each SKU is compared with what the product expects the catalog to show; a difference (an edit in Commerce Manager,
another feed, a lost update, an overwrite that erased an order) is logged with both values, counted in the
CatalogDrift metric per bucket, anchored, and recomputed, which pushes it again. Items the product does not know
are reported, never created. A run that runs out of read budget, time or is throttled stores the listing's cursor
and the next run resumes there. The same run is ``stocksync audit [--dry-run]``.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import audit_catalog as wiring

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
