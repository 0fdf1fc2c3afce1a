"""SQS batch handling shared by every queue-triggered function: partial failures, and bad input dead-lettered.

Two kinds of failure are kept apart on purpose. Bad input (a validation error) will never succeed: it is logged
with the field that was wrong, sent to the reasoned dead-letter queue, and counted as handled so SQS deletes it and
the rest of the batch goes on. Anything else (throttling, a timeout) may succeed later: the record is reported as a
batch item failure and SQS redelivers it (then redrives it to the queue's own DLQ after maxReceiveCount).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from stocksync.errors import InvalidInputError, describe_validation_error
from stocksync.integrations.messaging import DeadLetters
from stocksync.observability import logger, metrics


def rejection_reason(error: Exception) -> str | None:
    """The reason to dead-letter ``error`` with, or None when it is not a bad-input error."""
    if isinstance(error, ValidationError):
        return describe_validation_error(error)
    if isinstance(error, InvalidInputError):
        return str(error)
    if isinstance(error, json.JSONDecodeError):
        return f"body: not valid JSON ({error.msg} at position {error.pos})"
    return None


def handle_sqs_batch(
    event: dict[str, Any],
    context: Any,
    *,
    source: str,
    handle_record: Callable[[SQSRecord], None],
    dead_letters: DeadLetters,
) -> dict[str, Any]:
    """Run ``handle_record`` on every record; return the ``batchItemFailures`` response SQS expects."""

    def record_handler(record: SQSRecord) -> None:
        try:
            handle_record(record)
        except Exception as error:
            reason = rejection_reason(error)
            if reason is None:
                raise
            logger.error("invalid input", extra={"source": source, "reason": reason, "message_id": record.message_id})
            metrics.add_metric(name="InvalidInput", unit="Count", value=1)
            dead_letters.send(source=source, reason=reason, body=_body_for_dead_letter(record.body))

    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def _body_for_dead_letter(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body
