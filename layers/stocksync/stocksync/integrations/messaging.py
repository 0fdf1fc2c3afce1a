"""SQS and EventBridge publishers with typed receipts (the shape serverless-python-demo uses).

Both services accept at most 10 entries per call and may fail single entries of a call; callers get back exactly
which entries failed, so nothing is dropped silently. Failed entries are retried once before they are reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stocksync.models.publishing import PublishReceipt
from stocksync.observability import logger, metrics

_MAX_ENTRIES = 10


def _chunks(items: Sequence[Any], size: int = _MAX_ENTRIES) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class QueuePublisher:
    """Sends JSON bodies to one SQS queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self.requests = 0

    def send(self, bodies: Iterable[Mapping[str, Any]], *, delay_seconds: int = 0) -> PublishReceipt:
        receipt = PublishReceipt()
        pending = list(bodies)
        for attempt in range(2):
            retry: list[Mapping[str, Any]] = []
            for chunk in _chunks(pending):
                entries = [
                    {"Id": str(index), "MessageBody": json.dumps(body, sort_keys=True), "DelaySeconds": delay_seconds}
                    for index, body in enumerate(chunk)
                ]
                self.requests += 1
                answer = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                receipt.sent += len(answer.get("Successful", []))
                for failure in answer.get("Failed", []):
                    body = chunk[int(failure["Id"])]
                    if attempt == 0 and not failure.get("SenderFault"):
                        retry.append(body)
                    else:
                        receipt.failed.append((body, f"{failure.get('Code')}: {failure.get('Message', '')}"))
            pending = retry
            if not pending:
                break
        return receipt


class DeadLetters:
    """The product's reasoned dead-letter queue: every rejected record lands here with why and from where."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, *, source: str, reason: str, body: Any, queue_arn: str | None = None) -> None:
        """``queue_arn``: the queue ``body`` is a whole message of (a record of an SQS batch), which ``stocksync
        redrive`` sends it back to after a fix; None for a part of a message or a record read from elsewhere."""
        logger.warning("dead-lettered", extra={"source": source, "reason": reason})
        letter = {"source": source, "reason": reason, "body": body, **({"queue_arn": queue_arn} if queue_arn else {})}
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(letter, default=str, sort_keys=True),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1024] or "unspecified"},
                "source": {"DataType": "String", "StringValue": source},
            },
        )


class BusPublisher:
    """Puts events on the product's EventBridge bus."""

    def __init__(self, client: Any, bus_name: str, *, source: str = "stocksync") -> None:
        self._client = client
        self._bus = bus_name
        self._source = source

    def put(self, detail_type: str, details: Iterable[Mapping[str, Any]]) -> PublishReceipt:
        receipt = PublishReceipt()
        for chunk in _chunks(list(details)):
            entries = [
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str, sort_keys=True),
                }
                for detail in chunk
            ]
            answer = self._client.put_events(Entries=entries)
            for detail, result in zip(chunk, answer.get("Entries", []), strict=False):
                if result.get("ErrorCode"):
                    receipt.failed.append((detail, f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"))
                else:
                    receipt.sent += 1
        return receipt


def recompute_messages(retailer_ids: Iterable[str], *, reason: str) -> list[dict[str, str]]:
    """One message per SKU: the recompute queue's consumer batches its reads itself."""
    return [{"retailer_id": rid, "reason": reason} for rid in sorted(set(retailer_ids))]


class RecomputeQueue:
    """Enqueues SKUs whose inputs changed. A failed enqueue is logged and counted, not raised: the counts are
    already committed, and the bucket sweep recomputes every SKU anyway (the drift catcher)."""

    def __init__(self, publisher: QueuePublisher) -> None:
        self._publisher = publisher

    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None:
        messages = recompute_messages(retailer_ids, reason=reason)
        if not messages:
            return
        receipt = self._publisher.send(messages)
        metrics.add_metric(name="RecomputesEnqueued", unit="Count", value=receipt.sent)
        if receipt.failed:
            metrics.add_metric(name="RecomputeEnqueueFailures", unit="Count", value=len(receipt.failed))
            logger.error(
                "recompute enqueue failed; the next sweep will catch these SKUs",
                extra={"failed": [(body["retailer_id"], why) for body, why in receipt.failed]},
            )
