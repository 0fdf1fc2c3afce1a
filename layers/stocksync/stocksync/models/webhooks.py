"""A verified webhook delivery as the endpoint queues it for webhook_orders (docs/connectors.md).

The endpoint (order_webhook) checks the signature over the raw body and queues the delivery as it came, unparsed:
the platform, the delivery id and topic from its headers, when it was received, and the body (as text, or
zlib-compressed and base64-encoded when it is large, so a 250-line order fits in an SQS message).
"""

from __future__ import annotations

import base64
import zlib
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from stocksync.models.base import Model

# Printable ASCII only: an id or topic goes into keys, logs and dead-letter reasons.
HeaderToken = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
# Bodies up to this many bytes are queued as text; larger ones compressed (SQS messages hold at most 256 KiB).
INLINE_BODY_BYTES = 64 * 1024


class WebhookDelivery(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: Literal["woocommerce", "shopify", "generic"]
    delivery_id: HeaderToken
    topic: HeaderToken | None = None
    received_at: AwareDatetime
    body: str | None = None
    body_zlib_base64: Annotated[str, Field(max_length=200_000)] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> Self:
        if (self.body is None) == (self.body_zlib_base64 is None):
            raise ValueError("exactly one of body and body_zlib_base64 must be set")
        return self

    @classmethod
    def of(
        cls, *, platform: str, delivery_id: str, topic: str | None, received_at: object, raw: bytes
    ) -> WebhookDelivery:
        """The delivery to queue; ``raw`` must be UTF-8 (a JSON body is)."""
        text = raw.decode("utf-8")
        if len(raw) <= INLINE_BODY_BYTES:
            return cls.model_validate(
                {
                    "platform": platform,
                    "delivery_id": delivery_id,
                    "topic": topic,
                    "received_at": received_at,
                    "body": text,
                }
            )
        packed = base64.b64encode(zlib.compress(raw, 6)).decode()
        return cls.model_validate(
            {
                "platform": platform,
                "delivery_id": delivery_id,
                "topic": topic,
                "received_at": received_at,
                "body_zlib_base64": packed,
            }
        )

    def text(self) -> str:
        """The body as the sender sent it."""
        if self.body is not None:
            return self.body
        assert self.body_zlib_base64 is not None
        # Bounded: a hostile queue message cannot inflate to more than the Function URL's 6 MB request limit.
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(self.body_zlib_base64, validate=True), 6 * 1024 * 1024)
        if inflater.unconsumed_tail:
            raise ValueError("body_zlib_base64 inflates to more than 6 MB")
        return raw.decode("utf-8")
