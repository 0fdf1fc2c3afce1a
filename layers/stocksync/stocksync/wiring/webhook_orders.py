"""webhook_orders' composition root: verified webhook deliveries (queued by order_webhook) into the ledger.

Each SQS record is one delivery. WooCommerce and generic bodies are parsed into a ``ShopOrder``
(integrations/woocommerce.py) and applied through logic/shop_orders.py, the one path every web-shop connector
takes: the ledger makes a repeated or older delivery harmless. A line the product cannot place (no SKU, or a SKU
the mapping does not know) never blocks the rest of the order: it is counted (``OrderLinesUnplaced``) and
dead-lettered with the order and the line named, for each delivery that changed the order (a repeat is quiet).

A redelivered record follows a try that failed somewhere, possibly after its ledger transaction and before its
recompute enqueue: as in order_events, it enqueues the SKUs of the order's rows again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.integrations.woocommerce import parse_delivery
from stocksync.models.settings import Settings
from stocksync.models.webhooks import WebhookDelivery
from stocksync.observability import logger, metrics
from stocksync.wiring import parts
from stocksync.wiring.shop_order_parts import ShopOrderApplier

SOURCE = "webhook_orders"


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
    orders = ShopOrderApplier(settings, source=SOURCE)

    def apply(record: SQSRecord) -> None:
        delivery = WebhookDelivery.model_validate_json(record.body)
        parsed = parse_delivery(delivery)
        if parsed.order is None:
            metrics.add_metric(name="WebhookDeliveriesSkipped", unit="Count", value=1)
            logger.info("webhook delivery skipped", extra={"delivery_id": delivery.delivery_id, "why": parsed.skipped})
            return
        facts = {"platform": delivery.platform, "delivery_id": delivery.delivery_id}
        receipt = orders.apply(parsed.order, redelivered=redelivered(record), facts=facts)
        if receipt is not None:
            metrics.add_metric(name="WebhookOrdersApplied", unit="Count", value=receipt.applied)

    return processor.run(event, context, apply)
