"""order_events' composition root: "Order Changed" events from the merchant's own systems (the ``events`` order
source), one per SQS record, into the ledger (logic/order_ingest.py); the SKUs they change to the recompute queue.

A redelivered record follows a try that failed somewhere, possibly after its ledger transaction and before its
recompute enqueue: the retry finds the order unchanged, so it enqueues the SKUs of the order's rows again instead of
nothing (a repeat recompute is harmless; SQS already told us, so it costs no request). A first delivery enqueues
only what it changed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync import clock
from stocksync.errors import InvalidInputError
from stocksync.integrations.order_sources import merchant_order_event
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.logic.ledger import LedgerPart
from stocksync.models.bus import BusEvent
from stocksync.models.settings import Settings
from stocksync.observability import metrics
from stocksync.wiring import parts

SOURCE = "order_events"
DETAIL_TYPE = "Order Changed"


def _every_row(_row: LedgerPart) -> bool:
    """On a redelivery, any unchanged row may be one the failed try wrote without enqueueing: enqueue it again."""
    return True


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    recompute_queue = parts.recompute_queue(settings)

    def apply(record: SQSRecord) -> None:
        bus_event = BusEvent.model_validate_json(record.body)
        if bus_event.detail_type != DETAIL_TYPE:
            raise InvalidInputError("detail-type", f"expected {DETAIL_TYPE!r}, got {bus_event.detail_type!r}")
        now = clock.now()
        receipt = parts.order_ingest(settings, now=now).apply(
            [merchant_order_event(bus_event.detail, observed_at=now)],
            unfinished=_every_row if redelivered(record) else None,
        )
        for _observation, error in receipt.rejected:
            raise error  # a bad order (e.g. a split order's line items changed) goes to the DLQ with the reason
        recompute_queue.enqueue(receipt.skus_to_recompute, reason="order event")
        metrics.add_metric(name="OrderEventsApplied", unit="Count", value=receipt.applied)

    return processor.run(event, context, apply)
