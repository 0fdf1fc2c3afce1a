"""order_webhook's composition root: the signed HTTPS endpoint (a Lambda Function URL, payload format 2.0).

Order of work, so that nothing unverified is stored or even parsed:

1. the raw body (base64-decoded when ``isBase64Encoded``) and the lower-cased headers;
2. WooCommerce's ping (sent unsigned when a webhook is created, body ``webhook_id=N``): 200, nothing stored;
3. the signature (integrations/webhook_signatures.py) against the secrets from Secrets Manager: 401 when missing or
   wrong, nothing stored, nothing parsed;
4. the verified delivery queued as received (platform, delivery id, topic, body) for webhook_orders, through
   Powertools Idempotency keyed on platform + delivery id + the SHA-256 of the body: a replayed delivery is
   answered 200 from the stored record and queued once. The body is part of the key because WooCommerce's
   delivery id is a hash of the webhook id and the current second: two updates of one order within a second
   share it, and the second must not be dropped (the ledger makes any repeat harmless anyway);
5. 200. The order is parsed and applied later, by webhook_orders: the sender gets its answer in milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from pydantic import ValidationError

from stocksync import clock
from stocksync.dal import aws
from stocksync.errors import ConfigurationError, StockSyncError
from stocksync.integrations.webhook_signatures import WebhookSecrets, lower_headers, platform_of, verify
from stocksync.models.settings import Settings
from stocksync.models.webhooks import WebhookDelivery
from stocksync.observability import logger, metrics
from stocksync.wiring import parts

SOURCE = "order_webhook"
# A Function URL takes at most 6 MB; a WooCommerce order of 1,000 lines is well under 2 MB.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Replays of one delivery id within this window are answered from the idempotency record.
IDEMPOTENCY_SECONDS = 24 * 3600
_PING = re.compile(rb"^webhook_id=\d{1,20}$")


class QueueError(StockSyncError):
    """The verified delivery could not be queued: answer 503 so the sender tries again."""


def check(settings: Settings) -> None:
    """At cold start: the settings only this function needs."""
    if not settings.webhook_queue_url:
        raise ConfigurationError("WEBHOOK_QUEUE_URL", "not set (template.yaml sets it when WebhookEndpoint is on)")
    if not settings.webhook_secret_name:
        raise ConfigurationError("WEBHOOK_SECRET_NAME", "not set")


def _answer(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": message, **extra}, sort_keys=True),
    }


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body, validate=True)
    return body.encode("utf-8") if isinstance(body, str) else b""


def _read(event: dict[str, Any]) -> bytes | dict[str, Any]:
    """The raw body as sent, or the answer to a request that is not a delivery at all."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "POST")).upper()
    if method != "POST":
        return _answer(405, "POST only")
    try:
        raw = _raw_body(event)
    except (binascii.Error, ValueError):
        return _answer(400, "body is not valid base64")
    if len(raw) > MAX_BODY_BYTES:
        return _answer(413, "body too large")
    return raw


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    raw = _read(event)
    if isinstance(raw, dict):
        metrics.add_metric(name="WebhookRequestsRefused", unit="Count", value=1)
        return raw
    headers = lower_headers(event.get("headers"))

    if platform_of(headers) is None and len(raw) <= 64 and _PING.match(raw.strip()):
        metrics.add_metric(name="WebhookPings", unit="Count", value=1)
        logger.info("webhook ping answered", extra={"source": SOURCE})
        return _answer(200, "pong")

    verified = verify(headers, raw, WebhookSecrets(settings.webhook_secret_name).get())
    if verified is None:
        metrics.add_metric(name="WebhookSignatureRejected", unit="Count", value=1)
        logger.warning("webhook refused: missing or bad signature", extra={"source": SOURCE, "bytes": len(raw)})
        return _answer(401, "missing or invalid signature")

    digest = hashlib.sha256(raw).hexdigest()
    delivery_id = verified.delivery_id or f"sha256:{digest}"
    try:
        delivery = WebhookDelivery.of(
            platform=verified.platform.value,
            delivery_id=delivery_id,
            topic=verified.topic,
            received_at=clock.now(),
            raw=raw,
        )
    except UnicodeDecodeError:
        metrics.add_metric(name="WebhookRequestsRefused", unit="Count", value=1)
        return _answer(400, "body is not UTF-8")
    except ValidationError as error:
        metrics.add_metric(name="WebhookRequestsRefused", unit="Count", value=1)
        if any(issue["loc"][:1] == ("body_zlib_base64",) for issue in error.errors()):
            return _answer(413, "body too large for one queue message, even compressed")
        return _answer(400, "delivery id or topic header is not a printable token of at most 200 characters")
    return _queue_once(delivery, digest, context, settings)


def _queue_once(delivery: WebhookDelivery, digest: str, context: Any, settings: Settings) -> dict[str, Any]:
    """Queue ``delivery`` unless the same platform, delivery id and body was queued already (Powertools
    Idempotency)."""
    queue = parts.queue(settings.webhook_queue_url)
    config = IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    config.register_lambda_context(context)
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=aws.client("dynamodb"))

    ran: list[bool] = []

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=persistence)
    def enqueue(request: dict[str, str]) -> dict[str, str]:
        ran.append(True)
        receipt = queue.send([delivery.model_dump(mode="json", exclude_none=True)])
        if receipt.failed:
            raise QueueError(f"webhook queue refused the delivery: {receipt.failed[0][1]}")
        metrics.add_metric(name="WebhookDeliveriesQueued", unit="Count", value=1)
        return {"queued_at": delivery.received_at.isoformat()}

    where = {
        "source": SOURCE,
        "platform": delivery.platform,
        "delivery_id": delivery.delivery_id,
        "topic": delivery.topic,
    }
    try:
        first = enqueue(request={"key": f"{delivery.platform}:{delivery.delivery_id}:{digest}"})
    except IdempotencyAlreadyInProgressError:
        metrics.add_metric(name="WebhookDeliveryConflicts", unit="Count", value=1)
        return _answer(409, "delivery in progress; retry later")
    except QueueError:
        logger.exception("webhook delivery not queued", extra=where)
        return _answer(503, "could not queue the delivery; retry later")
    if not ran:  # answered from the idempotency record: a replayed delivery id, queued before
        metrics.add_metric(name="WebhookDeliveriesRepeated", unit="Count", value=1)
    logger.info("webhook delivery accepted", extra={**where, "repeated": not ran})
    return _answer(200, "accepted", delivery_id=delivery.delivery_id, queued_at=first["queued_at"])
