"""Crashes between "the platform accepted the call" and "the handle is recorded", through push_batch's real entry
point against moto server and the Commerce Platform simulator, with SQS's redelivery played by the test: a record
reported failed comes back with its receive count up (to the last of ``MAX_RECEIVES``), and what push_batch sends
back to the push queue comes as a new record. The simulator counts the items_batch calls.
"""

from __future__ import annotations

from typing import Any

import pytest

from stocksync.dal.batches_table import BatchesTable
from stocksync.integrations.sqs_batch import MAX_RECEIVES
from stocksync.models.push import BatchRecord
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.integration.test_push_verify import (
    FIELD,
    T0,
    messages,
    push_body,
    release,
    seed,
    states,
    verify_all,
)
from tests.support import FakeLambdaContext, load_handler, sqs_event

TOKEN, APP_SECRET = "fault-token", "fault-app-secret"


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {"access_token": TOKEN, "app_secret": APP_SECRET, "start": T0}


def deliver_as_sqs(local_aws: LocalAws, bodies: list[dict[str, Any]]) -> int:
    """Run push_batch until nothing is left to deliver; returns the invocations made."""
    handler = load_handler("push_batch")
    pending = [(body, 1) for body in bodies]
    invocations = 0
    while pending:
        event = sqs_event([body for body, _count in pending])
        for record, (_body, count) in zip(event["Records"], pending, strict=True):
            record["attributes"]["ApproximateReceiveCount"] = str(count)
        answer = handler.lambda_handler(event, FakeLambdaContext())
        invocations += 1
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        # SQS redelivers a failed record until its MAX_RECEIVES-th receive, then redrives it to the queue's own DLQ.
        pending = [(body, count + 1) for i, (body, count) in enumerate(pending) if f"msg-{i}" in failed]
        pending = [(body, count) for body, count in pending if count <= MAX_RECEIVES]
        release(local_aws, "PUSH_QUEUE_URL")
        pending += [(message["body"], 1) for message in messages(local_aws, "PUSH_QUEUE_URL")]
        if invocations >= 4 * MAX_RECEIVES:  # never settles: the caller's assertions say what went wrong
            break
    return invocations


