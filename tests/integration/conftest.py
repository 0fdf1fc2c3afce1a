"""The Commerce Platform simulator the handlers talk to (``platform``), shared by the integration test modules.

A module says how its simulator is built by overriding ``platform_options``; one that needs products in it from the
start overrides ``platform`` itself, taking this one as its argument.

The Graph client the functions build does not sleep between its retries here: it notes the wait in ``graph_waits``
and retries at once. The simulator's clock, which the product's follows, stays where a real sleep would leave it too
(a sleep passes real time only), so nothing a test observes changes, except the seconds a 503's backoff used to take.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import pytest

from stocksync import clock
from stocksync.integrations import graph_api
from stocksync.integrations.graph_api import GraphApiClient, clear_graph_client_cache
from stocksync.models.settings import get_settings
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator


@pytest.fixture
def platform_options() -> dict[str, Any]:
    """CommercePlatformSimulator's keyword arguments for ``platform`` (its ``access_token`` and ``app_secret`` are
    what the stack's secret is set to), plus ``follow_clock``: whether the product's clock follows the simulator's,
    as in a replay (default True)."""
    return {}


@pytest.fixture
def graph_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the functions' Graph client would have slept between retries, in order (it does not sleep)."""
    waits: list[float] = []
    build = graph_api._client_for.__wrapped__  # the product's construction, cached below as it caches it

    @lru_cache(maxsize=4)
    def client_for(base_url: str, api_version: str, credentials_reference: str) -> GraphApiClient:
        client = build(base_url, api_version, credentials_reference)
        assert hasattr(client, "_sleep"), "GraphApiClient no longer keeps its sleep in _sleep: update graph_waits"
        client._sleep = waits.append
        return client

    monkeypatch.setattr(graph_api, "_client_for", client_for)
    return waits


@pytest.fixture
def platform(
    local_aws: LocalAws,
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    platform_options: dict[str, Any],
    graph_waits: list[float],
) -> Iterator[CommercePlatformSimulator]:
    """A started simulator the functions reach as the Graph API (STOCKSYNC_GRAPH_BASE_URL, credentials in the stack's
    secret), settings and the cached Graph client read afresh; stopped, and the product's clock real, afterwards."""
    options = {"access_token": "integration-token", "app_secret": "integration-app-secret", **platform_options}
    follow_clock = options.pop("follow_clock", True)
    with CommercePlatformSimulator(**options) as sim:
        monkeypatch.setenv("STOCKSYNC_GRAPH_BASE_URL", sim.url)
        local_aws.put_graph_credentials(options["access_token"], options["app_secret"])
        get_settings.cache_clear()
        clear_graph_client_cache()
        if follow_clock:
            clock.use(sim.now)
        try:
            yield sim
        finally:
            clock.use(None)
            clear_graph_client_cache()


@pytest.fixture(autouse=True)
def iam_audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With ``STOCKSYNC_IAM_AUDIT=1``, every AWS call a handler makes in the test must be allowed by its function's
    role in the translated template (tests/iam_audit.py): moto lets every call through, so this is how the roles are
    checked against what the handlers really do. Off by default: it translates the template once per session and
    walks the stack at every call."""
    if os.environ.get("STOCKSYNC_IAM_AUDIT") != "1":
        yield
        return
    from botocore.client import BaseClient

    from tests.iam_audit import Call, denied, record_handler_calls

    calls: list[Call] = []
    monkeypatch.setattr(BaseClient, "_make_api_call", record_handler_calls(calls))
    yield
    refused = sorted(denied(calls), key=str)
    assert refused == [], f"calls the functions' roles would refuse: {refused}"
