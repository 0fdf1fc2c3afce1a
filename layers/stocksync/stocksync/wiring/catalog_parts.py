"""What read_back and audit_catalog build alike: the read budget, the check of a read value against the SKU, and
the report of a run of reads (CatalogDrift per bucket, warnings naming what needs a look)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from stocksync.dal import aws
from stocksync.dal.budget import DynamoCallBudget
from stocksync.logic.catalog_reads import CatalogCheck, ReadReport
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

_NAMES_PER_LOG = 50


def read_budget(settings: Settings) -> DynamoCallBudget:
    return DynamoCallBudget(
        aws.client("dynamodb"),
        settings.control_table,
        catalog_id=settings.catalog_id,
        calls_per_hour=max(1, settings.catalog_reads_per_hour),
        kind="catalog-read",
    )


def catalog_check(settings: Settings, *, dry_run: bool = False) -> CatalogCheck:
    return CatalogCheck(
        skus=parts.sku_table(settings),
        recomputes=parts.recompute_queue(settings),
        mode=settings.deduction_mode,
        default_bucket=settings.default_bucket,
        dry_run=dry_run,
    )


def report_reads(report: ReadReport, *, trigger: str) -> dict[str, Any]:
    """Metrics (CatalogDrift per bucket), a warning naming what needs a look, and the JSON-friendly summary."""
    for bucket, count in sorted(report.drift_by_bucket().items()):
        per_bucket = EphemeralMetrics()
        per_bucket.add_dimension(name="bucket", value=bucket)
        per_bucket.add_dimension(name="trigger", value=trigger)
        per_bucket.add_metric(name="CatalogDrift", unit=MetricUnit.Count, value=count)
        per_bucket.flush_metrics()
    metrics.add_metric(name="CatalogSkusRead", unit=MetricUnit.Count, value=report.read)
    metrics.add_metric(name="CatalogAmbiguitiesSettled", unit=MetricUnit.Count, value=report.settled)
    if report.unknown_count:
        metrics.add_metric(name="CatalogUnknownSkus", unit=MetricUnit.Count, value=report.unknown_count)
        logger.warning(
            "catalog items the product does not know (left as they are)",
            extra={"count": report.unknown_count, "retailer_ids": report.unknown[:_NAMES_PER_LOG]},
        )
    if report.unparsable:
        metrics.add_metric(name="CatalogValuesUnparsable", unit=MetricUnit.Count, value=len(report.unparsable))
    if report.missing:
        logger.warning("SKUs missing from the catalog", extra={"retailer_ids": report.missing[:_NAMES_PER_LOG]})
    return report.summary()
