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

from stocksync.integrations.shopify import ShopifyDelivery, parse_delivery
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts
from stocksync.wiring.shop_order_parts import ShopOrderApplier

SOURCE = "shopify_orders"


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    orders = ShopOrderApplier(settings, source=SOURCE)

    def apply(record: SQSRecord) -> None:
        delivery = parse_delivery(record.body)
        facts = _facts(delivery)
        if delivery.order is None:
            # orders/edited, refunds/create: their effect arrives with the orders/updated Shopify sends alongside.
            logger.info("shopify webhook noted", extra={**facts, "note": delivery.note})
            metrics.add_metric(name="ShopifyWebhooksNoted", unit="Count", value=1)
            return
        receipt = orders.apply(delivery.order, redelivered=redelivered(record), facts=facts)
        if receipt is not None:
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
