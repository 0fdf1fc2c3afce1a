"""push_batch's composition root: the push queue's SKU values into items_batch calls in the open call slots
(logic/pushing.py), each recorded and scheduled for verification; the rest waits in the push queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from stocksync.dal import aws
from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.processing_times import DynamoProcessingTimes
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.sqs_batch import WholeBatchProcessor
from stocksync.logic.push_planning import ReceivedPush, parse_push_record
from stocksync.logic.pushing import SOURCE, PushConfig, Pusher, PushOutcome
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts


def build(settings: Settings) -> Pusher:
    dynamodb = aws.client("dynamodb")
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
        states=parts.sku_table(settings),
        catalog=graph_client_from_settings(settings),
        budget=DynamoCallBudget(
            dynamodb,
            settings.control_table,
            catalog_id=settings.catalog_id,
            calls_per_hour=settings.batch_calls_per_hour,
            burst=min(settings.push_burst_calls, settings.batch_calls_per_hour),
        ),
        batches=BatchesTable(dynamodb, settings.batches_table),
        verify_queue=parts.queue(settings.verify_queue_url),
        push_queue=parts.queue(settings.push_queue_url),
        dead_letters=parts.dead_letters(settings),
        confirmations=parts.sku_table(settings),
        # The first status check when the observed processing times say the batch is done (docs/push.md).
        verify_timing=DynamoProcessingTimes(dynamodb, settings.control_table, catalog_id=settings.catalog_id),
    )


def report(outcome: PushOutcome, invalid: int) -> None:
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
    metrics.add_metric(name="AcceptedRowsHandedBack", unit=MetricUnit.Count, value=outcome.handed_over)
    metrics.add_metric(name="AcceptedRowsRecordedLate", unit=MetricUnit.Count, value=outcome.recorded_late)
    metrics.add_metric(name="LapsedBatchesSettled", unit=MetricUnit.Count, value=outcome.lapsed_batches_settled)
    metrics.add_metric(name="PushesInFlight", unit=MetricUnit.Count, value=outcome.in_flight)
    summary = {
        key: value for key, value in vars(outcome).items() if key not in {"failed_record_ids", "failure_reasons"}
    }
    # One line per slot: rows sent, rows waiting, the oldest waiting row's age, slots used of the hour.
    logger.info("push finished", extra={**summary, "failed_records": len(outcome.failed_record_ids)})


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """The batch planned at once into the open call slots; the ``batchItemFailures`` answer."""
    pusher = build(settings)
    outcomes: list[PushOutcome] = []

    def push(received: list[ReceivedPush]) -> dict[str, str]:
        # The pusher's lease lapses at this invocation's deadline, so a run that dies never blocks the catalog longer.
        time_left = parts.time_left(context)
        outcome = pusher.push(received, lease_seconds=time_left(), time_left=time_left)
        outcomes.append(outcome)
        # Each record to deliver again with why: on its last try, that is its dead letter's reason.
        return {record_id: outcome.failure_reasons.get(record_id, "") for record_id in outcome.failed_record_ids}

    processor: WholeBatchProcessor[ReceivedPush] = WholeBatchProcessor(
        source=SOURCE, dead_letters=parts.dead_letters(settings), handle_batch=push
    )
    response = processor.run(event, context, lambda record: parse_push_record(record.message_id, record.body))
    # No outcome when the run failed whole (its records come back, or on their last try are dead-lettered with the
    # exception's class and message): report an empty one rather than fail the answer that says so.
    report(outcomes[0] if outcomes else PushOutcome(), invalid=processor.invalid)
    return response
