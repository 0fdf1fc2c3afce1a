"""verify_batch's pacing through its real entry point, against moto server and the Commerce Platform simulator: status
checks under their own budget (80009 pauses it for every invocation), and rechecks at the time the catalog's observed
processing times say a batch should be done. Also the processing-time store itself, against moto.

Batches are sent to the simulator through the product's Graph client and recorded as push_batch records them, so
these tests do not depend on how push_batch plans its calls. The product's clock follows the simulator's; SQS
delays are real in moto, so a test releases the delayed messages it wants delivered and reads their delays.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.backends import get_backend

from stocksync import clock
from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.codec import decode, encode
from stocksync.dal.processing_times import DynamoProcessingTimes
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.logic.batch_budget import epoch_ms
from stocksync.logic.verify_timing import Observation
from stocksync.models.graph import ItemUpdate
from stocksync.models.push import BatchEntry, BatchRecord
from stocksync.models.settings import get_settings
from stocksync.models.sku import Visibility
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.support import FakeLambdaContext, drain_queue, load_handler, sqs_event

TOKEN, APP_SECRET = "verify-pacing-token", "verify-pacing-app-secret"
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
CATALOG = "1001"
STATUS = ("GET", "check_batch_request_status")


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {"access_token": TOKEN, "app_secret": APP_SECRET, "start": T0}


def env(local_aws: LocalAws, name: str) -> str:
    return local_aws.function_environment()[name]


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def send_batch(local_aws: LocalAws, sim: CommercePlatformSimulator, rid: str, value: int = 5) -> str:
    """One SKU as recompute leaves it, sent in an items_batch call and recorded as push_batch records it."""
    dynamodb = local_aws.client("dynamodb")
    item = {"retailer_id": rid, "record": "state", "bucket": "medium", "published_version": 1}
    dynamodb.put_item(TableName=env(local_aws, "SKU_TABLE"), Item=encode(item))
    sim.add_product(rid, quantity=1)
    settings = get_settings()
    sent_at = clock.now()
    update = ItemUpdate(retailer_id=rid, fields={settings.catalog_field.value: value, "visibility": "published"})
    [handle] = graph_client_from_settings(settings).items_batch(settings.catalog_id, [update]).handles
    entry = BatchEntry(retailer_id=rid, value=value, version=1, visibility=Visibility.PUBLISHED, computed_at=T0)
    record = BatchRecord(handle=handle, accepted_at=clock.now(), entries=[entry], sent_at=sent_at)
    BatchesTable(dynamodb, env(local_aws, "BATCHES_TABLE")).record(record)
    return handle


def verify(message: dict[str, Any]) -> dict[str, Any]:
    return load_handler("verify_batch").lambda_handler(sqs_event([message]), FakeLambdaContext())


def scheduled(local_aws: LocalAws) -> list[tuple[dict[str, Any], int]]:
    """The verify queue's messages (taken off it) with the delay each was sent with (s), oldest first."""
    account = local_aws.client("sts").get_caller_identity()["Account"]
    url = env(local_aws, "VERIFY_QUEUE_URL")
    queue = get_backend("sqs")[account][local_aws.region].get_queue(url.rsplit("/", 1)[-1])
    delays = [max(0, round((m.delayed_until - m.sent_timestamp) / 1000)) for m in queue._messages]
    for message in queue._messages:
        message.delayed_until = 0
    bodies = [message["body"] for message in drain_queue(local_aws.client("sqs"), url)]
    return list(zip(bodies, delays, strict=True))


def metric_values(output: str, name: str) -> list[float]:
    """The values of one metric across the EMF lines a handler printed."""
    values: list[float] = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            values.extend(json.loads(line).get(name, []))
    return values


