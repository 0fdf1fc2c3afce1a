"""recompute_stock's composition root: one batch of the recompute queue into pushes (logic/recompute_batch.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync import clock
from stocksync.integrations.recompute_io import report_run
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.logic.recompute_batch import RecomputeQueueBatch
from stocksync.models.settings import Settings
from stocksync.observability import logger
from stocksync.wiring import parts
from stocksync.wiring.recompute_parts import stock_recompute

SOURCE = "recompute_stock"


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """One batch of the recompute queue; returns the ``batchItemFailures`` answer."""
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    skus = parts.sku_table(settings)
    recompute = stock_recompute(settings, skus, now=clock.now())
    batch = RecomputeQueueBatch(skus, recompute, buckets=settings.buckets.keys())
    batch.prefetch(record.get("body", "") for record in event.get("Records", []))

    def handle_record(record: SQSRecord) -> None:
        batch.handle(record.message_id, record.body, redelivered=redelivered(record))

    response = processor.run(event, context, handle_record)
    summary = report_run(recompute.finish(), trigger="queue")
    # A claimed push (or a read) that could not be sent: its messages come back, and the redelivery sends it.
    failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
    for message_id in batch.message_ids(recompute.unsent):
        if message_id not in failed:
            failed.add(message_id)
            response.setdefault("batchItemFailures", []).append({"itemIdentifier": message_id})
    logger.info("recompute batch finished", extra=summary)
    return response
