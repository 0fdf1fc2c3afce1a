"""reconcile's composition root (also ``stocksync reconcile``): P, C and K recounted from the ledger and the
counters that disagree repaired (logic/reconciliation.py), each repaired SKU recomputed."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.counter_audit import SkuCounterAudit
from stocksync.errors import describe_validation_error
from stocksync.logic.reconciliation import ReconcileReport, ReconcileRequest, reconcile
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "reconcile"


def run(settings: Settings, *, dry_run: bool = False) -> ReconcileReport:
    now = clock.now()
    return reconcile(
        SkuCounterAudit(aws.client("dynamodb"), settings.sku_table),
        parts.ledger(settings, now=now),
        parts.recompute_queue(settings),
        now=now,
        dry_run=dry_run,
    )


def report(outcome: ReconcileReport) -> dict[str, Any]:
    metrics.add_metric(name="CounterRepairs", unit="Count", value=0 if outcome.dry_run else len(outcome.repairs))
    metrics.add_metric(
        name="ReconcileSkipped", unit="Count", value=len(outcome.skipped_moved) + len(outcome.skipped_recent)
    )
    summary = outcome.summary()
    logger.info("reconciliation finished", extra=summary)
    return summary


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """The schedule's input (``{"dry_run": true}`` to count without repairing)."""
    try:
        request = ReconcileRequest.model_validate(event)
    except ValidationError as error:
        return parts.reject_event(settings, source=SOURCE, reason=describe_validation_error(error), event=event)
    return report(run(settings, dry_run=request.dry_run))
