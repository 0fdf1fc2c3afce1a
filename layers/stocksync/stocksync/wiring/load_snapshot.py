"""load_snapshot's composition root: one snapshot queue message (an S3 "Object Created" event, or a load's
continuation) loaded from where it stands until the object ends or the invocation's time runs short
(logic/snapshot_load.py), the continuation sent back to the same queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync.dal import aws
from stocksync.dal.snapshot_source import S3SnapshotSource
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor
from stocksync.integrations.warehouse_outputs import SnapshotQueueHandOver
from stocksync.logic.snapshot_load import SnapshotLoader, SnapshotPosition, SnapshotReport, position_from_message
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "load_snapshot"
# Time kept back for writing the last group of levels and queueing the continuation.
RESERVE_SECONDS = 20.0


def build(settings: Settings, record: SQSRecord, context: Any) -> SnapshotLoader:
    return SnapshotLoader(
        S3SnapshotSource(aws.client("s3")),
        parts.sku_table(settings),
        parts.warehouse_sinks(settings, source=SOURCE),
        SnapshotQueueHandOver(aws.client("sqs"), record.event_source_arn),
        default_bucket=settings.default_bucket,
        time_left=parts.time_left(context),
        reserve_seconds=RESERVE_SECONDS,
    )


def report(position: SnapshotPosition, outcome: SnapshotReport) -> None:
    metrics.add_metric(name="SnapshotLines", unit="Count", value=outcome.lines)
    metrics.add_metric(name="WarehouseLevelsStored", unit="Count", value=outcome.stored)
    if outcome.superseded:
        logger.warning("snapshot load stopped: the object changed", extra={"reason": outcome.superseded})
    logger.info("snapshot load step finished", extra={"object": position.location, **outcome.summary()})


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """One message per invocation (batch size 1): a load uses the whole invocation."""
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))

    def load(record: SQSRecord) -> None:
        position = position_from_message(record.body)
        report(position, build(settings, record, context).load(position))

    return processor.run(event, context, load)
