"""audit_catalog's composition root (also ``stocksync audit``): one run of the catalog audit
(logic/catalog_reads.py, ``audit_catalog``), resuming where the last run stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.audit_positions import AuditPosition, AuditPositions, AuditResult, AuditResults
from stocksync.errors import describe_validation_error
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.logic.catalog_reads import audit_catalog
from stocksync.models.recompute import AuditRequest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts
from stocksync.wiring.catalog_parts import catalog_check, read_budget, report_reads

SOURCE = "audit_catalog"


def handle(event: Any, context: Any, settings: Settings) -> dict[str, Any]:
    """The schedule's input (or an operator's invoke). A bad input would fail the same way on every retry: it is
    logged naming the field and dead-lettered with the reason, not raised."""
    try:
        request = AuditRequest.model_validate(event)
    except ValidationError as error:
        return parts.reject_event(settings, source=SOURCE, reason=describe_validation_error(error), event=event)
    return run_audit(settings, time_left=parts.time_left(context), dry_run=request.dry_run)


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
    if not dry_run:
        results = AuditResults(aws.client("dynamodb"), settings.control_table, catalog_id=settings.catalog_id)
        results.save(AuditResult(ran_at=clock.now(), pass_started_at=started_at, summary=summary))
    logger.info("catalog audit finished" if outcome.finished else "catalog audit paused", extra=summary)
    return summary
