"""The lease adapter (stocksync.dal.leases) against the control table deployed in moto server.

Each rule is one conditional write, so these tests pin what each write lets through: a live lease is never taken,
an expired one is, a holder gets its own back, and only the holder renews or releases. That two writes racing cannot
both pass their condition is DynamoDB's guarantee (moto server does not make a write atomic with its condition, so a
threaded race here would test moto, not the adapter); the interleavings below are the ones a race can produce.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync.dal.leases import Leases
from stocksync_dev.local.aws import LocalAws
from tests.support import SteppedClock, stepped_clock

START = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


@pytest.fixture
def time() -> Iterator[SteppedClock]:
    with stepped_clock(START) as stepped:
        yield stepped


@pytest.fixture
def leases(local_aws: LocalAws, aws_env: dict[str, str]) -> Leases:
    return Leases(local_aws.client("dynamodb"), aws_env["CONTROL_TABLE"])


def stored(local_aws: LocalAws, aws_env: dict[str, str], name: str) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(TableName=aws_env["CONTROL_TABLE"], Key=encode({"name": name}))
    return decode(answer.get("Item", {}))


def in_ten_minutes(time: SteppedClock) -> datetime:
    return time.moment + timedelta(minutes=10)


def test_a_free_lease_is_acquired_and_stored_with_its_expiry_as_the_ttl_attribute(
    leases: Leases, time: SteppedClock, local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    claim = leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert (claim.held, claim.holder, claim.expires_at) == (True, "run-A", START + timedelta(minutes=10))
    item = stored(local_aws, aws_env, "lease#sweep#fast")
    # Whole epoch seconds: the control table's TTL attribute deletes a lease nobody released.
    assert item["holder"] == "run-A" and item["expires_at"] == int((START + timedelta(minutes=10)).timestamp())
    assert leases.current("sweep#fast").holder == "run-A"


def test_a_live_lease_is_refused_to_another_holder_who_learns_who_holds_it_until_when(
    leases: Leases, time: SteppedClock
) -> None:
    leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    time.advance(599)
    claim = leases.acquire("sweep#fast", "run-B", until=in_ten_minutes(time))
    assert (claim.held, claim.holder, claim.expires_at) == (False, "run-A", START + timedelta(minutes=10))
    # Other names are other leases.
    assert leases.acquire("sweep#slow", "run-B", until=in_ten_minutes(time)).held


def test_the_same_holder_gets_its_own_lease_back(leases: Leases, time: SteppedClock) -> None:
    """A retried invocation (Lambda keeps the request id) must not find itself in the way."""
    leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    time.advance(30)
    claim = leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert claim.held and claim.expires_at == START + timedelta(minutes=10, seconds=30)


def test_an_expired_lease_is_taken_over_and_its_old_holder_can_neither_renew_nor_release_it(
    leases: Leases, time: SteppedClock, local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    time.advance(601)
    assert leases.acquire("sweep#fast", "run-B", until=in_ten_minutes(time)).held
    renewed = leases.renew("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert (renewed.held, renewed.holder) == (False, "run-B")
    assert not leases.release("sweep#fast", "run-A")
    assert stored(local_aws, aws_env, "lease#sweep#fast")["holder"] == "run-B"


def test_the_holder_renews_even_an_expired_lease_nobody_took(leases: Leases, time: SteppedClock) -> None:
    leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    time.advance(900)  # expired, but still run-A's
    claim = leases.renew("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert claim.held and claim.expires_at == START + timedelta(minutes=25)
    assert not leases.acquire("sweep#fast", "run-B", until=in_ten_minutes(time)).held


def test_renew_never_recreates_a_released_lease(leases: Leases, time: SteppedClock) -> None:
    leases.acquire("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert leases.release("sweep#fast", "run-A")
    assert leases.current("sweep#fast").holder is None
    claim = leases.renew("sweep#fast", "run-A", until=in_ten_minutes(time))
    assert (claim.held, claim.holder) == (False, None)
    assert leases.current("sweep#fast").holder is None
    assert not leases.release("sweep#fast", "run-A")  # twice: nothing left to release
    # Released means free at once, without waiting for the expiry.
    assert leases.acquire("sweep#fast", "run-B", until=in_ten_minutes(time)).held
