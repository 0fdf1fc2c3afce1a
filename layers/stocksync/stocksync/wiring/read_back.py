"""read_back's composition root: a batch of the catalog read queue, every SKU read back in filtered reads
(logic/catalog_reads.py, ``read_back``); SKUs the read budget cannot serve yet wait in the queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync import clock
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor
from stocksync.logic.catalog_reads import read_back
from stocksync.logic.pushing import queue_delay
from stocksync.models.recompute import CatalogReadRequest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts
from stocksync.wiring.catalog_parts import catalog_check, read_budget, report_reads

SOURCE = "read_back"


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """One batch of the catalog read queue: every SKU read back in filtered reads; the batchItemFailures answer."""
    asked: dict[str, list[str]] = {}

    def collect(record: SQSRecord) -> None:
        request = CatalogReadRequest.model_validate_json(record.body)
        asked.setdefault(request.retailer_id, []).append(record.message_id)

    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    response = processor.run(event, context, collect)
    if not asked:
        return response
    failures = response.setdefault("batchItemFailures", [])
    check = catalog_check(settings)
    try:
        outcome = read_back(
            sorted(asked),
            catalog_id=settings.catalog_id,
            listing=graph_client_from_settings(settings),
            budget=read_budget(settings),
            check=check,
            now=clock.now,
        )
    except Exception:
        # A failed read settles nothing: every message comes back (then its queue's DLQ, alarmed).
        logger.exception("catalog read-back failed", extra={"skus": len(asked)})
        failures.extend({"itemIdentifier": mid} for ids in asked.values() for mid in ids)
        return response
    if outcome.waiting:
        # Out of read budget or throttled: ask again once a read is allowed (not counted as a receive).
        receipt = parts.queue(settings.catalog_read_queue_url).send(
            [CatalogReadRequest(retailer_id=rid).model_dump() for rid in outcome.waiting],
            delay_seconds=queue_delay(outcome.retry_after_seconds),
        )
        for body, _why in receipt.failed:
            failures.extend({"itemIdentifier": mid} for mid in asked[body["retailer_id"]])
        metrics.add_metric(name="CatalogReadsDeferred", unit=MetricUnit.Count, value=len(outcome.waiting))
    summary = {
        **report_reads(check.report, trigger="read_back"),
        "calls": outcome.calls,
        "deferred": len(outcome.waiting),
    }
    logger.info("catalog read-back finished", extra=summary)
    return response
