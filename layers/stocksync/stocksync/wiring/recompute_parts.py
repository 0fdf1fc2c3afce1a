"""The stock recompute as recompute_stock and sweep_stock both build it: the formula's inputs, the push queue, the
catalog read queue, and the over-selling responder (bus alerts, and Graph cancellations when enabled)."""

from __future__ import annotations

from datetime import datetime, timedelta

from stocksync.dal.sku_table import SkuTable
from stocksync.integrations.recompute_io import (
    BusOverSellingAlerts,
    CatalogReadQueue,
    GraphOrderCanceller,
    PushQueueSender,
)
from stocksync.logic.overselling import OverSellingResponder
from stocksync.logic.recompute import StockRecompute
from stocksync.models.settings import Settings
from stocksync.wiring import parts


def stock_recompute(settings: Settings, skus: SkuTable, *, now: datetime) -> StockRecompute:
    canceller = None
    if settings.auto_cancel_oversold:
        # Imported here: the Graph client (and requests with it) is only needed where cancelling is on, which it is
        # not by default; recompute_stock and sweep_stock otherwise never call Graph (README, "Cold start").
        from stocksync.integrations.graph_api import graph_client_from_settings  # noqa: PLC0415

        canceller = GraphOrderCanceller(graph_client_from_settings(settings))
    responder = OverSellingResponder(
        lambda: parts.ledger(settings, now=now).open_rows(),
        BusOverSellingAlerts(parts.bus(settings)),
        canceller,
        mode=settings.deduction_mode,
        now=now,
    )
    reads = CatalogReadQueue(parts.queue(settings.catalog_read_queue_url)) if settings.catalog_reads_enabled else None
    return StockRecompute(
        skus,
        PushQueueSender(parts.queue(settings.push_queue_url)),
        responder,
        buckets=settings.buckets,
        default_bucket=settings.default_bucket,
        mode=settings.deduction_mode,
        confirmation_timeout=timedelta(seconds=settings.confirmation_timeout_seconds),
        now=now,
        reads=reads,
    )
