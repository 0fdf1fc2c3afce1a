"""Fault injection through the real handlers: a scenario replay (moto server + the Commerce Platform simulator, the
pipeline wired from template.yaml) with one fault switched on, then the same three checks after every fault:

- the catalog converges to A: after each ``run: pipeline`` the catalog shows every SKU's A (the replay's
  ``catalog_differs_from_a`` is empty), and at the end each SKU's catalog value is its A;
- the pending counters equal the ledger: the reconcile function's dry run (its real entry point, the same run as
  ``stocksync reconcile --dry-run``) finds nothing to repair, nor anything it had to leave for later;
- every dead letter has a reason (a message in a queue's own DLQ, redriven after maxReceiveCount, has none).

Faults: every SQS message delivered twice; a crash (the process dying: no ``except``/``finally`` of the product runs)
before or after each AWS call of order_events, recompute_stock, push_batch, verify_batch and warehouse_events, after
which SQS redelivers once the visibility timeout passes; two pollers at once; Graph throttling for many minutes;
5xx storms; a batch the platform never finishes; the access token revoked (code 190).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.cli.replay import replay_scenario
from stocksync_dev.cli.scenario import parse_scenario
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import FakeLambdaContext, load_handler

SLOW = {"buckets": {"slow": {"threshold": 0, "allocation_percent": 100}}, "default_bucket": "slow"}
SKUS = [
    {"retailer_id": "SKU-1", "warehouse": 10},
    {"retailer_id": "SKU-2", "warehouse": 5},
    {"retailer_id": "SKU-3", "warehouse": 8},
]
BASELINE_ITEMS_BATCH_CALLS = 4  # measured: the initial catalog, and a push per SKU change wave
NO_DEAD_LETTER_REASON = "failed repeatedly (redriven after maxReceiveCount)"  # what the replay says of a bare DLQ


def order(order_id: str, units: int, sku: str) -> dict[str, Any]:
    return {"order": {"id": order_id, "state": "FB_PROCESSING", "items": [{"retailer_id": sku, "quantity": units}]}}


def shop_order(order_id: str, units: int, sku: str) -> dict[str, Any]:
    return {"shop_order": {"id": order_id, "state": "placed", "items": [{"retailer_id": sku, "quantity": units}]}}


# Every stage: platform orders (poll_orders, order_events), a web-shop order (order_events), warehouse levels
# (warehouse_events), a cancel, recompute, push and verify; twice, so the second run meets the state the first left.
STEPS: list[dict[str, Any]] = [
    order("o-1", 2, "SKU-1"),
    shop_order("w-1", 1, "SKU-2"),
    {"warehouse": {"SKU-3": 6}},
    {"run": "pipeline"},
    {"cancel": {"id": "o-1", "items": [{"retailer_id": "SKU-1", "quantity": 1}], "by": "buyer"}},
    order("o-2", 3, "SKU-3"),
    {"warehouse": {"SKU-1": 12, "SKU-2": 4}},
    {"run": "pipeline"},
]
# I - P - C per SKU after STEPS (allocation 100 %, threshold 0): SKU-1 12 - 1, SKU-2 4 - 1, SKU-3 6 - 3.
A_AFTER_STEPS = {"SKU-1": 11, "SKU-2": 3, "SKU-3": 3}


def scenario(steps: list[dict[str, Any]] = STEPS, **extra: Any) -> dict[str, Any]:
    return {"settings": SLOW, "skus": SKUS, "steps": steps, **extra}


def replay(raw: dict[str, Any], before: Callable[[CommercePlatformSimulator], None] | None = None) -> dict[str, Any]:
    """Replay ``raw``; the report gains ``reconcile``, the reconcile function's dry run on the final state.

    ``before`` is called with the simulator once the stack is up, before the first step (e.g. to arm a fault)."""
    found: dict[str, Any] = {}

    def keep(local: LocalAws, sim: CommercePlatformSimulator, report: dict[str, Any]) -> None:
        answer = load_handler("reconcile").lambda_handler({"dry_run": True}, FakeLambdaContext())
        found["reconcile"] = answer

    with armed_at_start(before):
        report = replay_scenario(parse_scenario(raw), keep=keep)
    report["reconcile"] = found["reconcile"]
    return report


@contextmanager
def armed_at_start(before: Callable[[CommercePlatformSimulator], None] | None) -> Iterator[None]:
    """Call ``before`` with the replay's simulator when the first handler runs (the initial catalog is published)."""
    if before is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        import stocksync_dev.cli.replay as replay_module

        started = replay_module.ScenarioPlayer.publish_initial_state

        def publish_then_arm(self: Any) -> None:
            started(self)
            before(self._sim)

        patch.setattr(replay_module.ScenarioPlayer, "publish_initial_state", publish_then_arm)
        yield


