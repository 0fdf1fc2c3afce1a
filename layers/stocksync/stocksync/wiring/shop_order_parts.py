"""What every web-shop connector (shopify_orders, webhook_orders) does with an order it parsed: the SKU mapping,
the ledger, the recompute queue, and the report of lines it could not place."""

from __future__ import annotations

from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.sku_mapping_source import SkuMappingError, shared_source
from stocksync.errors import ConfigurationError
from stocksync.logic.ledger import LedgerPart
from stocksync.logic.order_ingest import IngestReceipt
from stocksync.logic.shop_orders import IdentityMapping, ShopOrder, SkuMapping, sighting
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts


def sku_mapping(settings: Settings) -> SkuMapping:
    """The merchant's shop SKU -> catalog retailer_id mapping (docs/connectors.md, "SKU mapping"): the SKU itself
    without ``SkuMappingKey``, else the CSV at that key of the feed bucket (cached per container, re-checked by ETag).

    A mapping file that cannot be read or parsed raises (logged, naming the problem): the whole batch fails and SQS
    delivers it again, rather than counting sales against the shop's ids as if they were the catalog's.
    """
    if not settings.sku_mapping_key:
        return IdentityMapping()
    if not settings.feed_bucket_name:
        raise ConfigurationError("FEED_BUCKET", "the SKU mapping (STOCKSYNC_SKU_MAPPING_KEY) is read from it; set it")
    source = shared_source(aws.client("s3"), bucket=settings.feed_bucket_name, key=settings.sku_mapping_key)
    try:
        return source.mapping()
    except SkuMappingError as error:
        logger.error("SKU mapping unusable; the batch is retried", extra={"problem": str(error)})
        metrics.add_metric(name="SkuMappingUnusable", unit="Count", value=1)
        raise


def _every_row(_row: LedgerPart) -> bool:
    """On a redelivery, any unchanged row may be one the failed try wrote without enqueueing: enqueue it again."""
    return True


class ShopOrderApplier:
    """One connector's orders into the ledger, through the path every connector takes (logic/shop_orders.py)."""

    def __init__(self, settings: Settings, *, source: str) -> None:
        self._settings = settings
        self._source = source
        self._mapping = sku_mapping(settings)
        self._dead_letters = parts.dead_letters(settings)
        self._recompute_queue = parts.recompute_queue(settings)

    def apply(self, order: ShopOrder, *, redelivered: bool, facts: dict[str, Any]) -> IngestReceipt | None:
        """Apply ``order``; None when none of its lines could be placed.

        A redelivered record follows a try that failed somewhere, possibly after its ledger transaction and before
        its recompute enqueue: it enqueues the SKUs of the order's unchanged rows again, as order_events does. A line
        that cannot be placed is counted (``OrderLinesUnplaced``) and dead-lettered naming its order and line, for
        each delivery that changed the order or was redelivered (a repeat the ledger already knew stays quiet); the
        order's other lines apply. A sighting the ledger refuses (an edit to an order split into parts, or one that
        would split it) is raised, so the caller dead-letters it with the reason.
        """
        now = clock.now()
        seen = sighting(order, self._mapping, observed_at=now)
        receipt = None
        if seen.observation.lines:
            receipt = parts.order_ingest(self._settings, now=now).apply(
                [seen.observation], unfinished=_every_row if redelivered else None
            )
            for _observation, error in receipt.rejected:
                raise error
        if seen.unplaced and (receipt is None or receipt.applied or redelivered):
            metrics.add_metric(name="OrderLinesUnplaced", unit="Count", value=len(seen.unplaced))
            for line in seen.unplaced:
                self._dead_letters.send(
                    source=self._source,
                    reason=f"order {line.order_id} line {line.line_ref}: {line.reason}"
                    + (f" ({line.sku})" if line.sku else ""),
                    body={**facts, "order_id": line.order_id, "line_ref": line.line_ref, "sku": line.sku},
                )
        if receipt is not None:
            self._recompute_queue.enqueue(receipt.skus_to_recompute, reason=f"{self._source} order")
        return receipt
