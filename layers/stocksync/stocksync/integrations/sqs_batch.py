"""SQS batches for every queue-triggered function: Powertools' BatchProcessor, taught to dead-letter bad input.

Two kinds of failure are kept apart on purpose. Bad input (a validation error) will never succeed: it is logged
with the field that was wrong, sent to the reasoned dead-letter queue, and counted as handled so SQS deletes it and
the rest of the batch goes on. Anything else (throttling, a timeout) may succeed later: the record is reported as a
batch item failure and SQS redelivers it. On its last try (the ``MAX_RECEIVES``-th receive, after which SQS would
redrive it to the queue's own DLQ, where nothing says why), a record that still fails is dead-lettered to the
reasoned queue like bad input, with the exception's class and message, so every dead letter carries its reason.
Both are BatchProcessor's own extension points (``failure_handler``, ``process``), so partial responses, the
all-failed rule and the record data classes stay Powertools'.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from stocksync.errors import InvalidInputError, describe_validation_error
from stocksync.integrations.messaging import DeadLetters
from stocksync.observability import logger, metrics

T = TypeVar("T")

# Every queue a function consumes redrives a record to its own DLQ after this many receives (template.yaml,
# RedrivePolicy.maxReceiveCount; tests/integration/test_template_resources.py keeps them equal).
MAX_RECEIVES = 5
# An unexpected error's message is cut to this in a dead letter's reason: enough to name the cause.
MAX_REASON_CHARACTERS = 500


def rejection_reason(error: BaseException | None) -> str | None:
    """The reason to dead-letter ``error`` with, or None when it is not a bad-input error."""
    if isinstance(error, ValidationError):
        return describe_validation_error(error)
    if isinstance(error, InvalidInputError):
        return str(error)
    if isinstance(error, json.JSONDecodeError):
        return f"body: not valid JSON ({error.msg} at position {error.pos})"
    return None


def redelivered(record: SQSRecord) -> bool:
    """SQS delivered this record before (a try that failed somewhere, perhaps half-way)."""
    return int(record.attributes.approximate_receive_count or 1) > 1


def last_try(record: SQSRecord) -> bool:
    """If this try fails too, SQS moves the record to the queue's own DLQ (no reason travels with it)."""
    return int(record.attributes.approximate_receive_count or 1) >= MAX_RECEIVES


def unexpected_reason(error: BaseException) -> str:
    message = " ".join(str(error).split())[:MAX_REASON_CHARACTERS]
    return f"unexpected {type(error).__name__} on the last of {MAX_RECEIVES} tries: {message}"


class ReasonedBatchProcessor(BatchProcessor):
    """A BatchProcessor for SQS whose bad-input failures are dead-lettered with their reason instead of retried."""

    def __init__(self, *, source: str, dead_letters: DeadLetters) -> None:
        super().__init__(event_type=EventType.SQS)
        self.source = source
        self.invalid = 0  # records dead-lettered as bad input in this batch
        self._dead_letters = dead_letters

    def run(self, event: dict[str, Any], context: Any, handle_record: Callable[[SQSRecord], Any]) -> dict[str, Any]:
        """Run ``handle_record`` on every record; the ``batchItemFailures`` response SQS expects."""
        response: PartialItemFailureResponse = process_partial_response(
            event=event, record_handler=handle_record, processor=self, context=context
        )
        return dict(response)

    def failure_handler(self, record: Any, exception: Any) -> Any:
        reason = rejection_reason(exception[1])
        invalid = reason is not None
        if invalid:
            logger.error(
                "invalid input", extra={"source": self.source, "reason": reason, "message_id": record.message_id}
            )
            metrics.add_metric(name="InvalidInput", unit="Count", value=1)
        elif last_try(record):
            reason = unexpected_reason(exception[1])
            logger.error(
                "failed on its last try",
                extra={"source": self.source, "reason": reason, "message_id": record.message_id},
                exc_info=exception,
            )
            metrics.add_metric(name="FailedOnLastTry", unit="Count", value=1)
        else:
            return super().failure_handler(record, exception)
        try:
            self._dead_letters.send(
                source=self.source,
                reason=reason,
                body=_body_for_dead_letter(record.body),
                queue_arn=record.event_source_arn or None,
            )
        except Exception:
            logger.exception("could not dead-letter the record", extra={"message_id": record.message_id})
            # SQS keeps it: the next try dead-letters it (after a last try, the queue's own DLQ has it).
            return super().failure_handler(record, sys.exc_info())
        if invalid:
            self.invalid += 1
        return self.success_handler(record, None)


class WholeBatchProcessor(ReasonedBatchProcessor, Generic[T]):
    """Records parsed one by one (bad ones dead-lettered), then handled together in one call that names the
    records to deliver again: for a use case that plans the whole batch at once (push_batch's call slots).

    The batch step names the records to deliver again, with a reason each when it returns a mapping. If it raises,
    every record it was given comes back. Either way a record on its last try is dead-lettered to the reasoned
    queue (the step's reason, or the exception's class and message) instead of being left to the queue's own DLQ,
    as ``failure_handler`` does for a record that fails alone.
    """

    def __init__(
        self,
        *,
        source: str,
        dead_letters: DeadLetters,
        handle_batch: Callable[[list[T]], Collection[str] | Mapping[str, str]],
    ) -> None:
        super().__init__(source=source, dead_letters=dead_letters)
        self._handle_batch = handle_batch

    def process(self) -> list[tuple[Any, ...]]:
        results = super().process()
        parsed: list[T] = [result for status, result, _record in results if status == "success" and result is not None]
        try:
            failed = self._handle_batch(parsed)
        except Exception as error:  # the whole batch step failed: every record it was given comes back
            logger.exception("the batch step failed", extra={"source": self.source, "records": len(parsed)})
            reason = unexpected_reason(error)
            handed = {
                record["messageId"] for status, result, record in results if status == "success" and result is not None
            }
            failed = dict.fromkeys(handed, reason)
        reasons = failed if isinstance(failed, Mapping) else {}
        for raw in self.records:
            if raw["messageId"] not in failed:
                continue
            record = SQSRecord(raw)
            if last_try(record) and self._dead_letter_last_try(record, reasons.get(record.message_id)):
                continue
            self.fail_messages.append(record)
        return results

    def _dead_letter_last_try(self, record: SQSRecord, reason: str | None) -> bool:
        """Dead-letter a record the batch step failed on its last try; False when that failed too (SQS keeps it)."""
        if not reason:
            reason = f"failed on the last of {MAX_RECEIVES} tries (no reason given)"
        elif not reason.startswith("unexpected "):
            reason = f"failed on the last of {MAX_RECEIVES} tries: {reason}"[:MAX_REASON_CHARACTERS]
        logger.error(
            "failed on its last try", extra={"source": self.source, "reason": reason, "message_id": record.message_id}
        )
        metrics.add_metric(name="FailedOnLastTry", unit="Count", value=1)
        try:
            self._dead_letters.send(source=self.source, reason=reason, body=_body_for_dead_letter(record.body))
        except Exception:
            logger.exception("could not dead-letter the record", extra={"message_id": record.message_id})
            return False
        return True


def _body_for_dead_letter(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body
