"""export_feeds: on its schedule, writes the hybrid catalog's feed files to the feed bucket (docs/feeds.md).

The replace feed (static fields of every product, from ``source/products.csv``) and, for the feed buckets only,
the update feed with their stock. A source file without an ``id`` column fails the run with that reason.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import composition
from stocksync.dal import aws
from stocksync.errors import ConfigurationError
from stocksync.integrations.feed_store import S3FeedStore
from stocksync.logic.feeds import FeedExporter
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

if not get_settings().feed_bucket_name:  # validate the environment at cold start
    raise ConfigurationError("FEED_BUCKET", "export_feeds needs the feed bucket's name")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    skus = composition.sku_table(settings)
    report = FeedExporter(
        store=S3FeedStore(aws.client("s3"), settings.feed_bucket_name),
        skus=skus,
        confirmations=skus,
        feed_buckets=settings.feed_buckets,
        catalog_field=settings.catalog_field.value,
    ).export()
    metrics.add_metric(name="ReplaceFeedProducts", unit=MetricUnit.Count, value=report.replace_rows)
    metrics.add_metric(name="UpdateFeedSkus", unit=MetricUnit.Count, value=report.update_rows)
    metrics.add_metric(name="FeedValuesConfirmed", unit=MetricUnit.Count, value=report.confirmed)
    if not report.replace_written:
        logger.warning("no product master at source/products.csv in the feed bucket; replace feed not written")
    summary = composition.describe(report)
    logger.info("feeds exported", extra=summary)
    return summary
