"""order_events: order events from the merchant's own systems (the ``events`` order source) into the ledger.

The bus routes "Order Changed" events to this function's queue; each SQS record carries one EventBridge event.

A redelivered record (``ApproximateReceiveCount`` > 1) follows a try that failed somewhere, possibly after its
ledger transaction and before its recompute enqueue: the retry finds the order unchanged, so it enqueues the SKUs
of the order's rows again instead of nothing (a repeat recompute is harmless; SQS already told us, so it costs no
request). A first delivery enqueues only what it changed.
"""

from __future__ import annotations

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import clock, composition
from stocksync.errors import InvalidInputError
from stocksync.integrations.order_sources import merchant_order_event
from stocksync.integrations.sqs_batch import handle_sqs_batch
from stocksync.logic.ledger import LedgerPart
from stocksync.models.bus import BusEvent
from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer

DETAIL_TYPE = "Order Changed"
get_settings()  # validate the environment at cold start


def _handle(record: SQSRecord) -> None:
    settings = get_settings()
    event = BusEvent.model_validate_json(record.body)
    if event.detail_type != DETAIL_TYPE:
        raise InvalidInputError("detail-type", f"expected {DETAIL_TYPE!r}, got {event.detail_type!r}")
    now = clock.now()
    redelivered = int(record.attributes.approximate_receive_count or 1) > 1
    receipt = composition.order_ingest(settings, now=now).apply(
        [merchant_order_event(event.detail, observed_at=now)], unfinished=_every_row if redelivered else None
    )
    for _observation, error in receipt.rejected:
        raise error  # a bad order (e.g. its line items changed) goes to the DLQ with the reason
    composition.recompute_queue(settings).enqueue(receipt.skus_to_recompute, reason="order event")
    metrics.add_metric(name="OrderEventsApplied", unit="Count", value=receipt.applied)


def _every_row(_row: LedgerPart) -> bool:
    """On a redelivery, any unchanged row may be one the failed try wrote without enqueueing: enqueue it again."""
    return True


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_sqs_batch(
        event,
        context,
        source="order_events",
        handle_record=_handle,
        dead_letters=composition.dead_letters(get_settings()),
    )
