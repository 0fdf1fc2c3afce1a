"""Fixtures every test tier shares, and the guard that keeps every test off the network.

Integration tests get one moto server with template.yaml deployed into it per session (``local_aws``) and, per
test, the functions' environment pointing at it with every table and queue emptied (``aws_env``). The few unit tests
of an adapter over Secrets Manager or SSM use the same server through ``aws_store``. Nothing uses moto's ``mock_aws``:
leaving one resets moto's in-process state, and with it the session's deployed stack, which the tests that share a
pytest-xdist worker with it are still using.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from stocksync_dev.local.aws import LocalAws


class SocketBlockedError(RuntimeError):
    """A test tried to reach a host other than this machine; tests never reach the internet."""


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and other local families
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would be resolved and reached


def _guard(method: Any) -> Any:
    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise SocketBlockedError(f"test tried to connect to {address!r}; only 127.0.0.1 / ::1 are allowed")
        return method(sock, address)

    return guarded


def pytest_configure(config: pytest.Config) -> None:
    """Allow sockets to 127.0.0.1 only (moto, the simulator), from the first import of any test module on."""
    socket.socket.connect = _guard(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guard(socket.socket.connect_ex)  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """moto server with the stack deployed: one per session, shared by every integration test."""
    from stocksync_dev.local.aws import LocalAws

    with LocalAws() as aws:
        yield aws


@pytest.fixture
def aws_env(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The functions' environment (as the template sets it, resolved against moto) applied to os.environ, caches
    that remember the previous environment cleared, and every table and queue empty. Yields the environment.
    """
    from tests.support import pointed_at

    with pointed_at(local_aws, monkeypatch) as environment:
        yield environment


@pytest.fixture
def aws_store(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """boto3 pointed at the session's moto server, for tests of an adapter over secrets or parameters. Yields
    ``unique(name)``: the name (a secret's, or an SSM parameter's with its leading slash) prefixed with this test's
    own token, since what one test stores on the shared server outlives it.
    """
    from tests.support import pointed_at

    token = f"t{uuid.uuid4().hex[:12]}-"

    def unique(name: str) -> str:
        return f"/{token}{name[1:]}" if name.startswith("/") else f"{token}{name}"

    with pointed_at(local_aws, monkeypatch, only_aws=True):
        yield unique


@pytest.fixture(autouse=True)
def backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The conflict backoff's waits (logic/backoff.py), noted instead of slept: a test that races writers on a hot
    SKU takes no real time, and can assert the waits."""
    from stocksync.logic import backoff

    waits: list[float] = []
    monkeypatch.setattr(backoff, "_sleep", waits.append)
    return waits
