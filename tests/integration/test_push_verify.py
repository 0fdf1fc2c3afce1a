"""push_batch and verify_batch through their real entry points, against moto server and the Commerce Platform simulator.

The product's clock follows the simulator's, so the call budget, throttle pauses and latencies are in simulated
time; SQS delays are real in moto, so a test releases the delayed messages it wants delivered (and reads the delay
each one was given).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.backends import get_backend

from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.codec import decode, encode
from stocksync.logic.latency import summarize
from stocksync.models.settings import get_settings
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from stocksync_dev.simulator.catalog_endpoints import CatalogEndpoints
from tests.support import FakeLambdaContext, drain_queue, emitted_metrics, load_handler, sqs_event

TOKEN, APP_SECRET = "push-test-token", "push-test-app-secret"
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
FIELD = "quantity_to_sell_on_facebook"


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {"access_token": TOKEN, "app_secret": APP_SECRET, "start": T0}


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def env(local_aws: LocalAws, name: str) -> str:
    return local_aws.function_environment()[name]


def seed(local_aws: LocalAws, sim: CommercePlatformSimulator, skus: list[str], *, version: int = 1) -> None:
    """SKUs as recompute leaves them when it enqueues a push (published_version claimed), and in the catalog."""
    dynamodb, table = local_aws.client("dynamodb"), env(local_aws, "SKU_TABLE")
    for start in range(0, len(skus), 25):
        puts = [
            {
                "PutRequest": {
                    "Item": encode(
                        {"retailer_id": rid, "record": "state", "bucket": "medium", "published_version": version}
                    )
                }
            }
            for rid in skus[start : start + 25]
        ]
        dynamodb.batch_write_item(RequestItems={table: puts})
    for rid in skus:
        sim.add_product(rid, quantity=1)


def push_body(rid: str, value: int, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "retailer_id": rid,
        "value": value,
        "version": version,
        "visibility": "published",
        "computed_at": T0.isoformat(),
        **extra,
    }


def push(bodies: list[Any]) -> dict[str, Any]:
    return load_handler("push_batch").lambda_handler(sqs_event(bodies), FakeLambdaContext())


def release(local_aws: LocalAws, variable: str) -> list[int]:
    """Make a queue's delayed messages deliverable now; returns the delay (s) each was sent with, oldest first."""
    account = local_aws.client("sts").get_caller_identity()["Account"]
    queue = get_backend("sqs")[account][local_aws.region].get_queue(env(local_aws, variable).rsplit("/", 1)[-1])
    delays = [max(0, round((m.delayed_until - m.sent_timestamp) / 1000)) for m in queue._messages]
    for message in queue._messages:
        message.delayed_until = 0
    return delays


def messages(local_aws: LocalAws, variable: str) -> list[dict[str, Any]]:
    return drain_queue(local_aws.client("sqs"), env(local_aws, variable))


def take_all(local_aws: LocalAws, variable: str) -> list[Any]:
    """Every message body of a queue, delayed or not, and the queue emptied: thousands at once, which receiving
    ten at a time from moto would take minutes to do."""
    account = local_aws.client("sts").get_caller_identity()["Account"]
    queue = get_backend("sqs")[account][local_aws.region].get_queue(env(local_aws, variable).rsplit("/", 1)[-1])
    bodies = [json.loads(message.body) for message in queue._messages]
    local_aws.client("sqs").purge_queue(QueueUrl=env(local_aws, variable))
    return bodies


def verify_all(local_aws: LocalAws) -> list[dict[str, Any]]:
    """Deliver every verify message (delays released) to verify_batch, one per invocation as the template does."""
    handler = load_handler("verify_batch")
    release(local_aws, "VERIFY_QUEUE_URL")
    answers = []
    for message in messages(local_aws, "VERIFY_QUEUE_URL"):
        answers.append(handler.lambda_handler(sqs_event([message["body"]]), FakeLambdaContext()))
    return answers


def states(local_aws: LocalAws) -> dict[str, dict[str, Any]]:
    paginator = local_aws.client("dynamodb").get_paginator("scan")
    found = {}
    for page in paginator.paginate(TableName=env(local_aws, "SKU_TABLE")):
        for raw in page["Items"]:
            item = decode(raw)
            found[item["retailer_id"]] = item
    return found