def assert_recovered(report: dict[str, Any], expected: dict[str, int] | None = A_AFTER_STEPS) -> None:
    """The three checks every fault ends with."""
    assert report["catalog_differs_from_a"] == [], report["catalog_differs_from_a"]
    units = {rid: shown["units"] for rid, shown in report["catalog"].items()}
    assert units == {rid: sku["A"] for rid, sku in report["skus"].items()}
    if expected is not None:
        assert units == expected
    reconcile = report["reconcile"]
    assert (reconcile["repairs"], reconcile["skipped_moved"], reconcile["skipped_recent"]) == ([], [], [])
    assert [letter for letter in report["dead_letters"] if letter["reason"] == NO_DEAD_LETTER_REASON] == []


def test_without_a_fault_the_scenario_ends_at_a_with_counters_equal_to_the_ledger() -> None:
    report = replay(scenario())
    assert report["graph_calls"]["items_batch"] == BASELINE_ITEMS_BATCH_CALLS, report["graph_calls"]
    assert_recovered(report)
    assert report["dead_letters"] == []
    assert report["reconcile"]["open_rows"] >= 2  # o-2 and w-1 (and o-1's open unit) are on the ledger


# -- (1) every SQS message delivered twice ---------------------------------------------------------------------


@pytest.fixture
def delivered_twice(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every batch a queue hands a function is handed to it a second time, as at-least-once delivery may (the
    same records, ids and bodies). A record either invocation reports failed stays on the queue."""
    duplicated: list[str] = []
    invoke = LocalPipeline.invoke

    def twice(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        first = invoke(self, function, event)
        if not isinstance(event, dict) or "Records" not in event:
            return first
        duplicated.append(function)
        second = invoke(self, function, event)
        failed = {
            failure["itemIdentifier"]: failure
            for answer in (first, second)
            for failure in (answer or {}).get("batchItemFailures", [])
        }
        return {"batchItemFailures": list(failed.values())}

    monkeypatch.setattr(LocalPipeline, "invoke", twice)
    return duplicated


def test_every_message_delivered_twice_changes_nothing(delivered_twice: list[str]) -> None:
    report = replay(scenario())
    # A duplicated push message costs a second items_batch call for the same versions today, never more (values are
    # absolute, so the catalog stays right): push_batch does not yet skip rows of a batch its predecessor recorded
    # and is still verifying.
    assert report["graph_calls"]["items_batch"] <= 2 * BASELINE_ITEMS_BATCH_CALLS, report["graph_calls"]

    assert {"order_events", "warehouse_events", "recompute_stock", "push_batch", "verify_batch"} <= set(delivered_twice)
    assert_recovered(report)
    assert report["dead_letters"] == []


# -- (2) a crash at every step boundary of each handler ---------------------------------------------------------


class Killed(BaseException):
    """The process dying (out of memory, Lambda's deadline): no except, no finally of the product runs after it."""


class Crash:
    """Kills one invocation of ``function`` just before (``when="before"``) or just after (``"after"``) its
    ``nth`` external call (a boto3 request to moto, or an HTTP request to the Graph API): the step boundaries of a
    handler. Only once: the first invocation that gets that far. The killed invocation deletes nothing, so SQS
    redelivers its records when their visibility timeout has passed (the pipeline moves the clock over it)."""

    def __init__(self, function: str, nth: int, when: str) -> None:
        self.function, self.nth, self.when = function, nth, when
        self.running: str | None = None
        self.calls = 0
        self.fired: str | None = None  # the call it fired at, once it has
        self.calls_per_invocation: dict[str, list[int]] = {}

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        if self.running is None:
            return call()
        self.calls += 1
        armed = self.fired is None and self.running == self.function and self.calls == self.nth
        if armed and self.when == "before":
            self.fired = f"before {name}"
            raise Killed
        result = call()
        if armed:
            self.fired = f"after {name}"
            raise Killed
        return result


@pytest.fixture
def crashes(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int, str], Crash]:
    import requests

    crash = Crash("", 0, "before")
    invoke, make_api_call, send = LocalPipeline.invoke, BaseClient._make_api_call, requests.Session.send

    def invoking(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        crash.running, crash.calls = function, 0
        try:
            return invoke(self, function, event)
        except Killed:
            records = event.get("Records", []) if isinstance(event, dict) else []
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in records]}
        finally:
            crash.calls_per_invocation.setdefault(function, []).append(crash.calls)
            crash.running = None

    def api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        return crash.around(operation, lambda: make_api_call(client, operation, params))

    def sending(session: requests.Session, request: Any, **kwargs: Any) -> Any:
        return crash.around(
            f"graph {request.method} {request.path_url.split('?')[0]}", lambda: send(session, request, **kwargs)
        )

    monkeypatch.setattr(LocalPipeline, "invoke", invoking)
    monkeypatch.setattr(BaseClient, "_make_api_call", api_call)
    monkeypatch.setattr(requests.Session, "send", sending)

    def arm(function: str, nth: int, when: str) -> Crash:
        crash.function, crash.nth, crash.when = function, nth, when
        return crash

    return arm


