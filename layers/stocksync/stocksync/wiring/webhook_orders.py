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

from stocksync import clock
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, redelivered
from stocksync.integrations.woocommerce import parse_delivery
from stocksync.logic.ledger import LedgerPart
from stocksync.logic.shop_orders import IdentityMapping, sighting
from stocksync.models.settings import Settings
from stocksync.models.webhooks import WebhookDelivery
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "webhook_orders"


def _every_row(_row: LedgerPart) -> bool:
    """On a redelivery, any unchanged row may be one the failed try wrote without enqueueing: enqueue it again."""
    return True


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    dead_letters = parts.dead_letters(settings)
    processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=dead_letters)
    recompute_queue = parts.recompute_queue(settings)
    mapping = IdentityMapping()  # the shop's SKU is the catalog's retailer_id (docs/connectors.md)

    def apply(record: SQSRecord) -> None:
        delivery = WebhookDelivery.model_validate_json(record.body)
        parsed = parse_delivery(delivery)
        if parsed.order is None:
            metrics.add_metric(name="WebhookDeliveriesSkipped", unit="Count", value=1)
            logger.info("webhook delivery skipped", extra={"delivery_id": delivery.delivery_id, "why": parsed.skipped})
            return
        now = clock.now()
        shop = sighting(parsed.order, mapping, observed_at=now)
        receipt = parts.order_ingest(settings, now=now).apply(
            [shop.observation], unfinished=_every_row if redelivered(record) else None
        )
        for _observation, error in receipt.rejected:
            raise error  # e.g. its line items changed: to the DLQ with the reason
        recompute_queue.enqueue(receipt.skus_to_recompute, reason="webhook order")
        metrics.add_metric(name="WebhookOrdersApplied", unit="Count", value=receipt.applied)
        # A repeat the ledger already knew stays quiet; a redelivery reports again (its first report may have failed).
        if shop.unplaced and (not receipt.unchanged or redelivered(record)):
            metrics.add_metric(name="OrderLinesUnplaced", unit="Count", value=len(shop.unplaced))
            for line in shop.unplaced:
                dead_letters.send(
                    source=SOURCE,
                    reason=f"order {line.order_id} line {line.line_ref}: {line.reason}"
                    + (f" ({line.sku})" if line.sku else ""),
                    body={
                        "order_id": line.order_id,
                        "line_ref": line.line_ref,
                        "sku": line.sku,
                        "platform": delivery.platform,
                        "delivery_id": delivery.delivery_id,
                    },
                )

    return processor.run(event, context, apply)
