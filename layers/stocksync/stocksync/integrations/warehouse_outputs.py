"""Where warehouse input goes besides the SKU table: the recompute queue, the dead-letter queue, and, for a snapshot
load that runs out of time, the snapshot queue it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stocksync.errors import StockSyncError
from stocksync.integrations.messaging import DeadLetters, QueuePublisher, RecomputeQueue
from stocksync.observability import logger, metrics

if TYPE_CHECKING:
    # Annotations only: wiring/parts.py builds WarehouseSinks for several functions, and at run time this would load the
    # snapshot loader and every Powertools Parser model into each of them at cold start, not only load_snapshot.
    from stocksync.logic.snapshot_load import SnapshotPosition


class HandOverError(StockSyncError):
    """The continuation of a snapshot load could not be queued; the message is redelivered and the load redone."""


class WarehouseSinks:
    """Changed SKUs to the recompute queue; rejected entries logged, counted and dead-lettered with their reason."""

    def __init__(self, *, recompute: RecomputeQueue, dead_letters: DeadLetters, source: str) -> None:
        self._recompute = recompute
        self._dead_letters = dead_letters
        self._source = source

    def enqueue_recompute(self, retailer_ids: Iterable[str]) -> None:
        self._recompute.enqueue(retailer_ids, reason=self._source)

    def reject(self, raw: Any, reason: str) -> None:
        logger.error("invalid input", extra={"source": self._source, "reason": reason})
        metrics.add_metric(name="InvalidInput", unit="Count", value=1)
        self._dead_letters.send(source=self._source, reason=reason, body=raw)


class SnapshotQueueHandOver:
    """Sends a load's continuation back to the queue its current message came from, which is the snapshot queue.

    Going by the message's own queue (its event source ARN) needs no setting, and a continuation can never land on a
    queue that does not trigger this function.
    """

    def __init__(self, client: Any, queue_arn: str) -> None:
        self._client = client
        self._queue_arn = queue_arn

    def send(self, position: SnapshotPosition) -> None:
        *_, account, name = self._queue_arn.split(":")
        queue_url = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        receipt = QueuePublisher(self._client, queue_url).send([position.model_dump(mode="json")])
        if receipt.failed:
            raise HandOverError(f"{position.location}: continuation at byte {position.offset} not queued")
        logger.info(
            "snapshot load handed over",
            extra={"object": position.location, "offset": position.offset, "line": position.line},
        )
