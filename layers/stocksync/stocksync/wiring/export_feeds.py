"""export_feeds' composition root: the hybrid catalog's feed files written to the feed bucket (logic/feeds.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from stocksync.dal import aws
from stocksync.errors import ConfigurationError
from stocksync.integrations.feed_store import S3FeedStore
from stocksync.logic.feeds import FeedExporter, FeedReport
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts


def require_feed_bucket(settings: Settings) -> str:
    """Checked at cold start: without the feed bucket's name there is nowhere to write."""
    if not settings.feed_bucket_name:
        raise ConfigurationError("FEED_BUCKET", "export_feeds needs the feed bucket's name")
    return settings.feed_bucket_name


def build(settings: Settings) -> FeedExporter:
    skus = parts.sku_table(settings)
    return FeedExporter(
        store=S3FeedStore(aws.client("s3"), require_feed_bucket(settings)),
        skus=skus,
        confirmations=skus,
        feed_buckets=settings.feed_buckets,
        catalog_field=settings.catalog_field.value,
    )


def report(outcome: FeedReport) -> dict[str, Any]:
    metrics.add_metric(name="ReplaceFeedProducts", unit=MetricUnit.Count, value=outcome.replace_rows)
    metrics.add_metric(name="UpdateFeedSkus", unit=MetricUnit.Count, value=outcome.update_rows)
    metrics.add_metric(name="FeedValuesConfirmed", unit=MetricUnit.Count, value=outcome.confirmed)
    if not outcome.replace_written:
        logger.warning("no product master at source/products.csv in the feed bucket; replace feed not written")
    summary = parts.describe(outcome)
    logger.info("feeds exported", extra=summary)
    return summary


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """The schedule's event carries nothing the export needs."""
    return report(build(settings).export())
