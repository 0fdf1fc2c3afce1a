"""order_events: order events from the merchant's own systems (the ``events`` order source) into the ledger.

The bus routes "Order Changed" events to this function's queue; each SQS record carries one EventBridge event.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync import clock, composition
from stocksync.errors import InvalidInputError
from stocksync.integrations.order_sources import merchant_order_event
from stocksync.integrations.sqs_batch import handle_sqs_batch
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
    receipt = composition.order_ingest(settings, now=now).apply([merchant_order_event(event.detail, observed_at=now)])
    for _observation, error in receipt.rejected:
        raise error  # a bad order (e.g. its line items changed) goes to the DLQ with the reason
    composition.RecomputeQueue(settings).enqueue(receipt.changed_skus, reason="order event")
    metrics.add_metric(name="OrderEventsApplied", unit="Count", value=receipt.applied)


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
