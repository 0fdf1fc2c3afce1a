"""Signed webhooks: who sent a delivery, and whether its signature holds, decided before anything is parsed.

Every platform the endpoint accepts signs the same way: base64 of HMAC-SHA256 over the raw request body, keyed
with a secret shared with the sender. Only the header differs:

| platform      | signature header          | delivery id header          | topic header          |
|---------------|---------------------------|-----------------------------|-----------------------|
| `woocommerce` | `X-WC-Webhook-Signature`  | `X-WC-Webhook-Delivery-ID`  | `X-WC-Webhook-Topic`  |
| `shopify`     | `X-Shopify-Hmac-Sha256`   | `X-Shopify-Webhook-Id`      | `X-Shopify-Topic`     |
| `generic`     | `X-StockSync-Signature`   | `X-StockSync-Delivery-ID`   | `X-StockSync-Topic`   |

The signature is computed over the bytes as received (a Function URL event's body, base64-decoded when
``isBase64Encoded``), never over a re-serialised JSON, and compared with ``hmac.compare_digest``. The secrets live
in one Secrets Manager secret (JSON ``{"woocommerce": "...", "shopify": "...", "generic": "..."}``), read through
Powertools Parameters and cached for ``max_age`` seconds; a platform without a secret is refused like a bad
signature, so a stack that only configured WooCommerce cannot be fed generic deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from stocksync.errors import ConfigurationError

SECRET_SETTING = "WEBHOOK_SECRET_NAME"
DEFAULT_MAX_AGE_SECONDS = 300
# A base64 HMAC-SHA256 is 44 characters; anything much longer is not a signature and is not decoded.
_MAX_SIGNATURE_CHARS = 128


class Platform(StrEnum):
    WOOCOMMERCE = "woocommerce"
    SHOPIFY = "shopify"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class PlatformHeaders:
    signature: str
    delivery_id: str
    topic: str


# Lower-case, as a Lambda Function URL (payload 2.0) and API Gateway HTTP API deliver them.
HEADERS = {
    Platform.WOOCOMMERCE: PlatformHeaders("x-wc-webhook-signature", "x-wc-webhook-delivery-id", "x-wc-webhook-topic"),
    Platform.SHOPIFY: PlatformHeaders("x-shopify-hmac-sha256", "x-shopify-webhook-id", "x-shopify-topic"),
    Platform.GENERIC: PlatformHeaders("x-stocksync-signature", "x-stocksync-delivery-id", "x-stocksync-topic"),
}


def lower_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Header names lower-cased (a Function URL already does it; a hand-made event may not)."""
    return {str(name).lower(): str(value) for name, value in (headers or {}).items() if value is not None}


def platform_of(headers: Mapping[str, str]) -> Platform | None:
    """The platform whose signature header the request carries (lower-cased names), or None: unsigned."""
    found = [platform for platform, names in HEADERS.items() if names.signature in headers]
    return found[0] if len(found) == 1 else None


def sign(secret: str, body: bytes) -> str:
    """The signature a sender computes: base64 of HMAC-SHA256 over the raw body (for tests and samples)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_matches(secret: str, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the base64 HMAC-SHA256 of ``body`` under ``secret``, compared in constant time.

    A missing, empty, oversized or non-base64 signature is simply False; nothing about the body is looked at
    beyond hashing its bytes.
    """
    if not secret or not signature or len(signature) > _MAX_SIGNATURE_CHARS:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True, slots=True)
class Verified:
    """A delivery whose signature held: its platform, delivery id and topic (as sent; not yet validated)."""

    platform: Platform
    delivery_id: str | None
    topic: str | None


def verify(headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]) -> Verified | None:
    """The verified delivery, or None when it is unsigned, signed for a platform without a secret, or forged."""
    platform = platform_of(headers)
    if platform is None:
        return None
    names = HEADERS[platform]
    secret = secrets.get(platform.value, "")
    if not signature_matches(secret, body, headers.get(names.signature)):
        return None
    return Verified(platform, headers.get(names.delivery_id) or None, headers.get(names.topic) or None)


class WebhookSecrets:
    """The shared secrets, by platform, from the Secrets Manager secret named ``secret_name`` (cached).

    Nothing is fetched until the first ``get``. A secret that is missing, not JSON or not an object of strings is a
    ConfigurationError (the invocation fails, the sender sees a 5xx and may retry); its values are never logged.
    """

    def __init__(self, secret_name: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> None:
        if not secret_name:
            raise ConfigurationError(SECRET_SETTING, "no Secrets Manager secret named for the webhook secrets")
        self._name = secret_name
        self._max_age = max_age

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name})"

    def get(self) -> dict[str, str]:
        try:
            value = parameters.get_secret(self._name, transform="json", max_age=self._max_age)
        except TransformParameterError:
            raise ConfigurationError(SECRET_SETTING, f"secret {self._name} is not valid JSON") from None
        except GetParameterError as exc:
            raise ConfigurationError(SECRET_SETTING, f"cannot read secret {self._name}: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigurationError(SECRET_SETTING, f"secret {self._name} must hold a JSON object")
        known = {platform.value for platform in Platform}
        secrets: dict[str, str] = {}
        for key, secret in value.items():
            if key not in known:
                continue
            if not isinstance(secret, str):
                raise ConfigurationError(SECRET_SETTING, f"secret {self._name}: key {key} is not a string")
            if secret:
                secrets[key] = secret
        return secrets
