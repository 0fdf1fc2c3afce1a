"""push_batch: the push queue's SKU values into items_batch calls, each recorded and scheduled for verification.

SQS delivers up to the template's PushBatchSize messages per invocation (after its batching window); the whole
batch is planned at once into the call slots open now, urgent rows first, and the rest waits in the push queue for
the next slot (docs/push.md). Only records that must come back are reported in ``batchItemFailures``; invalid
messages are dead-lettered with the field named.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import composition
from stocksync.dal import aws
from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.processing_times import DynamoProcessingTimes
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.messaging import DeadLetters, QueuePublisher
from stocksync.logic.push_planning import RejectedRecord, parse_push_records
from stocksync.logic.pushing import SOURCE, PushConfig, Pusher, PushOutcome
from stocksync.models.settings import Settings, get_settings
from stocksync.observability import logger, metrics, tracer

get_settings()  # validate the environment at cold start: a bad setting fails here, naming the variable


def _pusher(settings: Settings) -> Pusher:
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    return Pusher(
        PushConfig(
            catalog_id=settings.catalog_id,
            catalog_field=settings.catalog_field.value,
            requests_per_call=settings.push_requests_per_call,
            single_update_max_skus=settings.single_update_max_skus,
            single_update_after_seconds=settings.single_update_after_seconds,
            verify_delay_seconds=settings.verify_delay_seconds,
            feed_buckets=settings.feed_buckets,
        ),
        states=composition.sku_table(settings),
        catalog=graph_client_from_settings(settings),
        budget=DynamoCallBudget(
            dynamodb,
            settings.control_table,
            catalog_id=settings.catalog_id,
            calls_per_hour=settings.batch_calls_per_hour,
            burst=min(settings.push_burst_calls, settings.batch_calls_per_hour),
        ),
        batches=BatchesTable(dynamodb, settings.batches_table),
        verify_queue=QueuePublisher(sqs, settings.verify_queue_url),
        push_queue=QueuePublisher(sqs, settings.push_queue_url),
        dead_letters=composition.dead_letters(settings),
        confirmations=composition.sku_table(settings),
        # The first status check when the observed processing times say the batch is done (docs/push.md).
        verify_timing=DynamoProcessingTimes(dynamodb, settings.control_table, catalog_id=settings.catalog_id),
    )


def _reject(record: RejectedRecord, dead_letters: DeadLetters) -> bool:
    """Dead-letter an invalid message; False when even that failed (then SQS keeps the record)."""
    logger.error("invalid push message", extra={"reason": record.reason, "message_id": record.record_id})
    try:
        body: Any = json.loads(record.body)
    except json.JSONDecodeError:
        body = record.body
    try:
        dead_letters.send(source=SOURCE, reason=record.reason, body=body)
    except Exception:
        logger.exception("could not dead-letter an invalid push message", extra={"message_id": record.record_id})
        return False
    return True


def _report(outcome: PushOutcome, invalid: int) -> None:
    metrics.add_metric(name="ItemsPushed", unit=MetricUnit.Count, value=outcome.pushed + outcome.single_updates)
    metrics.add_metric(name="BatchCalls", unit=MetricUnit.Count, value=outcome.calls)
    metrics.add_metric(name="SingleProductUpdates", unit=MetricUnit.Count, value=outcome.single_updates)
    metrics.add_metric(name="PushesSuperseded", unit=MetricUnit.Count, value=outcome.superseded)
    metrics.add_metric(name="PushesAlreadyConfirmed", unit=MetricUnit.Count, value=outcome.already_confirmed)
    metrics.add_metric(name="PushesFeedServed", unit=MetricUnit.Count, value=outcome.feed_served)
    metrics.add_metric(name="PushesDeferred", unit=MetricUnit.Count, value=outcome.deferred)
    metrics.add_metric(name="UrgentRows", unit=MetricUnit.Count, value=outcome.urgent)
    metrics.add_metric(name="SlotsUsedInHour", unit=MetricUnit.Count, value=outcome.slots_used_in_hour)
    if outcome.calls:
        metrics.add_metric(name="OldestSentAge", unit=MetricUnit.Seconds, value=outcome.oldest_sent_age_seconds)
    if outcome.deferred:
        metrics.add_metric(name="OldestWaitingAge", unit=MetricUnit.Seconds, value=outcome.oldest_waiting_age_seconds)
    metrics.add_metric(name="ItemsDeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="InvalidInput", unit=MetricUnit.Count, value=invalid)
    for code, count in outcome.errors_by_code.items():
        with single_metric(name="PushErrors", unit=MetricUnit.Count, value=count) as metric:
            metric.add_dimension(name="ErrorCode", value=code)
    summary = {key: value for key, value in vars(outcome).items() if key != "failed_record_ids"}
    # One line per slot: rows sent, rows waiting, the oldest waiting row's age, slots used of the hour.
    logger.info("push finished", extra={**summary, "failed_records": len(outcome.failed_record_ids)})


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    dead_letters = composition.dead_letters(settings)
    received, rejected = parse_push_records((record.message_id, record.body) for record in SQSEvent(event).records)
    failed = [record.record_id for record in rejected if not _reject(record, dead_letters)]
    # The pusher's lease lapses at this invocation's deadline, so a run that dies never blocks the catalog longer.
    outcome = _pusher(settings).push(received, lease_seconds=context.get_remaining_time_in_millis() / 1000)
    _report(outcome, invalid=len(rejected))
    failed.extend(outcome.failed_record_ids)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}
