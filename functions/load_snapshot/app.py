"""load_snapshot: bulk warehouse levels from a CSV or JSON lines object put in the snapshot bucket.

S3 sends "Object Created" to EventBridge, a rule puts it on the snapshot queue, and this function loads the object
from its first line. When the invocation is about to run out of time, the load sends its continuation (bucket, key,
ETag, byte offset, line number) back to the same queue and the next invocation goes on from there
(logic/snapshot_load.py). One message per invocation (batch size 1): a load uses the whole invocation.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import composition
from stocksync.dal import aws
from stocksync.dal.snapshot_source import S3SnapshotSource
from stocksync.integrations.sqs_batch import handle_sqs_batch
from stocksync.integrations.warehouse_outputs import SnapshotQueueHandOver
from stocksync.logic.snapshot_load import SnapshotLoader, position_from_message
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

SOURCE = "load_snapshot"
# Time kept back for writing the last group of levels and queueing the continuation.
RESERVE_SECONDS = 20.0
get_settings()  # validate the environment at cold start


def _loader(record: SQSRecord, context: LambdaContext) -> SnapshotLoader:
    settings = get_settings()
    return SnapshotLoader(
        S3SnapshotSource(aws.client("s3")),
        composition.sku_table(settings),
        composition.warehouse_sinks(settings, source=SOURCE),
        SnapshotQueueHandOver(aws.client("sqs"), record.event_source_arn),
        default_bucket=settings.default_bucket,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        reserve_seconds=RESERVE_SECONDS,
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def handle(record: SQSRecord) -> None:
        position = position_from_message(record.body)
        report = _loader(record, context).load(position)
        metrics.add_metric(name="SnapshotLines", unit="Count", value=report.lines)
        metrics.add_metric(name="WarehouseLevelsStored", unit="Count", value=report.stored)
        if report.superseded:
            logger.warning("snapshot load stopped: the object changed", extra={"reason": report.superseded})
        logger.info("snapshot load step finished", extra={"object": position.location, **report.summary()})

    return handle_sqs_batch(
        event,
        context,
        source=SOURCE,
        handle_record=handle,
        dead_letters=composition.dead_letters(get_settings()),
    )
