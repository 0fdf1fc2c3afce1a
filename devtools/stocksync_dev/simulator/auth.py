"""Graph authentication as the simulator checks it: the access token, then (when required) appsecret_proof.

The token may come as a query or form parameter or as an ``Authorization: Bearer`` (or ``OAuth``) header, as on
Graph. The proof is the hex HMAC-SHA256 of the token keyed with the app secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from stocksync_dev.simulator.errors import GraphError, invalid_appsecret_proof, invalid_token, missing_appsecret_proof

SECRET_PARAMS = frozenset({"access_token", "appsecret_proof"})


def appsecret_proof(access_token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def presented_token(params: Mapping[str, Any], authorization: str | None) -> str | None:
    token = params.get("access_token")
    if isinstance(token, str) and token:
        return token
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() in {"bearer", "oauth"} and credentials.strip():
            return credentials.strip()
    return None


def check_credentials(
    params: Mapping[str, Any],
    authorization: str | None,
    *,
    access_token: str,
    app_secret: str,
    require_appsecret_proof: bool,
) -> GraphError | None:
    """The error Graph would answer for these credentials, or None when they are good."""
    token = presented_token(params, authorization)
    if token is None or not hmac.compare_digest(token.encode(), access_token.encode()):
        return invalid_token()
    if require_appsecret_proof:
        proof = params.get("appsecret_proof")
        if proof is None or proof == "":
            return missing_appsecret_proof()
        expected = appsecret_proof(access_token, app_secret)
        if not isinstance(proof, str) or not hmac.compare_digest(proof.encode(), expected.encode()):
            return invalid_appsecret_proof()
    return None
