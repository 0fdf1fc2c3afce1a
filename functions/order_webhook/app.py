"""order_webhook: the signed HTTPS endpoint (Lambda Function URL) for WooCommerce, Shopify and generic webhooks.

Verifies the signature over the raw body before anything is parsed (401, nothing stored, when it fails), then
queues the delivery once per delivery id (Powertools Idempotency) for webhook_orders and answers 200 at once
(docs/connectors.md, "WooCommerce and signed webhooks"). The request body is never logged.
"""

from __future__ import annotations

# First of all: no cyclic garbage collection while this function's modules load (stocksync/init_gc.py says why).
from stocksync import init_gc  # isort: skip

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.wiring import order_webhook as wiring

wiring.check(get_settings())  # validate the environment at cold start: a bad setting fails here, naming the variable


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.handle(event, context, get_settings())


init_gc.loaded()  # last: the function is loaded
