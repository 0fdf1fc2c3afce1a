"""Two sweeps of a bucket never overlap: the racing steps interleaved through sweep_stock's real entry point,
against the stack deployed in moto server.

Each handler call below is one Lambda invocation: the bucket's schedule firing (``{"bucket": "fast"}``, the request
id of the invocation being the run), or the sweep queue delivering a part's hand-over. The 2,500 SKUs of the fast
bucket take three parts when an invocation has 5 s left (less than the sweep's reserve, so one page of 1,000 each).
A part's lease lasts twice the time its invocation has (stocksync.logic.sweep_lease), so 10 s here: the scale of
these tests, where a deployment has a 300 s timeout, 600 s leases and a fast schedule of 5 minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from stocksync.dal.codec import decode, encode
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import load_template
from tests.integration.test_recompute import SWEEP_ARN, messages, seed, sku_record
from tests.support import (
    FakeLambdaContext,
    SteppedClock,
    drain_queue,
    emitted_metrics,
    load_handler,
    sqs_event,
    stepped_clock,
)

SKUS = [f"SKU-{index:04d}" for index in range(2_500)]
CHANGED = {sku for index, sku in enumerate(SKUS) if index % 25 == 0}  # one order each: 10 - 1 = 9 to push


@pytest.fixture
def time() -> Iterator[SteppedClock]:
    with stepped_clock(datetime.now(UTC).replace(microsecond=0)) as stepped:
        yield stepped


@pytest.fixture
def bucket(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    seed(local_aws, [sku_record(sku, pending_created=int(sku in CHANGED)) for sku in SKUS])


def scheduled(run: str, *, remaining_ms: int = 5_000) -> dict[str, Any]:
    """The fast bucket's schedule fires; Lambda gives the invocation the request id ``run``."""
    context = FakeLambdaContext(remaining_ms=remaining_ms, aws_request_id=run)
    return load_handler("sweep_stock").lambda_handler({"bucket": "fast"}, context)


def continuation(body: dict[str, Any]) -> None:
    """The sweep queue delivers one hand-over; the part must succeed (a failure would be redelivered)."""
    answer = load_handler("sweep_stock").lambda_handler(
        sqs_event([body], queue_arn=SWEEP_ARN), FakeLambdaContext(remaining_ms=5_000)
    )
    assert answer == {"batchItemFailures": []}


def hand_overs(aws_env: dict[str, str], local_aws: LocalAws) -> list[dict[str, Any]]:
    """Every hand-over waiting in the sweep queue, taken off it (the test delivers them when it chooses)."""
    return [message["body"] for message in drain_queue(local_aws.client("sqs"), aws_env["SWEEP_QUEUE_URL"])]


def lease(local_aws: LocalAws, aws_env: dict[str, str]) -> dict[str, Any]:
    answer = local_aws.client("dynamodb").get_item(
        TableName=aws_env["CONTROL_TABLE"], Key=encode({"name": "lease#sweep#fast"}), ConsistentRead=True
    )
    return decode(answer.get("Item", {}))


def pushes(local_aws: LocalAws) -> set[str]:
    """The SKUs pushed since the last look, each at most once (a SKU pushed twice would be two sweeps' work)."""
    pushed = [body["retailer_id"] for body in messages(local_aws, "PUSH_QUEUE_URL")]
    assert len(pushed) == len(set(pushed)), sorted(pushed)
    return set(pushed)


def changed_before(sku: str) -> set[str]:
    return {changed for changed in CHANGED if changed < sku}