# External calls each handler makes in its first invocation of STEPS (measured): a crash before or after each.
CALLS = {"order_events": 3, "warehouse_events": 4, "recompute_stock": 5, "push_batch": 10, "verify_batch": 10}
CALLS |= {"poll_orders": 7}
# Each handler is killed in the middle of its run, after a call (the call made, its result lost) and before the next,
# in the regular tier; every other boundary in the slow tier (78 replays in all, 5 minutes on one core). The one case
# that once failed under load passes since the parameter providers stopped keeping a previous stack's endpoint.
MIDDLE = {(function, calls // 2 + 1) for function, calls in CALLS.items()}
BOUNDARIES = [
    pytest.param(
        function,
        nth,
        when,
        id=f"{function}-{when}-call-{nth}",
        marks=() if (function, nth) in MIDDLE else pytest.mark.slow,
    )
    for function, calls in sorted(CALLS.items())
    for nth in range(1, calls + 1)
    for when in ("after", "before")
]


@pytest.mark.parametrize(("function", "nth", "when"), BOUNDARIES)
def test_a_handler_killed_at_a_step_boundary_is_redelivered_and_the_catalog_still_reaches_a(
    crashes: Callable[[str, int, str], Crash], function: str, nth: int, when: str
) -> None:
    crash = crashes(function, nth, when)
    report = replay(scenario())

    assert crash.fired is not None, f"{function} never made {nth} calls"
    assert_recovered(report)
    assert report["dead_letters"] == []


# -- (3) two pollers at once -------------------------------------------------------------------------------------


@pytest.fixture
def second_poller(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[Any]]:
    """At poll_orders' ``nth`` external call (before it is made), a second poll_orders runs from start to end: two
    schedule invocations overlapping, the second wholly inside the first. Returns the second poll's answers."""
    import requests

    answers: list[Any] = []
    state: dict[str, Any] = {"nth": 0, "calls": 0, "pipeline": None, "depth": 0}
    invoke, make_api_call, send = LocalPipeline.invoke, BaseClient._make_api_call, requests.Session.send

    def invoking(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        if function != "poll_orders" or state["depth"]:
            return invoke(self, function, event)
        state.update(pipeline=self, calls=0, depth=1)
        try:
            return invoke(self, function, event)
        finally:
            state["depth"] = 0

    def interleave() -> None:
        if state["depth"] != 1:
            return
        state["calls"] += 1
        if state["calls"] == state["nth"] and not answers:
            state["depth"] = 2
            try:
                answers.append(invoke(state["pipeline"], "poll_orders", {"source": "aws.events", "detail": {}}))
            finally:
                state["depth"] = 1

    def api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        interleave()
        return make_api_call(client, operation, params)

    def sending(session: requests.Session, request: Any, **kwargs: Any) -> Any:
        interleave()
        return send(session, request, **kwargs)

    monkeypatch.setattr(LocalPipeline, "invoke", invoking)
    monkeypatch.setattr(BaseClient, "_make_api_call", api_call)
    monkeypatch.setattr(requests.Session, "send", sending)

    def arm(nth: int) -> list[Any]:
        state["nth"] = nth
        return answers

    return arm


@pytest.mark.parametrize(
    "nth",
    [1, 4, CALLS["poll_orders"]],
)
def test_two_pollers_at_once_count_every_order_once(second_poller: Callable[[int], list[Any]], nth: int) -> None:
    second = second_poller(nth)
    report = replay(scenario())

    assert len(second) == 1, "the second poll never ran"
    assert_recovered(report)
    assert report["dead_letters"] == []


# -- (4) Graph throttling for minutes, (5) 5xx storms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "endpoint", "minutes"),
    [
        (80014, "items_batch", 45),
        (80009, "check_batch_request_status", 30),
        (80004, "commerce_orders", 20),
    ],
    ids=["batch-uploads-45min", "status-checks-30min", "orders-20min"],
)
def test_graph_throttling_for_minutes_delays_the_catalog_but_it_still_reaches_a(
    code: int, endpoint: str | None, minutes: int
) -> None:
    throttle = {"after_calls": 0, "code": code, "regain_minutes": minutes}
    if endpoint is not None:
        throttle["endpoint"] = endpoint
    report = replay(scenario([{"throttle": throttle}, *STEPS]))

    assert_recovered(report)
    assert report["dead_letters"] == []


@pytest.mark.parametrize(
    ("failures", "endpoint"),
    [
        (12, None),
        (8, "items_batch"),
        (8, "check_batch_request_status"),
    ],
    ids=["12-any", "8-batch-uploads", "8-status-checks"],
)
def test_a_5xx_storm_is_ridden_out_and_the_catalog_reaches_a(failures: int, endpoint: str | None) -> None:
    def storm(sim: CommercePlatformSimulator) -> None:
        sim.fail_next(failures, status=500, code=2, endpoint=endpoint)

    report = replay(scenario(), before=storm)

    assert_recovered(report)
    assert report["dead_letters"] == [], report["dead_letters"]


# -- (7) the access token revoked (code 190) ---------------------------------------------------------------------


@pytest.fixture
def graph_calls_per_invocation(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(function, Graph calls the simulator counted during it) for every invocation of the replay."""
    seen: list[tuple[str, int]] = []
    invoke = LocalPipeline.invoke
    SIMULATOR.clear()

    def counting(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        if not SIMULATOR:  # the initial catalog is being published: no fault yet
            return invoke(self, function, event)
        sim = SIMULATOR[0]
        before = sum(sim.calls.values())
        try:
            return invoke(self, function, event)
        finally:
            seen.append((function, sum(sim.calls.values()) - before))

    monkeypatch.setattr(LocalPipeline, "invoke", counting)
    return seen


SIMULATOR: list[CommercePlatformSimulator] = []


def test_a_revoked_token_costs_at_most_one_retry_per_invocation_and_dead_letters_with_the_reason(
    graph_calls_per_invocation: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code 190: the client fetches the credentials once more and retries once (a rotated token is picked up at
    once); a revoked one fails again and the invocation gives up: no retry loop inside an invocation, records
    dead-lettered with the error (token redacted) on their last receive, the catalog left as it was."""

    accepted_before: list[int] = []

    def revoke(sim: CommercePlatformSimulator) -> None:
        SIMULATOR[:] = [sim]
        accepted_before.append(len(sim.batches()))
        sim.revoke_access_token()

    from stocksync.observability import metrics

    signals: list[str] = []
    add_metric = metrics.add_metric

    def recording(name: str, *args: Any, **kwargs: Any) -> None:
        signals.append(name)
        add_metric(name, *args, **kwargs)

    monkeypatch.setattr(metrics, "add_metric", recording)
    report = replay(scenario(), before=revoke)

    # The alarm's metric (GraphTokenRejectedAlarm): at least once, and never more than once per Graph call made.
    graph_calls = sum(calls for _, calls in graph_calls_per_invocation)
    assert 1 <= signals.count("GraphTokenRejected") <= graph_calls
    graph_work = [(function, calls) for function, calls in graph_calls_per_invocation if calls]
    assert {function for function, _ in graph_work} >= {"poll_orders", "push_batch"}
    assert max(calls for _, calls in graph_work) <= 2, graph_work
    letters = report["dead_letters"]
    assert letters and all(
        "GraphAuthError" in letter["reason"] and "(#190)" in letter["reason"] for letter in letters
    ), [(letter["queue"], letter["reason"]) for letter in letters]
    assert all("replay-token" not in letter["reason"] and "REDACTED" in letter["reason"] for letter in letters)
    # Nothing was accepted after the revocation: no batch handle was added.
    assert [len(SIMULATOR[0].batches())] == accepted_before


# -- (6) a batch that never finishes ----------------------------------------------------------------------------


def test_a_batch_that_never_finishes_is_given_up_with_a_reason_and_a_sweep_after_it_ends_reaches_a(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first batch after the initial catalog takes 12 hours (the later ones the usual time): verify checks it at
    most VerifyMaxChecks times, then gives up loudly (VerifyGaveUp, a dead letter naming the batch) without pushing
    again on its own; the run ends with the catalog not at A, and says so. Once the platform has moved on, the
    bucket's sweep re-pushes the unconfirmed rows and the catalog is at A."""
    stuck: list[Any] = []  # [simulator, batches accepted before the stuck one]
    invoke = LocalPipeline.invoke

    def arm(sim: CommercePlatformSimulator) -> None:
        stuck[:] = [sim, len(sim.batches())]
        sim.batch_processing_delay = timedelta(hours=12)

    def one_stuck_batch(self: LocalPipeline, function: str, event: dict[str, Any]) -> Any:
        answer = invoke(self, function, event)
        if stuck and len(stuck[0].batches()) > stuck[1]:
            stuck[0].batch_processing_delay = timedelta(0)
        return answer

    monkeypatch.setattr(LocalPipeline, "invoke", one_stuck_batch)
    steps = [*STEPS[:4], {"advance": 12 * 3600}, {"run": "sweep", "bucket": "slow"}, {"run": "pipeline"}]
    report = replay(scenario(steps), before=arm)

    [letter] = report["dead_letters"]
    assert letter["reason"].endswith("after 10 checks; its rows stay unconfirmed"), letter["reason"]
    assert report["graph_calls"]["check_batch_request_status"] <= 10 + 2  # the stuck batch's checks, the next one's
    # During the stuck run the catalog did not show A (and the replay says so); after the sweep it does.
    assert {difference["step"] for difference in report["catalog_differs_from_a"]} == {"steps[3]"}
    report["catalog_differs_from_a"] = []
    assert_recovered(report, expected={"SKU-1": 8, "SKU-2": 4, "SKU-3": 6})
    assert all(sku["confirmed"] for sku in report["skus"].values())
