"""Webhook signatures: base64 HMAC-SHA256 of the raw body, per platform header, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.errors import ConfigurationError
from stocksync.integrations.webhook_signatures import (
    Platform,
    WebhookSecrets,
    platform_of,
    sign,
    signature_matches,
    verify,
)

SECRETS = {"woocommerce": "wc-secret", "shopify": "shop-secret", "generic": "gen-secret"}
BODY = b'{"id": 727, "status": "processing"}'


def test_sign_is_base64_of_hmac_sha256_over_the_raw_bytes() -> None:
    expected = base64.b64encode(hmac.new(b"wc-secret", BODY, hashlib.sha256).digest()).decode()
    assert sign("wc-secret", BODY) == expected
    assert signature_matches("wc-secret", BODY, expected)


@pytest.mark.parametrize(
    ("platform", "header", "delivery_header"),
    [
        (Platform.WOOCOMMERCE, "x-wc-webhook-signature", "x-wc-webhook-delivery-id"),
        (Platform.SHOPIFY, "x-shopify-hmac-sha256", "x-shopify-webhook-id"),
        (Platform.GENERIC, "x-stocksync-signature", "x-stocksync-delivery-id"),
    ],
)
def test_a_valid_signature_is_accepted_for_each_platform(platform: Platform, header: str, delivery_header: str) -> None:
    headers = {header: sign(SECRETS[platform.value], BODY), delivery_header: "d-1"}
    verified = verify(headers, BODY, SECRETS)
    assert verified is not None
    assert verified.platform is platform
    assert verified.delivery_id == "d-1"


def test_a_wrong_secret_is_refused() -> None:
    headers = {"x-wc-webhook-signature": sign("not-the-secret", BODY)}
    assert verify(headers, BODY, SECRETS) is None


def test_another_platforms_secret_is_refused() -> None:
    headers = {"x-wc-webhook-signature": sign(SECRETS["generic"], BODY)}
    assert verify(headers, BODY, SECRETS) is None


def test_a_tampered_body_is_refused() -> None:
    headers = {"x-wc-webhook-signature": sign(SECRETS["woocommerce"], BODY)}
    assert verify(headers, BODY.replace(b"processing", b"cancelled"), SECRETS) is None
    # One byte of whitespace is tampering too: the signature is over the bytes, not over the JSON they decode to.
    assert verify(headers, BODY + b" ", SECRETS) is None
    assert json.loads(BODY + b" ") == json.loads(BODY)


@pytest.mark.parametrize("signature", [None, "", "   ", "not base64!", "A" * 500, sign("wc-secret", BODY)[:-4]])
def test_missing_empty_or_malformed_signatures_are_refused(signature: str | None) -> None:
    assert not signature_matches("wc-secret", BODY, signature)


def test_an_unsigned_request_has_no_platform() -> None:
    assert platform_of({"content-type": "application/json"}) is None
    assert verify({"content-type": "application/json"}, BODY, SECRETS) is None


def test_two_signature_headers_are_ambiguous_and_refused() -> None:
    headers = {
        "x-wc-webhook-signature": sign(SECRETS["woocommerce"], BODY),
        "x-stocksync-signature": sign(SECRETS["generic"], BODY),
    }
    assert verify(headers, BODY, SECRETS) is None


def test_a_platform_without_a_secret_is_refused_even_with_an_empty_key() -> None:
    headers = {"x-stocksync-signature": sign("", BODY)}
    assert verify(headers, BODY, {"woocommerce": "wc-secret"}) is None
    assert verify(headers, BODY, {"generic": ""}) is None


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(left: bytes, right: bytes) -> bool:
        calls.append((left, right))
        return real(left, right)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signature_matches("wc-secret", BODY, sign("wc-secret", BODY))
    assert len(calls) == 1


# ------------------------------------------------------------------ the secret (on the session's moto server)


def test_secrets_come_from_secrets_manager_and_are_cached(aws_store: Callable[[str], str]) -> None:
    name = aws_store("stocksync/webhooks")
    client = boto3.client("secretsmanager")
    client.create_secret(Name=name, SecretString=json.dumps({**SECRETS, "note": "ignored"}))
    provider = WebhookSecrets(name)
    assert provider.get() == SECRETS
    client.put_secret_value(SecretId=name, SecretString=json.dumps({"woocommerce": "rotated"}))
    assert provider.get() == SECRETS  # cached for max_age
    parameters.clear_caches()  # what max_age seconds later does
    assert provider.get() == {"woocommerce": "rotated"}


def test_a_missing_or_malformed_secret_is_a_configuration_error_that_shows_no_value(
    aws_store: Callable[[str], str],
) -> None:
    with pytest.raises(ConfigurationError, match="cannot read secret"):
        WebhookSecrets(aws_store("stocksync/absent")).get()
    client = boto3.client("secretsmanager")
    client.create_secret(Name=aws_store("stocksync/list"), SecretString=json.dumps(["wc-secret"]))
    with pytest.raises(ConfigurationError, match="JSON object") as caught:
        WebhookSecrets(aws_store("stocksync/list")).get()
    assert "wc-secret" not in str(caught.value)
    client.create_secret(Name=aws_store("stocksync/number"), SecretString=json.dumps({"woocommerce": 12345}))
    with pytest.raises(ConfigurationError, match="woocommerce is not a string") as caught:
        WebhookSecrets(aws_store("stocksync/number")).get()
    assert "12345" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        WebhookSecrets("")


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=64),
    body=st.binary(max_size=2048),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_one_byte_change_breaks_the_signature(secret: str, body: bytes, position: int, flip: int) -> None:
    signature = sign(secret, body)
    assert signature_matches(secret, body, signature)
    if body:
        index = position % len(body)
        tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
        assert not signature_matches(secret, tampered, signature)
    assert not signature_matches(secret, body + b"\n", signature)
    assert not signature_matches(secret + "x", body, signature)
