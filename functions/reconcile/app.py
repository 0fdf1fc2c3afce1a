"""reconcile: once a day (EventBridge Scheduler), recount P, C and K from the ledger and repair counters that disagree.

The same run is the command ``stocksync reconcile [--dry-run]``. With no fault it repairs nothing; each repair is
logged (retailer_id, counter, was, now), counted in the CounterRepairs metric, and its SKU is recomputed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import clock, composition
from stocksync.dal import aws
from stocksync.dal.counter_audit import SkuCounterAudit
from stocksync.logic.reconciliation import ReconcileRequest, reconcile
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

get_settings()  # validate the environment at cold start


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReconcileRequest.model_validate(event)
    settings = get_settings()
    now = clock.now()
    report = reconcile(
        SkuCounterAudit(aws.client("dynamodb"), settings.sku_table),
        composition.ledger(settings, now=now),
        composition.recompute_queue(settings),
        now=now,
        dry_run=request.dry_run,
    )
    metrics.add_metric(name="CounterRepairs", unit="Count", value=0 if report.dry_run else len(report.repairs))
    metrics.add_metric(
        name="ReconcileSkipped", unit="Count", value=len(report.skipped_moved) + len(report.skipped_recent)
    )
    summary = report.summary()
    logger.info("reconciliation finished", extra=summary)
    return summary
