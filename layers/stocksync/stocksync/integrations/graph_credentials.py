"""Graph API credentials: fetched from Secrets Manager or SSM SecureString, cached briefly, never shown.

The token and the app secret live only in ``SecretStr`` fields, so a repr, a log line or a validation error shows
``**********``. A rotated token is picked up within ``max_age`` seconds, or at once when the client sees code 190
and asks for a forced fetch.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from pydantic import ConfigDict, Field, SecretStr, ValidationError

from stocksync.errors import ConfigurationError
from stocksync.models.base import Model

CREDENTIALS_SETTING = "STOCKSYNC_GRAPH_CREDENTIALS"
DEFAULT_MAX_AGE_SECONDS = 300


class GraphCredentials(Model):
    """The secret's JSON: ``{"access_token": "...", "app_secret": "..."}`` (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: Annotated[SecretStr, Field(min_length=1)]
    app_secret: Annotated[SecretStr, Field(min_length=1)]

    def appsecret_proof(self) -> str:
        """Hex HMAC-SHA256 of the token keyed with the app secret: proves the call comes from the app's server."""
        key = self.app_secret.get_secret_value().encode()
        return hmac.new(key, self.access_token.get_secret_value().encode(), hashlib.sha256).hexdigest()


class CredentialsProvider(Protocol):
    """Where the client gets its credentials; ``force_fetch`` bypasses any cache (after a 190)."""

    def get(self, *, force_fetch: bool = False) -> GraphCredentials: ...


class StaticCredentialsProvider:
    """Fixed credentials: for the local simulator and replay, where there is no secret store."""

    def __init__(self, credentials: GraphCredentials) -> None:
        self._credentials = credentials

    def get(self, *, force_fetch: bool = False) -> GraphCredentials:
        return self._credentials


class SecretReferenceCredentialsProvider:
    """Credentials named by ``Settings.graph_credentials``: ``secretsmanager:<name-or-arn>`` or ``ssm:<name>``.

    Nothing is fetched until the first ``get``, so building a client at import time costs no network call.
    """

    def __init__(self, reference: str, *, max_age: int = DEFAULT_MAX_AGE_SECONDS) -> None:
        store, _, name = reference.partition(":")
        if store not in {"secretsmanager", "ssm"} or not name:
            raise ConfigurationError(CREDENTIALS_SETTING, "expected secretsmanager:<name> or ssm:<name>")
        self._store = store
        self._name = name
        self._max_age = max_age

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store}:{self._name})"

    def get(self, *, force_fetch: bool = False) -> GraphCredentials:
        try:
            value = self._fetch(force_fetch)
        except TransformParameterError:
            raise ConfigurationError(CREDENTIALS_SETTING, f"{self._store}:{self._name} is not valid JSON") from None
        except GetParameterError as exc:
            raise ConfigurationError(CREDENTIALS_SETTING, f"cannot read {self._store}:{self._name}: {exc}") from None
        return self._validate(value)

    def _fetch(self, force_fetch: bool) -> Any:
        if self._store == "secretsmanager":
            return parameters.get_secret(self._name, transform="json", max_age=self._max_age, force_fetch=force_fetch)
        return parameters.get_parameter(
            self._name, decrypt=True, transform="json", max_age=self._max_age, force_fetch=force_fetch
        )

    def _validate(self, value: Any) -> GraphCredentials:
        where = f"{self._store}:{self._name}"
        if not isinstance(value, dict):
            raise ConfigurationError(
                CREDENTIALS_SETTING, f"{where} must hold a JSON object with access_token and app_secret"
            )
        try:
            return GraphCredentials.model_validate(value)
        except ValidationError as exc:
            # Name the key and the kind of problem only: the error's input would echo the secret.
            first = exc.errors(include_input=False, include_url=False)[0]
            key = ".".join(str(part) for part in first["loc"])
            problem = "missing" if first["type"] == "missing" else "empty or not a string"
            raise ConfigurationError(CREDENTIALS_SETTING, f"{where}: key {key} is {problem}") from None
