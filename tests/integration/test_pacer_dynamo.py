"""The pacer's item in DynamoDB (moto server): slots, the lease and the platform pause survive across invocations,
and two runs that race for the same slot never both get it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stocksync.dal.budget import DynamoCallBudget
from stocksync_dev.local.aws import LocalAws

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def budget(local_aws: LocalAws, env: dict[str, str], **kwargs: Any) -> DynamoCallBudget:
    return DynamoCallBudget(
        local_aws.client("dynamodb"), env["CONTROL_TABLE"], catalog_id="1001", calls_per_hour=90, burst=3, **kwargs
    )


def test_slots_lease_and_pause_are_shared_by_every_invocation(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    first, second = budget(local_aws, aws_env), budget(local_aws, aws_env)
    granted = first.acquire_slots(4000, preferred_size=3000, now=T0, holder="a", lease_seconds=60)
    assert (granted.calls, granted.size, granted.calls_in_hour) == (2, 3000, 2)
    # Another invocation, same instant: the lease is held, so no call, and it is told to come back shortly.
    refused = second.acquire_slots(10, preferred_size=3000, now=T0, holder="b", lease_seconds=60)
    assert refused.calls == 0 and refused.retry_after_seconds == 5
    first.release("a")
    # The burst's third call is left; then the next is a slot away.
    assert second.acquire_slots(10, preferred_size=3000, now=T0, holder="b", lease_seconds=60).calls == 1
    second.release("b")
    waiting = second.acquire_slots(10, preferred_size=3000, now=T0, holder="b", lease_seconds=60)
    assert waiting.calls == 0 and waiting.retry_after_seconds == second.pace.slot_seconds
    state = first.state()
    assert (state.holder, len(state.window.call_times_ms)) == ("", 3)
    # A platform pause stops every invocation until it ends.
    first.block_until(T0 + timedelta(minutes=10))
    later = T0 + timedelta(minutes=5)
    assert second.acquire_slots(10, preferred_size=3000, now=later, holder="b", lease_seconds=60).calls == 0
    after = T0 + timedelta(minutes=10)
    assert second.acquire_slots(10, preferred_size=3000, now=after, holder="b", lease_seconds=60).calls == 1


def test_two_runs_racing_for_the_last_open_slot_never_both_get_it(
    local_aws: LocalAws, aws_env: dict[str, str], backoff_waits: list[float]
) -> None:
    """Interleaves the read-compute-write of two runs: B writes between A's read and A's write. A's conditional
    write fails, A reads again and finds the slot (and B's lease) taken."""
    a, b = budget(local_aws, aws_env), budget(local_aws, aws_env)
    for holder in ("x", "y"):  # spend two of the burst's three slots
        a.acquire_slots(1, preferred_size=3000, now=T0, holder=holder, lease_seconds=60)
        a.release(holder)
    load = a._load
    raced = []

    def load_then_let_b_in() -> Any:
        answer = load()
        if not raced:
            raced.append(b.acquire_slots(1, preferred_size=3000, now=T0, holder="b", lease_seconds=60))
        return answer

    a._load = load_then_let_b_in  # type: ignore[method-assign]
    granted = a.acquire_slots(1, preferred_size=3000, now=T0, holder="a", lease_seconds=60)
    assert raced[0].calls == 1
    assert granted.calls == 0
    assert len(a.state().window.call_times_ms) == 3
    # A's conflicting write was tried again after one jittered wait (at most 25 ms), not at once.
    assert len(backoff_waits) == 1 and 0 <= backoff_waits[0] <= 0.025


def test_calls_granted_but_never_made_are_given_back_with_the_lease(
    local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    first, later = budget(local_aws, aws_env), budget(local_aws, aws_env)
    granted = first.acquire_slots(9000, preferred_size=3000, now=T0, holder="a", lease_seconds=60)
    assert granted.calls == 3
    first.release("a", unused=2)  # one call made, then the run stopped (a throttle, a failure)
    state = later.state()
    assert (state.holder, len(state.window.call_times_ms)) == ("", 1)
    # The two slots are the rate's again: a run at the same instant gets them.
    assert later.acquire_slots(9000, preferred_size=3000, now=T0, holder="b", lease_seconds=60).calls == 2
    # A run whose lease lapsed and was taken gives nothing back: the new holder's grant counted on the log.
    first.release("a", unused=2)
    assert len(later.state().window.call_times_ms) == 3
