"""verify_batch's composition root: one status check per verify queue message, the rows it carried settled
(logic/verification.py), the next check scheduled while the batch is still processing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync.dal import aws
from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.processing_times import DynamoProcessingTimes
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor
from stocksync.logic.latency import summarize
from stocksync.logic.verification import SOURCE, Verifier, VerifyConfig, VerifyOutcome
from stocksync.models.push import VerifyMessage
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts


def build(settings: Settings) -> Verifier:
    dynamodb = aws.client("dynamodb")
    skus = parts.sku_table(settings)
    return Verifier(
        VerifyConfig(
            catalog_id=settings.catalog_id,
            recheck_delay_seconds=settings.verify_delay_seconds,
            max_checks=settings.verify_max_checks,
        ),
        batches=BatchesTable(dynamodb, settings.batches_table),
        status=graph_client_from_settings(settings),
        states=skus,
        confirmations=skus,
        push_queue=parts.queue(settings.push_queue_url),
        verify_queue=parts.queue(settings.verify_queue_url),
        dead_letters=parts.dead_letters(settings),
        recompute_queue=parts.queue(settings.recompute_queue_url),
        status_budget=DynamoCallBudget(
            dynamodb,
            settings.control_table,
            catalog_id=settings.catalog_id,
            calls_per_hour=settings.status_checks_per_hour,
            kind="status-check",
        ),
        processing_times=DynamoProcessingTimes(dynamodb, settings.control_table, catalog_id=settings.catalog_id),
    )


def report(outcome: VerifyOutcome) -> None:
    metrics.add_metric(name="ItemsConfirmed", unit=MetricUnit.Count, value=outcome.confirmed)
    metrics.add_metric(name="StaleValuesCorrected", unit=MetricUnit.Count, value=outcome.stale_corrected)
    metrics.add_metric(name="ItemsRetried", unit=MetricUnit.Count, value=outcome.retried)
    metrics.add_metric(name="ItemsDeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="VerifyRechecks", unit=MetricUnit.Count, value=outcome.rechecks)
    if outcome.status_checks_deferred:
        metrics.add_metric(name="StatusChecksDeferred", unit=MetricUnit.Count, value=outcome.status_checks_deferred)
    if outcome.processing_lower_seconds is not None and outcome.processing_upper_seconds is not None:
        # The middle of the bracket the checks found (the batch's processing time lies in (lower, upper]).
        middle = (outcome.processing_lower_seconds + outcome.processing_upper_seconds) / 2
        metrics.add_metric(name="BatchProcessingSeconds", unit=MetricUnit.Seconds, value=middle)
    if outcome.gave_up:
        metrics.add_metric(name="VerifyGaveUp", unit=MetricUnit.Count, value=1)
    if outcome.batch_latency_seconds is not None:
        metrics.add_metric(name="BatchLatency", unit=MetricUnit.Seconds, value=outcome.batch_latency_seconds)
    latency = summarize(outcome.latencies_seconds)
    if latency is not None:
        for name, value in (("P50", latency.p50), ("P95", latency.p95), ("P99", latency.p99)):
            metrics.add_metric(name=f"ChangeToConfirmLatency{name}", unit=MetricUnit.Seconds, value=value)
    for code, count in outcome.errors_by_code.items():
        with single_metric(name="ItemErrors", unit=MetricUnit.Count, value=count) as metric:
            metric.add_dimension(name="ErrorCode", value=code)
    summary = {key: value for key, value in vars(outcome).items() if key != "latencies_seconds"}
    logger.info(
        "batch checked", extra={**summary, "change_to_confirm": latency.as_dict() if latency is not None else None}
    )


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """Each message checks one batch handle; the ``batchItemFailures`` answer."""
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    verifier = build(settings)

    def verify(record: SQSRecord) -> None:
        report(verifier.verify(VerifyMessage.model_validate_json(record.body)))

    return processor.run(event, context, verify)