def check_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The log line verify_batch writes per check, as its fields."""
    return [vars(record) for record in caplog.records if record.getMessage() == "batch checked"]


def processing_times(local_aws: LocalAws) -> DynamoProcessingTimes:
    return DynamoProcessingTimes(local_aws.client("dynamodb"), env(local_aws, "CONTROL_TABLE"), catalog_id=CATALOG)


def status_budget(local_aws: LocalAws) -> DynamoCallBudget:
    return DynamoCallBudget(
        local_aws.client("dynamodb"),
        env(local_aws, "CONTROL_TABLE"),
        catalog_id=CATALOG,
        calls_per_hour=720,
        kind="status-check",
    )


# ------------------------------------------------------------------ the status-check budget
def test_out_of_status_budget_a_check_waits_in_the_queue_without_using_up_a_check(
    local_aws: LocalAws,
    platform: CommercePlatformSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(monkeypatch, STOCKSYNC_STATUS_CHECKS_PER_HOUR="2")
    platform.batch_processing_delay = timedelta(hours=2)
    handles = [send_batch(local_aws, platform, rid) for rid in ("A", "B", "C")]
    platform.advance(60)
    for handle in handles:
        assert verify({"handle": handle, "attempt": 1}) == {"batchItemFailures": []}

    # Two checks spent the hour's two calls; the third asked nothing and waits for the oldest call to leave the
    # trailing hour (3600 s, SQS's 900 s at most: it then waits again), still as its first check.
    assert platform.calls[STATUS] == 2
    by_handle = {body["handle"]: (body, delay) for body, delay in scheduled(local_aws)}
    assert by_handle[handles[2]] == ({"handle": handles[2], "attempt": 1}, 900)
    assert by_handle[handles[0]][0]["attempt"] == by_handle[handles[1]][0]["attempt"] == 2
    output = capsys.readouterr().out
    assert metric_values(output, "StatusChecksDeferred") == [1.0]
    assert [log["status_checks_deferred"] for log in check_logs(caplog)] == [0, 0, 1]

    # An hour later the budget has room again: the deferred message makes its first check.
    platform.advance(3600)
    assert verify({"handle": handles[2], "attempt": 1}) == {"batchItemFailures": []}
    assert platform.calls[STATUS] == 3
    [(body, _delay)] = scheduled(local_aws)
    assert body["attempt"] == 2


def test_a_throttled_status_call_pauses_the_budget_for_every_verify_invocation(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    platform.batch_processing_delay = timedelta(hours=2)
    first, second = send_batch(local_aws, platform, "A"), send_batch(local_aws, platform, "B")
    platform.advance(60)
    platform.throttle_after(0, code=80009, regain_minutes=5, endpoint="check_batch_request_status")
    asked_at = clock.now()
    assert verify({"handle": first, "attempt": 3}) == {"batchItemFailures": []}
    assert scheduled(local_aws) == [({"handle": first, "attempt": 3}, 300)]  # Meta's wait, the check not used up
    window = status_budget(local_aws).window()
    assert window.blocked_until_ms == epoch_ms(asked_at + timedelta(minutes=5))

    # Another invocation, a minute later: it does not ask the platform at all and waits out the rest of the pause.
    platform.reset_faults()
    platform.advance(60)
    calls = platform.calls[STATUS]
    assert verify({"handle": second, "attempt": 1}) == {"batchItemFailures": []}
    assert platform.calls[STATUS] == calls
    assert scheduled(local_aws) == [({"handle": second, "attempt": 1}, 240)]


# ------------------------------------------------------------------ rechecks from observed processing times
def test_rechecks_follow_the_observed_processing_times_and_each_settled_batch_adds_its_interval(
    local_aws: LocalAws,
    platform: CommercePlatformSimulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = processing_times(local_aws)
    for index in range(5):
        store.record(Observation(f"earlier-{index}", 15_000, 25_000, 0))  # took between 15 and 25 s
    assert store.first_check_delay(60) == 20  # what push_batch will use for the first check

    platform.batch_processing_delay = timedelta(seconds=21)
    handle = send_batch(local_aws, platform, "A")
    platform.advance(10)  # checked early: still processing
    assert verify({"handle": handle, "attempt": 1}) == {"batchItemFailures": []}
    [(body, delay)] = scheduled(local_aws)
    # Not 60 s (VerifyDelaySeconds doubling): the 0.75 quantile of (15, 25] is 22.5 s after acceptance, 12.5 s on.
    assert delay == 13
    assert body == {"handle": handle, "attempt": 2, "seen_processing_at": "2026-11-23T09:00:10Z"}
    capsys.readouterr()
    [log] = check_logs(caplog)
    assert (log["recheck_basis"], log["recheck_quantile"], log["estimated_processing_seconds"]) == (
        "estimate",
        0.75,
        22.5,
    )

    platform.advance(delay)
    assert verify(body) == {"batchItemFailures": []}
    assert scheduled(local_aws) == []
    stored = decode(local_aws.client("dynamodb").get_item(
        TableName=env(local_aws, "SKU_TABLE"), Key=encode({"retailer_id": "A", "record": "state"})
    )["Item"])  # fmt: skip
    assert stored["confirmed_version"] == 1
    # The batch's interval: still processing 10 s after acceptance, done 23 s after.
    newest = store.observations()[-1]
    assert (newest.handle, newest.lower_ms, newest.upper_ms) == (handle, 10_000, 23_000)
    output = capsys.readouterr().out
    assert metric_values(output, "BatchProcessingSeconds") == [16.5]

    # A redelivery of the same check finds the batch settled and records nothing twice.
    assert verify(body) == {"batchItemFailures": []}
    assert [o.handle for o in store.observations()].count(handle) == 1


def test_a_batch_slower_than_anything_observed_is_rechecked_by_doubling_and_raises_the_estimate(
    local_aws: LocalAws, platform: CommercePlatformSimulator
) -> None:
    store = processing_times(local_aws)
    store.record(Observation("earlier", 5_000, 10_000, 0))
    platform.batch_processing_delay = timedelta(seconds=70)
    handle = send_batch(local_aws, platform, "A")
    platform.advance(store.first_check_delay(60))
    message: dict[str, Any] = {"handle": handle, "attempt": 1}
    delays = []
    while True:
        assert verify(message) == {"batchItemFailures": []}
        pending = scheduled(local_aws)
        if not pending:
            break
        [(message, delay)] = pending
        delays.append(delay)
        platform.advance(delay)
    # First check at 8 s (the median of (5, 10]); then the 0.75 quantile of what remains, 9.5 s (the 5 s floor:
    # 13 s); past everything observed, doubling the time since acceptance: 26, 52, 104 s.
    assert delays == [5, 13, 26, 52]
    newest = store.observations()[-1]
    assert (newest.lower_ms, newest.upper_ms) == (52_000, 104_000)
    assert store.first_check_delay(60) == 10  # half the weight now lies above the old batches' 10 s


# ------------------------------------------------------------------ the store, against moto
def test_the_store_keeps_the_newest_observations_once_each(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    store = DynamoProcessingTimes(local_aws.client("dynamodb"), aws_env["CONTROL_TABLE"], catalog_id=CATALOG, limit=3)
    assert store.observations() == ()
    assert store.first_check_delay(60) == 60  # nothing observed yet: VerifyDelaySeconds
    for index in range(5):
        assert store.record(Observation(f"h{index}", 0, (index + 1) * 10_000, index))
    assert store.record(Observation("h4", 0, 1, 99)) is False  # a redelivery
    assert [(o.handle, o.upper_ms) for o in store.observations()] == [("h2", 30_000), ("h3", 40_000), ("h4", 50_000)]
    assert store.first_check_delay(60) == 20  # median of (0, 30], (0, 40], (0, 50]
    # Another catalog has its own item.
    other = DynamoProcessingTimes(local_aws.client("dynamodb"), aws_env["CONTROL_TABLE"], catalog_id="2002")
    assert other.observations() == ()
    item = decode(
        local_aws.client("dynamodb").get_item(
            TableName=aws_env["CONTROL_TABLE"], Key=encode({"name": f"batch-processing#{CATALOG}"})
        )["Item"]
    )
    assert item["revision"] == 5


def test_concurrent_writers_lose_no_observation(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    """Two verify invocations read the same revision; the second write is refused and retried on the new one."""
    client = local_aws.client("dynamodb")
    first = DynamoProcessingTimes(client, aws_env["CONTROL_TABLE"], catalog_id=CATALOG)
    first.record(Observation("h0", 0, 10_000, 0))

    class Interleaved:
        """A client whose first read is followed by another writer's update before our write."""

        def __init__(self) -> None:
            self.raced = False

        def get_item(self, **request: Any) -> Any:
            answer = client.get_item(**request)
            if not self.raced:
                self.raced = True
                first.record(Observation("other", 0, 20_000, 0))
            return answer

        def put_item(self, **request: Any) -> Any:
            return client.put_item(**request)

    racing = DynamoProcessingTimes(Interleaved(), aws_env["CONTROL_TABLE"], catalog_id=CATALOG)
    assert racing.record(Observation("mine", 0, 30_000, 0))
    assert [o.handle for o in first.observations()] == ["h0", "other", "mine"]


def test_an_unreadable_stored_entry_is_skipped_not_fatal(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    client = local_aws.client("dynamodb")
    item = {
        "name": f"batch-processing#{CATALOG}",
        "observations": [{"handle": "bad"}, {"handle": "good", "lower_ms": 0, "upper_ms": 8000, "at_ms": 1}],
        "revision": 1,
    }
    client.put_item(TableName=aws_env["CONTROL_TABLE"], Item=encode(item))
    store = DynamoProcessingTimes(client, aws_env["CONTROL_TABLE"], catalog_id=CATALOG)
    assert [o.handle for o in store.observations()] == ["good"]
    assert store.record(Observation("next", 0, 8000, 2))
    assert [o.handle for o in store.observations()] == ["good", "next"]
