"""Graph credentials from Secrets Manager / SSM SecureString (moto in-process), and the cached client factory."""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback
from collections.abc import Callable

import boto3
import pytest

from stocksync.errors import ConfigurationError
from stocksync.integrations.graph_api import clear_graph_client_cache, graph_client_from_settings
from stocksync.integrations.graph_credentials import GraphCredentials, SecretReferenceCredentialsProvider
from stocksync.models.settings import Settings

TOKEN = "EAAB-token-value-123"
APP_SECRET = "app-secret-value-456"


def put_secret(name: str, value: object) -> None:
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))


def put_parameter(name: str, value: object) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=json.dumps(value), Type="SecureString", Overwrite=True)


def test_reads_credentials_from_secrets_manager(aws_store: Callable[[str], str]) -> None:
    name = aws_store("stocksync/graph")
    put_secret(name, {"access_token": TOKEN, "app_secret": APP_SECRET, "app_id": "42"})
    credentials = SecretReferenceCredentialsProvider(f"secretsmanager:{name}").get()
    assert credentials.access_token.get_secret_value() == TOKEN
    assert credentials.app_secret.get_secret_value() == APP_SECRET


def test_reads_credentials_from_an_ssm_secure_string(aws_store: Callable[[str], str]) -> None:
    name = aws_store("/stocksync/graph")
    put_parameter(name, {"access_token": TOKEN, "app_secret": APP_SECRET})
    credentials = SecretReferenceCredentialsProvider(f"ssm:{name}").get()
    assert credentials.access_token.get_secret_value() == TOKEN


def test_cached_until_a_forced_fetch_picks_up_a_rotated_token(aws_store: Callable[[str], str]) -> None:
    name = aws_store("/stocksync/graph")
    put_parameter(name, {"access_token": TOKEN, "app_secret": APP_SECRET})
    provider = SecretReferenceCredentialsProvider(f"ssm:{name}")
    assert provider.get().access_token.get_secret_value() == TOKEN
    put_parameter(name, {"access_token": "rotated", "app_secret": APP_SECRET})
    assert provider.get().access_token.get_secret_value() == TOKEN
    assert provider.get(force_fetch=True).access_token.get_secret_value() == "rotated"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"access_token": TOKEN}, "key app_secret is missing"),
        ({"app_secret": APP_SECRET}, "key access_token is missing"),
        ({"access_token": "", "app_secret": APP_SECRET}, "key access_token is empty or not a string"),
        ({"access_token": 7, "app_secret": APP_SECRET}, "key access_token is empty or not a string"),
        ([TOKEN, APP_SECRET], "must hold a JSON object"),
    ],
)
def test_malformed_secret_names_the_problem_without_echoing_it(
    value: object, expected: str, aws_store: Callable[[str], str]
) -> None:
    name = aws_store("stocksync/graph")
    put_secret(name, value)
    with pytest.raises(ConfigurationError) as caught:
        SecretReferenceCredentialsProvider(f"secretsmanager:{name}").get()
    assert caught.value.setting == "STOCKSYNC_GRAPH_CREDENTIALS"
    assert expected in str(caught.value)
    # Not in the message, nor anywhere in the traceback a logger would print.
    printed = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in printed and APP_SECRET not in printed


def test_secret_that_is_not_json_is_a_configuration_error(aws_store: Callable[[str], str]) -> None:
    name = aws_store("plain")
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=f"token={TOKEN}")
    with pytest.raises(ConfigurationError, match="not valid JSON") as caught:
        SecretReferenceCredentialsProvider(f"secretsmanager:{name}").get()
    assert TOKEN not in str(caught.value)


def test_missing_secret_is_a_configuration_error(aws_store: Callable[[str], str]) -> None:
    name = aws_store("absent")
    with pytest.raises(ConfigurationError, match=f"cannot read secretsmanager:{name}"):
        SecretReferenceCredentialsProvider(f"secretsmanager:{name}").get()


@pytest.mark.parametrize("reference", ["vault:x", "ssm:", "secretsmanager"])
def test_unknown_reference_is_a_configuration_error(reference: str) -> None:
    with pytest.raises(ConfigurationError):
        SecretReferenceCredentialsProvider(reference)


def test_credentials_never_show_in_repr_or_str() -> None:
    credentials = GraphCredentials.model_validate({"access_token": TOKEN, "app_secret": APP_SECRET})
    for text in (repr(credentials), str(credentials), credentials.model_dump_json()):
        assert TOKEN not in text and APP_SECRET not in text


def test_appsecret_proof_is_hmac_sha256_of_the_token_keyed_with_the_app_secret() -> None:
    credentials = GraphCredentials.model_validate({"access_token": TOKEN, "app_secret": APP_SECRET})
    expected = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert credentials.appsecret_proof() == expected
    assert len(expected) == 64


def settings(api_version: str = "v25.0") -> Settings:
    # Only the Graph settings matter to the factory; the rest of Settings is not this module's business.
    return Settings.model_construct(
        graph_base_url="https://graph.facebook.com",
        graph_api_version=api_version,
        graph_credentials="secretsmanager:stocksync/graph",
    )


def test_client_factory_is_cached_per_process_and_lazy() -> None:
    clear_graph_client_cache()
    try:
        # No AWS is mocked here: building the client must not touch the secret store.
        first = graph_client_from_settings(settings())
        assert graph_client_from_settings(settings()) is first
        assert first.api_version == "v25.0"
        other = graph_client_from_settings(settings("v24.0"))
        assert other is not first and other.api_version == "v24.0"
    finally:
        clear_graph_client_cache()


def test_forgetting_the_graph_clients_forgets_powertools_providers_and_the_clients_they_hold() -> None:
    """A provider keeps the boto3 client it was made with: after its max age it re-fetched through an earlier local
    stack's stopped endpoint (several replays in one process: tune)."""
    from aws_lambda_powertools.utilities.parameters import base

    from stocksync.integrations.graph_api import clear_graph_client_cache

    base.DEFAULT_PROVIDERS["secrets"] = object()  # what a first get_secret leaves behind
    clear_graph_client_cache()
    assert "secrets" not in base.DEFAULT_PROVIDERS
