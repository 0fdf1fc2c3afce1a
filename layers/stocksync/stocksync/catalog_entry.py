"""What the read_back and audit_catalog handlers (and ``stocksync audit``) call: the catalog read jobs, wired.

Two functions because their triggers differ: the read-back consumes the catalog read queue (SKUs recompute found
ambiguous, a few at a time, seconds after their push landed); the audit pages the whole catalog on its own slow
schedule and resumes where the previous run stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from stocksync import clock, composition
from stocksync.dal import aws
from stocksync.dal.audit_positions import AuditPosition, AuditPositions
from stocksync.dal.budget import DynamoCallBudget
from stocksync.errors import describe_validation_error
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.messaging import QueuePublisher
from stocksync.integrations.sqs_batch import handle_sqs_batch
from stocksync.logic.catalog_reads import CatalogCheck, ReadReport, audit_catalog, read_back
from stocksync.logic.pushing import queue_delay
from stocksync.models.recompute import AuditRequest, CatalogReadRequest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics

READ_BACK_SOURCE = "read_back"
AUDIT_SOURCE = "audit_catalog"
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
        skus=composition.sku_table(settings),
        recomputes=composition.recompute_queue(settings),
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


# ------------------------------------------------------------------------------------------------- read-back


def read_back_batch(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """One batch of the catalog read queue: every SKU read back in filtered reads; the batchItemFailures answer."""
    asked: dict[str, list[str]] = {}

    def collect(record: SQSRecord) -> None:
        request = CatalogReadRequest.model_validate_json(record.body)
        asked.setdefault(request.retailer_id, []).append(record.message_id)

    response = handle_sqs_batch(
        event,
        context,
        source=READ_BACK_SOURCE,
        handle_record=collect,
        dead_letters=composition.dead_letters(settings),
    )
    if not asked:
        return response
    failures = response.setdefault("batchItemFailures", [])
    check = catalog_check(settings)
    try:
        outcome = read_back(
            sorted(asked),
            catalog_id=settings.catalog_id,
            listing=graph_client_from_settings(settings),
            budget=read_budget(settings),
            check=check,
            now=clock.now,
        )
    except Exception:
        # A failed read settles nothing: every message comes back (then its queue's DLQ, alarmed).
        logger.exception("catalog read-back failed", extra={"skus": len(asked)})
        failures.extend({"itemIdentifier": mid} for ids in asked.values() for mid in ids)
        return response
    if outcome.waiting:
        # Out of read budget or throttled: ask again once a read is allowed (not counted as a receive).
        publisher = QueuePublisher(aws.client("sqs"), settings.catalog_read_queue_url)
        receipt = publisher.send(
            [CatalogReadRequest(retailer_id=rid).model_dump() for rid in outcome.waiting],
            delay_seconds=queue_delay(outcome.retry_after_seconds),
        )
        for body, _why in receipt.failed:
            failures.extend({"itemIdentifier": mid} for mid in asked[body["retailer_id"]])
        metrics.add_metric(name="CatalogReadsDeferred", unit=MetricUnit.Count, value=len(outcome.waiting))
    summary = {
        **report_reads(check.report, trigger="read_back"),
        "calls": outcome.calls,
        "deferred": len(outcome.waiting),
    }
    logger.info("catalog read-back finished", extra=summary)
    return response


# ------------------------------------------------------------------------------------------------- audit


def audit_event(event: Any, settings: Settings, *, time_left: Callable[[], float]) -> dict[str, Any]:
    """The schedule's input (or an operator's invoke). A bad input would fail the same way on every retry: it is
    logged naming the field and dead-lettered with the reason, not raised."""
    try:
        request = AuditRequest.model_validate(event)
    except ValidationError as error:
        reason = describe_validation_error(error)
        logger.error("invalid input", extra={"source": AUDIT_SOURCE, "reason": reason})
        metrics.add_metric(name="InvalidInput", unit=MetricUnit.Count, value=1)
        composition.dead_letters(settings).send(source=AUDIT_SOURCE, reason=reason, body=event)
        return {"rejected": reason}
    return run_audit(settings, time_left=time_left, dry_run=request.dry_run)


def run_audit(settings: Settings, *, time_left: Callable[[], float], dry_run: bool = False) -> dict[str, Any]:
    """One scheduled audit run: from where the last run stopped, until the catalog ends or a limit is reached."""
    if settings.catalog_reads_per_hour == 0:
        logger.info("catalog reads are off (CatalogReadsPerHour=0): no audit")
        return {"skipped": "catalog reads are off"}
    positions = AuditPositions(aws.client("dynamodb"), settings.control_table, catalog_id=settings.catalog_id)
    position = positions.load()
    started_at = position.started_at if position else clock.now()
    check = catalog_check(settings, dry_run=dry_run)
    outcome = audit_catalog(
        catalog_id=settings.catalog_id,
        listing=graph_client_from_settings(settings),
        budget=read_budget(settings),
        check=check,
        after=position.after if position else None,
        time_left=time_left,
        now=clock.now,
    )
    if not dry_run:
        positions.save(
            None
            if outcome.finished or outcome.resume_after is None
            else AuditPosition(outcome.resume_after, started_at)
        )
    if outcome.finished:
        metrics.add_metric(
            name="CatalogAuditSeconds", unit=MetricUnit.Seconds, value=(clock.now() - started_at).total_seconds()
        )
    summary = {
        **report_reads(check.report, trigger="audit"),
        "pages": outcome.pages,
        "finished": outcome.finished,
        "stopped_by": outcome.stopped_by,
        "dry_run": dry_run,
    }
    logger.info("catalog audit finished" if outcome.finished else "catalog audit paused", extra=summary)
    return summary
