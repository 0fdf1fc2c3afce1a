"""The one place the product creates boto3 clients: lazily, once per service, from the environment of that moment.

Lazy because a client fixes its endpoint and credentials when it is created: one created at import time, before
the tests (or the local replay) point ``AWS_ENDPOINT_URL`` at moto, would talk to real AWS. boto3 reads
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself when a client is created, so the same code runs
unchanged in Lambda, where those variables are unset. Cached because creating a client costs milliseconds and a
warm Lambda should reuse its connections.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and transient errors, the AWS default to prefer.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_lock = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    # A session of our own (not boto3's default one), so reset_clients() also forgets resolved credentials.
    return boto3.session.Session()


@cache
def _client(service_name: str) -> Any:
    return _session().client(service_name, config=_CONFIG)


@cache
def _resource(service_name: str) -> Any:
    return _session().resource(service_name, config=_CONFIG)


def client(service_name: str) -> Any:
    """The process's boto3 client for ``service_name`` (``"dynamodb"``, ``"sqs"``, ``"events"``, ...)."""
    with _lock:  # boto3 sessions are not thread-safe; clients are, once created
        return _client(service_name)


def resource(service_name: str) -> Any:
    """The process's boto3 resource for ``service_name`` (``"dynamodb"``, ...)."""
    with _lock:
        return _resource(service_name)


def reset_clients() -> None:
    """Forget every client, resource and credential, so the next call reads the environment again (tests)."""
    with _lock:
        _client.cache_clear()
        _resource.cache_clear()
        _session.cache_clear()
