"""verify_batch: checks one items_batch handle per verify queue message and settles the rows it carried.

Messages arrive delayed (the platform processes batches asynchronously); while a batch is still processing, the
function schedules its own next check, when the catalog's observed processing times say it should be done
(docs/push.md). Status calls spend their own hourly budget (StatusChecksPerHour): with none left, the check waits in
the verify queue. A message naming an unknown handle, or a status response that cannot be read, is dead-lettered
with the reason; a throttled or failed status call is retried.
"""

from __future__ import annotations

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import composition
from stocksync.dal import aws
from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.processing_times import DynamoProcessingTimes
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.messaging import QueuePublisher
from stocksync.integrations.sqs_batch import handle_sqs_batch
from stocksync.logic.latency import summarize
from stocksync.logic.verification import SOURCE, Verifier, VerifyConfig, VerifyOutcome
from stocksync.models.push import VerifyMessage
from stocksync.models.settings import Settings, get_settings
from stocksync.observability import logger, metrics, tracer

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


def _verifier(settings: Settings) -> Verifier:
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    skus = composition.sku_table(settings)
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
        push_queue=QueuePublisher(sqs, settings.push_queue_url),
        verify_queue=QueuePublisher(sqs, settings.verify_queue_url),
        dead_letters=composition.dead_letters(settings),
        recompute_queue=QueuePublisher(sqs, settings.recompute_queue_url),
        status_budget=DynamoCallBudget(
            dynamodb,
            settings.control_table,
            catalog_id=settings.catalog_id,
            calls_per_hour=settings.status_checks_per_hour,
            kind="status-check",
        ),
        processing_times=DynamoProcessingTimes(dynamodb, settings.control_table, catalog_id=settings.catalog_id),
    )


def _report(outcome: VerifyOutcome) -> None:
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


def _handle(record: SQSRecord) -> None:
    message = VerifyMessage.model_validate_json(record.body)
    _report(_verifier(get_settings()).verify(message))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_sqs_batch(
        event,
        context,
        source=SOURCE,
        handle_record=_handle,
        dead_letters=composition.dead_letters(get_settings()),
    )