@pytest.fixture
def record_failures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make BatchesTable.record raise while the list's first number is above 0 (counting down), as a crash of the
    record step; -1 raises for ever."""
    budget = [0]
    original = BatchesTable.record

    def record(self: BatchesTable, batch: BatchRecord) -> None:
        if budget[0] != 0:
            budget[0] -= 1 if budget[0] > 0 else 0
            raise RuntimeError("injected: crashed recording the batch")
        original(self, batch)

    monkeypatch.setattr(BatchesTable, "record", record)
    return budget


def test_a_crash_recording_an_accepted_batch_leads_to_exactly_one_call_and_the_values_are_confirmed(
    local_aws: LocalAws, platform: CommercePlatformSimulator, record_failures: list[int]
) -> None:
    seed(local_aws, platform, ["A", "B", "C"])
    record_failures[0] = 1
    deliver_as_sqs(local_aws, [push_body("A", 5), push_body("B", 6), push_body("C", 7)])
    assert platform.calls[("POST", "items_batch")] == 1

    platform.advance(30)
    assert all(answer == {"batchItemFailures": []} for answer in verify_all(local_aws))
    stored = states(local_aws)
    assert {rid: (stored[rid]["confirmed_value"], stored[rid]["confirmed_version"]) for rid in "ABC"} == {
        "A": (5, 1),
        "B": (6, 1),
        "C": (7, 1),
    }
    assert [platform.catalog()[rid][FIELD] for rid in "ABC"] == [5, 6, 7]
    assert platform.calls[("POST", "items_batch")] == 1
    assert messages(local_aws, "DEAD_LETTER_QUEUE_URL") == []


def test_a_record_step_that_keeps_failing_makes_one_call_then_dead_letters_each_row_with_the_reason(
    local_aws: LocalAws, platform: CommercePlatformSimulator, record_failures: list[int]
) -> None:
    """The audit's case: before, one call per receive (5 for one change), then the queue's own DLQ, no reason."""
    seed(local_aws, platform, ["A"])
    record_failures[0] = -1
    deliver_as_sqs(local_aws, [push_body("A", 5)])
    assert platform.calls[("POST", "items_batch")] == 1
    [letter] = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert letter["body"]["body"]["retailer_id"] == "A" and letter["body"]["body"]["handle"]
    assert letter["body"]["reason"] == (
        f"failed on the last of {MAX_RECEIVES} tries: batch {letter['body']['body']['handle']} not recorded: "
        "RuntimeError: injected: crashed recording the batch"
    )


@pytest.mark.parametrize("receive_count", [1, MAX_RECEIVES])
def test_a_run_that_fails_whole_brings_its_records_back_and_dead_letters_them_with_the_class_on_the_last_try(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch, receive_count: int
) -> None:
    """Reading the SKU records fails (an unexpected error out of push_batch's planning step): before, the
    invocation failed whole and after 5 receives the push queue's own DLQ had the records, with no reason."""
    from stocksync.dal.sku_table import SkuTable

    def unavailable(self: SkuTable, retailer_ids: Any) -> Any:
        raise ConnectionError("sku table unreachable")

    seed(local_aws, platform, ["A", "B"])
    monkeypatch.setattr(SkuTable, "get_states", unavailable)
    event = sqs_event([push_body("A", 1), push_body("B", 2)])
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    answer = load_handler("push_batch").lambda_handler(event, FakeLambdaContext())
    letters = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    if receive_count < MAX_RECEIVES:
        assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
        assert letters == []
    else:
        assert answer == {"batchItemFailures": []}
        reason = f"unexpected ConnectionError on the last of {MAX_RECEIVES} tries: sku table unreachable"
        assert [(letter["body"]["reason"], letter["body"]["body"]["retailer_id"]) for letter in letters] == [
            (reason, "A"),
            (reason, "B"),
        ]
    assert platform.calls[("POST", "items_batch")] == 0


class Killed(BaseException):
    """The process dying (out of memory, Lambda's deadline): no except, no finally of the product runs after it."""


def test_a_pusher_killed_after_recording_its_batch_gets_it_verified_by_the_next_run_with_no_second_call(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the batch record and its verify message: its lease lapses unreleased, SQS redelivers its
    records after the visibility timeout, and the run they reach settles the lapsed lease first."""
    from stocksync.dal.budget import DynamoCallBudget

    seed(local_aws, platform, ["A", "B"])
    record, release = BatchesTable.record, DynamoCallBudget.release

    def record_then_die(self: BatchesTable, batch: BatchRecord) -> None:
        record(self, batch)
        raise Killed

    monkeypatch.setattr(BatchesTable, "record", record_then_die)
    monkeypatch.setattr(DynamoCallBudget, "release", lambda *args, **kwargs: None)  # a killed run never releases
    event = sqs_event([push_body("A", 5), push_body("B", 6)])
    with pytest.raises(Killed):
        load_handler("push_batch").lambda_handler(event, FakeLambdaContext())
    assert platform.calls[("POST", "items_batch")] == 1 and messages(local_aws, "VERIFY_QUEUE_URL") == []
    monkeypatch.setattr(BatchesTable, "record", record)
    monkeypatch.setattr(DynamoCallBudget, "release", release)

    platform.advance(61)  # past the dead run's lease (its remaining time, 60 s)
    for item in event["Records"]:
        item["attributes"]["ApproximateReceiveCount"] = "2"
    assert load_handler("push_batch").lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert platform.calls[("POST", "items_batch")] == 1

    platform.advance(30)
    assert all(answer == {"batchItemFailures": []} for answer in verify_all(local_aws))
    stored = states(local_aws)
    assert [(stored[rid]["confirmed_value"], stored[rid]["confirmed_version"]) for rid in "AB"] == [(5, 1), (6, 1)]
    assert platform.calls[("POST", "items_batch")] == 1