def sent_rows(sim: CommercePlatformSimulator) -> list[list[dict[str, Any]]]:
    """The rows of every items_batch call the simulator received (accepted or not), in order."""
    return [
        [request["data"] for request in json.loads(params["requests"])]
        for method, path, params in sim.requests_log
        if method == "POST" and path.endswith("/items_batch")
    ]


def no_failures(answer: dict[str, Any]) -> bool:
    return answer == {"batchItemFailures": []}


@pytest.mark.slow  # the same rule at unit scale: tests/unit/test_push_run.py (12,000 rows, four calls)
def test_12000_changed_skus_go_out_in_the_minimum_number_of_calls_each_recorded_and_scheduled(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    skus = [f"SKU-{i:05d}" for i in range(12_000)]
    seed(local_aws, platform, skus)
    bodies = [push_body(rid, i % 40) for i, rid in enumerate(skus)]
    # Four SQS batches of 3,000 at the same instant: the burst's three slots carry the first three; the fourth
    # waits in the push queue for the next slot, 3600 / (90 - 3 + 1) = 40.9 s later.
    assert all(no_failures(push(bodies[start : start + 3000])) for start in range(0, 12_000, 3000))
    assert [len(rows) for rows in sent_rows(platform)] == [3000] * 3
    assert release(local_aws, "PUSH_QUEUE_URL") == [41] * 3000
    waiting = take_all(local_aws, "PUSH_QUEUE_URL")
    platform.advance(40)
    assert no_failures(push(waiting)) and len(sent_rows(platform)) == 3  # too early: still waiting
    waiting = take_all(local_aws, "PUSH_QUEUE_URL")
    assert len(waiting) == 3000
    platform.advance(1)
    assert no_failures(push(waiting))

    calls = sent_rows(platform)
    assert [len(rows) for rows in calls] == [3000] * 4  # ceil(12,000 / 3,000), the configured per-call size
    assert calls[0][0] == {"id": "SKU-00000", FIELD: 0, "visibility": "published"}
    catalog = platform.catalog()
    assert all(catalog[rid][FIELD] == i % 40 for i, rid in enumerate(skus))

    # Each handle is recorded with exactly the rows it carried, and its first check waits VerifyDelaySeconds.
    assert release(local_aws, "VERIFY_QUEUE_URL") == [60] * 4
    checks = [m["body"] for m in messages(local_aws, "VERIFY_QUEUE_URL")]
    batches = BatchesTable(local_aws.client("dynamodb"), env(local_aws, "BATCHES_TABLE"))
    recorded = [batches.load(check["record"]) for check in checks]  # keyed <run>#<call>, the handle inside
    assert [r.handle for r in recorded if r] == [check["handle"] for check in checks]
    assert [[(e.retailer_id, e.value, e.version) for e in r.entries] for r in recorded if r] == [
        [(rid, i % 40, 1) for i, rid in enumerate(skus[start : start + 3000], start)]
        for start in range(0, 12_000, 3000)
    ]
    assert messages(local_aws, "DEAD_LETTER_QUEUE_URL") == []


def test_verified_values_are_confirmed_with_their_latency_and_a_second_push_makes_no_call(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, STOCKSYNC_PUSH_REQUESTS_PER_CALL="100")
    skus = [f"SKU-{i:03d}" for i in range(200)]
    seed(local_aws, platform, skus)
    bodies = [push_body(rid, i % 9) for i, rid in enumerate(skus)]
    assert no_failures(push(bodies))
    platform.advance(30)
    assert all(no_failures(answer) for answer in verify_all(local_aws))

    stored = states(local_aws)
    assert {(s["confirmed_version"], s["confirmed_visibility"]) for s in stored.values()} == {(1, "published")}
    assert all(stored[rid]["confirmed_value"] == i % 9 for i, rid in enumerate(skus))
    samples = list(BatchesTable(local_aws.client("dynamodb"), env(local_aws, "BATCHES_TABLE")).latency_samples())
    assert [batch for batch, _rows in samples] == [30.0, 30.0]
    latency = summarize([seconds for _batch, rows in samples for seconds in rows])
    assert latency is not None and (latency.count, latency.p50, latency.p99) == (200, 30.0, 30.0)

    assert no_failures(push(bodies))
    assert platform.calls[("POST", "items_batch")] == 2


def test_a_newer_version_is_never_overwritten_by_an_older_retry(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    seed(local_aws, platform, ["SKU-A"], version=2)
    assert no_failures(push([push_body("SKU-A", 3, version=2)]))
    verify_all(local_aws)
    # An older version arrives late (a retry, a redelivery): no call, nothing changes.
    assert no_failures(push([push_body("SKU-A", 9, version=1, retries=1)]))
    assert platform.calls[("POST", "items_batch")] == 1
    assert platform.catalog()["SKU-A"][FIELD] == 3
    stored = states(local_aws)["SKU-A"]
    assert (stored["confirmed_value"], stored["confirmed_version"]) == (3, 2)


def test_when_a_race_lets_an_older_value_land_last_the_record_says_what_the_catalog_shows(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    seed(local_aws, platform, ["SKU-A"], version=1)
    # Two invocations raced: v2 went out first, then v1 (read before recompute claimed v2).
    push([push_body("SKU-A", 3, version=2)])
    platform.advance(1)
    push([push_body("SKU-A", 9, version=1)])
    assert [rows[0][FIELD] for rows in sent_rows(platform)] == [3, 9]
    verify_all(local_aws)
    assert platform.catalog()["SKU-A"][FIELD] == 9  # the platform applied the batches in order
    stored = states(local_aws)["SKU-A"]
    # The version stays the newest, the value is what the catalog shows: recompute will push again.
    assert (stored["confirmed_value"], stored["confirmed_version"]) == (9, 2)


def test_per_item_errors_split_into_retried_and_dead_lettered(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    good = [f"SKU-{i:03d}" for i in range(5)]
    ghosts = [f"GHOST-{i:03d}" for i in range(105)]  # in our table, not in the catalog
    seed(local_aws, platform, good)
    dynamodb, table = local_aws.client("dynamodb"), env(local_aws, "SKU_TABLE")
    for rid in ghosts:
        dynamodb.put_item(TableName=table, Item=encode({"retailer_id": rid, "record": "state", "published_version": 1}))
    assert no_failures(push([push_body(rid, 7) for rid in good + ghosts]))
    assert all(no_failures(answer) for answer in verify_all(local_aws))

    # The platform's error sample names 100 rows: those are dead-lettered with its message. The other five failed
    # without a message: they are retried once, at the same version, and fail again with a message.
    letters = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert len(letters) == 100
    assert {m["attributes"]["source"] for m in letters} == {"verify_batch"}
    assert all(m["attributes"]["reason"].startswith("product_not_found: Product not found: GHOST-") for m in letters)
    retries = messages(local_aws, "PUSH_QUEUE_URL")
    assert sorted(m["body"]["retailer_id"] for m in retries) == ghosts[100:]
    assert {(m["body"]["version"], m["body"]["retries"]) for m in retries} == {(1, 1)}
    assert {rid: s.get("confirmed_version") for rid, s in states(local_aws).items() if rid in good} == dict.fromkeys(
        good, 1
    )

    assert no_failures(push([m["body"] for m in retries]))
    verify_all(local_aws)
    letters = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert sorted(m["body"]["body"]["retailer_id"] for m in letters) == ghosts[100:]
    assert messages(local_aws, "PUSH_QUEUE_URL") == []


def test_throttling_mid_run_then_recovery_confirms_every_value_and_pushes_none_twice_beyond_the_retries(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, STOCKSYNC_PUSH_REQUESTS_PER_CALL="100")
    skus = [f"SKU-{i:04d}" for i in range(300)]
    seed(local_aws, platform, skus)
    platform.throttle_after(1, code=80014, regain_minutes=2, endpoint="items_batch")
    assert no_failures(push([push_body(rid, 11) for rid in skus]))

    # Call 1 went through, call 2 met 80014: its rows and call 3's went back to the push queue with Meta's wait.
    assert release(local_aws, "PUSH_QUEUE_URL") == [120] * 200
    deferred = [m["body"] for m in messages(local_aws, "PUSH_QUEUE_URL")]
    assert sorted(b["retailer_id"] for b in deferred) == skus[100:]

    # Delivered before the pause is over, they wait again without a call (the budget knows about the pause).
    platform.advance(60)
    assert no_failures(push(deferred))
    assert platform.calls[("POST", "items_batch")] == 2
    assert release(local_aws, "PUSH_QUEUE_URL") == [60] * 200

    platform.advance(61)
    assert no_failures(push([m["body"] for m in messages(local_aws, "PUSH_QUEUE_URL")]))
    assert all(no_failures(answer) for answer in verify_all(local_aws))

    assert all(entry[FIELD] == 11 for entry in platform.catalog().values())
    assert {s["confirmed_version"] for s in states(local_aws).values()} == {1}
    sent = Counter(row["id"] for rows in sent_rows(platform) for row in rows)
    # The throttled call's 100 rows were sent twice (the refused call, then the accepted one); every other once.
    assert sent == Counter({rid: 2 if 100 <= i < 200 else 1 for i, rid in enumerate(skus)})
    assert [len(rows) for rows in sent_rows(platform)] == [100, 100, 100, 100]


def test_a_transient_failure_returns_only_that_calls_records(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, STOCKSYNC_PUSH_REQUESTS_PER_CALL="2")
    seed(local_aws, platform, ["A", "B", "C"])
    platform.fail_next(5, status=503, code=2, endpoint="items_batch")  # every attempt of the first call
    answer = push([push_body("A", 1), push_body("B", 2), push_body("C", 3)])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    verify_all(local_aws)
    assert [platform.catalog()[rid][FIELD] for rid in "ABC"] == [1, 1, 3]


def test_a_batch_still_processing_is_rechecked_with_growing_delay_then_given_up_loudly(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, STOCKSYNC_VERIFY_MAX_CHECKS="3")
    seed(local_aws, platform, ["A"])
    platform.batch_processing_delay = timedelta(hours=2)
    push([push_body("A", 5)])
    handler = load_handler("verify_batch")
    delays = []
    for _check in range(3):
        delays.extend(release(local_aws, "VERIFY_QUEUE_URL"))
        [message] = messages(local_aws, "VERIFY_QUEUE_URL")
        assert no_failures(handler.lambda_handler(sqs_event([message["body"]]), FakeLambdaContext()))
    assert delays == [60, 60, 120]
    assert messages(local_aws, "VERIFY_QUEUE_URL") == []
    [letter] = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert "still dispatched after 3 checks" in letter["attributes"]["reason"]
    assert states(local_aws)["A"].get("confirmed_version") is None


def test_urgent_rows_use_real_time_updates_when_configured_and_the_next_slot_is_far(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, STOCKSYNC_SINGLE_UPDATE_MAX_SKUS="2", STOCKSYNC_PUSH_BURST_CALLS="1")
    seed(local_aws, platform, ["A", "B", "C", "D"])
    assert no_failures(push([push_body("D", 9)]))  # takes the slot: the next one is 40 s away
    assert no_failures(push([push_body("A", 0, urgent=True), push_body("B", 0, urgent=True), push_body("C", 5)]))
    assert platform.calls[("POST", "catalog_item")] == 2 and platform.calls[("POST", "items_batch")] == 1
    assert [platform.catalog()[rid][FIELD] for rid in "AB"] == [0, 0]
    confirmed = {rid: s.get("confirmed_version") for rid, s in states(local_aws).items()}
    assert confirmed == {"A": 1, "B": 1, "C": None, "D": None}  # single updates are synchronous; D awaits verify
    assert release(local_aws, "PUSH_QUEUE_URL") == [40]  # the routine row waits for its slot (3600 / 90)
    assert [m["body"]["retailer_id"] for m in messages(local_aws, "PUSH_QUEUE_URL")] == ["C"]


def test_bad_push_messages_are_dead_lettered_naming_the_field_and_the_rest_delivered(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    seed(local_aws, platform, ["GOOD"])
    missing_version = push_body("X", 1)
    del missing_version["version"]
    answer = push(
        [push_body("N", -1), missing_version, push_body("U", 1, quantity=1), "{not json", push_body("GOOD", 6)]
    )
    assert no_failures(answer)
    reasons = sorted(m["attributes"]["reason"] for m in messages(local_aws, "DEAD_LETTER_QUEUE_URL"))
    assert [reason.split(":")[0] for reason in reasons] == ["body", "quantity", "value", "version"]
    assert sent_rows(platform) == [[{"id": "GOOD", FIELD: 6, "visibility": "published"}]]


def test_an_unreadable_status_response_or_verify_message_is_dead_lettered_and_the_rest_verified(
    local_aws: LocalAws, platform: CommercePlatformSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(local_aws, platform, ["A", "B"])
    push([push_body("A", 1)])
    push([push_body("B", 2)])
    release(local_aws, "VERIFY_QUEUE_URL")
    bad_handle, good_handle = [m["body"] for m in messages(local_aws, "VERIFY_QUEUE_URL")]
    original = CatalogEndpoints.batch_status

    def garbled(self: CatalogEndpoints, request: Any) -> dict[str, Any]:
        answer = original(self, request)
        if answer["data"][0]["handle"] == bad_handle["handle"]:
            answer["data"][0]["errors_total_count"] = "many"
        return answer

    monkeypatch.setattr(CatalogEndpoints, "batch_status", garbled)
    handler = load_handler("verify_batch")
    event = sqs_event([bad_handle, {"attempt": 1}, good_handle])
    assert no_failures(handler.lambda_handler(event, FakeLambdaContext()))
    reasons = sorted(m["attributes"]["reason"] for m in messages(local_aws, "DEAD_LETTER_QUEUE_URL"))
    assert len(reasons) == 2
    assert "data[0].errors_total_count" in reasons[0]
    assert reasons[1].startswith("handle: Field required")
    assert states(local_aws)["B"]["confirmed_version"] == 1
    assert states(local_aws)["A"].get("confirmed_version") is None


def test_the_sample_events_run_through_the_handlers(local_aws: LocalAws, platform: CommercePlatformSimulator) -> None:
    """events/push_queue_batch.json and events/verify_queue_batch.json, as `sam local invoke -e` would send them."""
    events = Path(__file__).resolve().parents[2] / "events"
    seed(local_aws, platform, ["MUG-RED"], version=4)
    seed(local_aws, platform, ["MUG-BLUE"], version=7)
    seed(local_aws, platform, ["MUG-GREEN"], version=2)
    push_event = json.loads((events / "push_queue_batch.json").read_text())
    assert no_failures(load_handler("push_batch").lambda_handler(push_event, FakeLambdaContext()))
    # Per SKU the newest version only; the older MUG-RED and the superseded MUG-BLUE retry are not sent. The urgent
    # rows (out of stock, hidden) lead, each group oldest change first.
    assert sent_rows(platform) == [
        [
            {"id": "MUG-BLUE", FIELD: 0, "visibility": "published"},
            {"id": "MUG-GREEN", FIELD: 0, "visibility": "staging"},
            {"id": "MUG-RED", FIELD: 11, "visibility": "published"},
        ]
    ]
    # The sample verify message names a handle this deployment never recorded: dead-lettered, not retried.
    verify_event = json.loads((events / "verify_queue_batch.json").read_text())
    assert no_failures(load_handler("verify_batch").lambda_handler(verify_event, FakeLambdaContext()))
    [letter] = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert letter["attributes"]["reason"].startswith("handle: no batch record for 'AcSim00000134c2f8e1a9d0'")


def test_each_run_logs_and_counts_its_slot_and_a_bad_urgent_flag_is_dead_lettered_alone(
    local_aws: LocalAws,
    platform: CommercePlatformSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(monkeypatch, STOCKSYNC_PUSH_BURST_CALLS="1")
    seed(local_aws, platform, ["A", "B"])
    assert no_failures(push([push_body("A", 3)]))  # takes the only slot
    platform.advance(5)
    capsys.readouterr()
    caplog.clear()
    answer = push([push_body("B", 0, urgent=True), push_body("X", 1, urgent="yes")])
    assert no_failures(answer)
    [letter] = messages(local_aws, "DEAD_LETTER_QUEUE_URL")
    assert letter["attributes"]["reason"].startswith("urgent: Input should be a valid boolean")
    assert release(local_aws, "PUSH_QUEUE_URL") == [35]  # B waits for the next slot, 40 s after the first call
    [report] = [vars(record) for record in caplog.records if record.getMessage() == "push finished"]
    assert (report["pushed"], report["deferred"], report["urgent"], report["slots_used_in_hour"]) == (0, 1, 1, 1)
    assert report["next_slot_seconds"] == 35 and report["oldest_waiting_age_seconds"] == 5
    metrics = emitted_metrics(capsys.readouterr().out)
    counted = [metrics[f"StockSync/{name} service=stocksync"] for name in ("PushesDeferred", "UrgentRows")]
    timed = [metrics[f"StockSync/{name} service=stocksync"] for name in ("SlotsUsedInHour", "OldestWaitingAge")]
    assert (counted, timed) == ([[1.0], [1.0]], [[1.0], [5.0]])