@pytest.mark.usefixtures("bucket")
def test_a_scheduled_sweep_that_fires_while_a_continuation_waits_skips_and_the_next_after_the_end_proceeds(
    local_aws: LocalAws,
    aws_env: dict[str, str],
    time: SteppedClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A's first part does a page and hands the rest over; the hand-over carries A's run.
    first = scheduled("run-A")
    assert (first["resume_after"], first["part"], first["run"]) == ("SKU-0999", 0, "run-A")
    waiting = hand_overs(aws_env, local_aws)
    assert [(body["after"], body["part"], body["run"]) for body in waiting] == [("SKU-0999", 1, "run-A")]
    assert lease(local_aws, aws_env)["holder"] == "run-A"
    assert pushes(local_aws) == changed_before("SKU-1000")

    # B, the next tick of the schedule, fires before A's continuation runs: it pages nothing and succeeds.
    time.advance(8)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        skipped = scheduled("run-B")
    assert skipped["skipped"] and (skipped["bucket"], skipped["run"], skipped["holder"]) == ("fast", "run-B", "run-A")
    assert "pages" not in skipped and "rejected" not in skipped  # no sweep, and no dead letter: a success
    assert emitted_metrics(capsys.readouterr().out)["StockSync/SweepsSkipped service=stocksync"] == [1.0]
    logged = [record.getMessage() for record in caplog.records if "skipped" in record.getMessage()]
    assert logged == ["sweep of bucket fast skipped: run run-A is sweeping it"]
    assert hand_overs(aws_env, local_aws) == []  # B handed nothing over
    assert pushes(local_aws) == set()  # and pushed nothing
    assert lease(local_aws, aws_env)["holder"] == "run-A"

    # A's continuations run to the end of the bucket; the last part releases the bucket.
    parts = []
    while waiting:
        parts.extend((body["after"], body["part"], body["run"]) for body in waiting)
        for body in waiting:
            continuation(body)
        waiting = hand_overs(aws_env, local_aws)
    assert parts == [("SKU-0999", 1, "run-A"), ("SKU-1999", 2, "run-A")]
    assert pushes(local_aws) == CHANGED - changed_before("SKU-1000")  # the rest, each SKU once
    assert lease(local_aws, aws_env) == {}

    # The next tick proceeds: a whole sweep, which finds everything pushed.
    time.advance(270)
    after = scheduled("run-C", remaining_ms=900_000)
    assert after["finished"] and after["skus"] == len(SKUS) and after["pushes_enqueued"] == 0
    assert after["run"] == "run-C" and lease(local_aws, aws_env) == {}


@pytest.mark.usefixtures("bucket")
def test_a_crashed_sweep_lets_go_of_its_bucket_and_its_late_continuation_stops_without_sweeping(
    local_aws: LocalAws,
    aws_env: dict[str, str],
    time: SteppedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduled("run-A")
    late = hand_overs(aws_env, local_aws)  # A's continuation: its invocation crashes, SQS will deliver it again
    assert [body["run"] for body in late] == ["run-A"]
    assert pushes(local_aws) == changed_before("SKU-1000")

    # Within A's lease, the schedule still skips; once it has expired, B takes the bucket over from its start.
    time.advance(9)
    assert scheduled("run-B")["skipped"]
    time.advance(2)
    taken = scheduled("run-B2")
    assert (taken["resume_after"], taken["part"], taken["run"]) == ("SKU-0999", 0, "run-B2")
    assert lease(local_aws, aws_env)["holder"] == "run-B2"
    b_parts = hand_overs(aws_env, local_aws)

    # A's continuation comes back (the queue's visibility timeout later): it sweeps nothing and hands nothing over.
    with caplog.at_level(logging.WARNING):
        continuation(late[0])
    assert pushes(local_aws) == set()  # SKU-1000 on: A would have pushed SKU-1000, SKU-1025, ...
    assert hand_overs(aws_env, local_aws) == []
    stopped = [record.getMessage() for record in caplog.records if "stopped" in record.getMessage()]
    assert stopped == ["sweep of bucket fast stopped: run run-A no longer holds it (holder: run-B2)"]
    assert lease(local_aws, aws_env)["holder"] == "run-B2"

    # B goes on to the end undisturbed and releases the bucket.
    while b_parts:
        for body in b_parts:
            assert body["run"] == "run-B2"
            continuation(body)
        b_parts = hand_overs(aws_env, local_aws)
    assert pushes(local_aws) == CHANGED - changed_before("SKU-1000")
    assert lease(local_aws, aws_env) == {}

    # A hand-over delivered twice after its run ended finds the bucket free but not its own: it stops too.
    continuation(late[0])
    assert pushes(local_aws) == set() and hand_overs(aws_env, local_aws) == [] and lease(local_aws, aws_env) == {}


@pytest.mark.usefixtures("bucket")
def test_a_retried_start_takes_its_own_lease_back_and_a_continuation_after_a_quiet_expiry_goes_on(
    local_aws: LocalAws, aws_env: dict[str, str], time: SteppedClock
) -> None:
    """Lambda retries a failed scheduled invocation with the same request id: the retry is the same run, not a
    second sweep beside the first. And a continuation whose lease lapsed while nobody else wanted the bucket keeps
    its sweep (it renews its own lease) instead of dropping the rest of the bucket."""
    scheduled("run-A")
    hand_overs(aws_env, local_aws)  # the first attempt's hand-over is lost with its crash
    retried = scheduled("run-A")
    assert "skipped" not in retried and retried["run"] == "run-A" and retried["part"] == 0
    waiting = hand_overs(aws_env, local_aws)
    assert [(body["after"], body["run"]) for body in waiting] == [("SKU-0999", "run-A")]

    time.advance(3600)  # long expired, nobody took it
    while waiting:
        for body in waiting:
            continuation(body)
        waiting = hand_overs(aws_env, local_aws)
    assert pushes(local_aws) == CHANGED
    assert lease(local_aws, aws_env) == {}


def test_the_sweep_may_write_its_bucket_leases_and_no_other_control_item() -> None:
    """The lease's expiry (twice the function's timeout) must end before a crashed part's message comes back."""
    resources = load_template()["Resources"]
    function = resources["SweepStockFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["SweepStockFunctionRole", "Arn"]}
    role = resources["SweepStockFunctionRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    [leases] = [s for s in statements if s["Resource"] == {"Fn::GetAtt": ["ControlTable", "Arn"]}]
    assert sorted(leases["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert leases["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["lease#sweep#*"]}}
    visibility = resources["SweepQueue"]["Properties"]["VisibilityTimeout"]
    assert 2 * function["Timeout"] < visibility
