"""shopify_orders' composition root: Shopify order webhooks, which Shopify delivers to the partner event bus and its
rule routes to this function's queue (one EventBridge event per SQS record), into the ledger through the path every
web-shop connector takes (logic/shop_orders.py, logic/order_ingest.py); the SKUs they change to the recompute queue.

Repeated and out-of-order deliveries are the ledger's to absorb: its merge only moves forward (state up, cancelled
units up), so a repeat changes nothing and an older ``updated_at`` never undoes a newer one. The webhook id
(``X-Shopify-Webhook-Id``) is logged with every delivery, not stored: docs/connectors.md says why.

A line the product cannot place (no SKU, or a SKU the mapping does not know) is counted (``OrderLinesUnplaced``) and
dead-lettered with its order and line, and the order's other lines apply. A redelivered record enqueues the SKUs of
the order's unchanged rows again, as order_events does (its first try may have stopped before the enqueue).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync import clock
from stocksync.integrations.shopify import ShopifyDelivery, parse_delivery
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.logic.ledger import LedgerPart
from stocksync.logic.shop_orders import IdentityMapping, SkuMapping, sighting
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "shopify_orders"


def sku_mapping(_settings: Settings) -> SkuMapping:
    """The merchant's Shopify SKU -> catalog retailer_id mapping. For now the SKU is the retailer_id; a mapping
    read from the merchant's file replaces this one function."""
    return IdentityMapping()


def _every_row(_row: LedgerPart) -> bool:
    """On a redelivery, any unchanged row may be one the failed try wrote without enqueueing: enqueue it again."""
    return True


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    dead_letters = parts.dead_letters(settings)
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=dead_letters)
    recompute_queue = parts.recompute_queue(settings)
    mapping = sku_mapping(settings)

    def apply(record: SQSRecord) -> None:
        delivery = parse_delivery(record.body)
        facts = _facts(delivery)
        if delivery.order is None:
            # orders/edited, refunds/create: their effect arrives with the orders/updated Shopify sends alongside.
            logger.info("shopify webhook noted", extra={**facts, "note": delivery.note})
            metrics.add_metric(name="ShopifyWebhooksNoted", unit="Count", value=1)
            return
        now = clock.now()
        seen = sighting(delivery.order, mapping, observed_at=now)
        receipt = None
        if seen.observation.lines:
            receipt = parts.order_ingest(settings, now=now).apply(
                [seen.observation], unfinished=_every_row if redelivered(record) else None
            )
        for line in seen.unplaced:
            metrics.add_metric(name="OrderLinesUnplaced", unit="Count", value=1)
            dead_letters.send(
                source=SOURCE,
                reason=f"order {line.order_id} line item {line.line_ref}: {line.reason}",
                body={**facts, "line_item_id": line.line_ref, "sku": line.sku},
            )
        if receipt is None:
            return
        for _observation, error in receipt.rejected:
            raise error  # e.g. an edit that added line items: dead-lettered with the reason
        recompute_queue.enqueue(receipt.skus_to_recompute, reason="shopify order")
        logger.info("shopify order applied", extra={**facts, "changed": bool(receipt.applied)})
        metrics.add_metric(name="ShopifyOrdersApplied", unit="Count", value=receipt.applied)

    return processor.run(event, context, apply)


def _facts(delivery: ShopifyDelivery) -> dict[str, Any]:
    return {
        "topic": delivery.topic,
        "webhook_id": delivery.webhook_id,
        "order_id": delivery.order_id,
        "shop_domain": delivery.shop_domain,
        "triggered_at": delivery.triggered_at.isoformat() if delivery.triggered_at else None,
    }
