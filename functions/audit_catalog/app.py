"""audit_catalog: on a schedule (CatalogAuditRate), pages the whole catalog's stock and visibility and repairs drift.

Each SKU is compared with what the product expects the catalog to show; a difference (an edit in Commerce Manager,
another feed, a lost update, an overwrite that erased an order) is logged with both values, counted in the
CatalogDrift metric per bucket, anchored, and recomputed, which pushes it again. Items the product does not know
are reported, never created. A run that runs out of read budget, time or is throttled stores the listing's cursor
and the next run resumes there. The same run is ``stocksync audit [--dry-run]``.
"""

from __future__ import annotations

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.catalog_entry import audit_event
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

get_settings()  # validate the environment at cold start


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return audit_event(event, get_settings(), time_left=lambda: context.get_remaining_time_in_millis() / 1000)
