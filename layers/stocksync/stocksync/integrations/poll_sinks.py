"""Where an order poll's results go besides the ledger: changed SKUs to the recompute queue, rejected orders to the
reasoned dead letters, and the news that the platform removed the order source to the bus (its alarm's trigger)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stocksync.integrations.messaging import BusPublisher, DeadLetters, RecomputeQueue
from stocksync.observability import logger, metrics

SOURCE_REMOVED_DETAIL_TYPE = "Order Source Removed"


class OrderPollSinks:
    """PollSinks on the recompute queue, the dead-letter queue and the bus."""

    def __init__(self, *, source: str, recompute: RecomputeQueue, dead_letters: DeadLetters, bus: BusPublisher) -> None:
        self._source = source
        self._recompute = recompute
        self._dead_letters = dead_letters
        self._bus = bus

    def enqueue_recompute(self, retailer_ids: Iterable[str]) -> None:
        self._recompute.enqueue(retailer_ids, reason="orders")

    def reject(self, raw: Any, reason: str) -> None:
        metrics.add_metric(name="OrdersRejected", unit="Count", value=1)
        logger.error("order rejected", extra={"reason": reason})
        self._dead_letters.send(source=f"poll_orders:{self._source}", reason=reason, body=raw)

    def source_removed(self, source: str, reason: str) -> None:
        metrics.add_metric(name="OrderSourceRemoved", unit="Count", value=1)
        logger.error(
            "order source removed by the platform; polling stopped", extra={"source": source, "reason": reason}
        )
        self._bus.put(SOURCE_REMOVED_DETAIL_TYPE, [{"source": source, "reason": reason}])
