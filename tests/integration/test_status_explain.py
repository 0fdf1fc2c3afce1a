"""`stocksync status` and `stocksync explain` against moto server and the simulator: after a replay kept running
(`replay --keep`, read from another process through the file it writes), after a bad record, after an audit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from stocksync.dal import aws, batches_table
from stocksync.models.push import BatchEntry, BatchRecord
from stocksync_dev.cli import replay
from stocksync_dev.cli.inspect_settings import describe_aws_error
from stocksync_dev.cli.main import main
from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator
from tests.integration.test_catalog_loop import FIELD, audit, start_with
from tests.support import FakeLambdaContext, forget_cached_environment, load_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
# SKU-1: an order on Instagram still processing (P 3). SKU-2: the web shop sold 3 of the 2 in the warehouse (C 3),
# over-sold by 1 and published at 0.
SCENARIO = {
    "catalog_id": "1001",
    "settings": {
        "deduction_mode": "merchant",
        "buckets": {
            "fast": {"threshold": 2, "allocation_percent": 100},
            "slow": {"threshold": 0, "allocation_percent": 100},
        },
    },
    "skus": [
        {"retailer_id": "SKU-1", "warehouse": 10, "bucket": "fast"},
        {"retailer_id": "SKU-2", "warehouse": 2, "bucket": "slow"},
    ],
    "steps": [
        {"order": {"id": "o-1", "state": "FB_PROCESSING", "items": [{"retailer_id": "SKU-1", "quantity": 3}]}},
        {"shop_order": {"id": "web-1", "state": "placed", "items": [{"retailer_id": "SKU-2", "quantity": 3}]}},
        {"run": "pipeline"},
    ],
}


def from_another_shell(env_file: Path, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in a new process that sourced ``env_file``, as a user's second shell does."""
    command = f'. "{env_file}" && exec "{sys.executable}" -m stocksync_dev.cli.main "$@"'
    done = subprocess.run(
        ["bash", "-c", command, "stocksync", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stdout, done.stderr


def test_after_replay_keep_another_process_explains_each_term_and_status_shows_the_over_sold_sku(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, env_file = tmp_path / "scenario.json", tmp_path / "kept.env"
    scenario.write_text(json.dumps(SCENARIO))
    seen: dict[str, Any] = {}

    def in_this_process(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def look_while_kept() -> None:
        # One look from a new process that only has the file (a process start costs seconds on a loaded machine);
        # the others from this one, whose environment the replay pointed at the same stack.
        seen["status"] = from_another_shell(env_file, "status", "--json")
        seen["explain"] = in_this_process("explain", "SKU-1", "--json")
        seen["explain_text"] = in_this_process("explain", "SKU-2")
        seen["unknown"] = in_this_process("explain", "NO-SUCH-SKU")

    monkeypatch.setattr(replay, "serve_until_interrupted", look_while_kept)
    code = main(["replay", str(scenario), "--keep", "--env-file", str(env_file), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert not env_file.exists()  # the stack is gone: so is the file that pointed at it

    code, out, err = seen["explain"]
    assert code == 0, err
    sku = json.loads(out)
    assert sku["I"]["units"] == 10 and sku["I"]["as_of"] is not None
    assert (sku["P"], sku["C"], sku["K"]) == (3, 0, 0)
    assert [(o["order_id"], o["state"], o["P"]) for o in sku["orders"]] == [("o-1", "FB_PROCESSING", 3)]
    assert sku["counters_match_orders"]
    assert (sku["allocation"]["from"], sku["allocation"]["units"]) == ("bucket", 10)
    assert (sku["bucket"]["name"], sku["threshold"]) == ("fast", 2)
    assert sku["A"] == report["skus"]["SKU-1"]["A"] == 7
    # The catalog is believed to show what the simulator's catalog really shows: A, once its order is counted.
    assert sku["catalog"]["believed"]["units"] == report["catalog"]["SKU-1"]["units"] == 7
    assert sku["next_decision"] == "nothing"
    pushes = sku["pushes"]
    assert pushes and pushes[0]["handle"] and pushes[0]["version"] == sku["confirmed"]["version"]
    assert pushes[0]["status"].startswith("confirmed")

    code, out, err = seen["explain_text"]
    assert code == 0, err
    assert "order events:web-1: CREATED (events" in out and "-> C 3" in out
    assert "A = max(0, 2 - 3) = 0; 0 <= threshold 0: A = 0" in out and "OVER-SOLD: 1 units" in out

    code, out, err = seen["status"]
    assert code == 0, err
    status = json.loads(out)
    assert status["stock"]["over_sold"] == {
        "count": 1,
        "units_at_risk": 1,
        "skus": [{"retailer_id": "SKU-2", "shortfall": 1}],
    }
    assert status["stock"]["at_zero"] == {"count": 1, "skus": ["SKU-2"]}
    assert status["stock"]["skus"] == 2
    # Every call the simulator answered was paced through the budget, within the replay's (simulated) hour.
    assert status["call_budgets"]["items_batch"]["used_this_hour"] == report["graph_calls"]["items_batch"]
    assert status["order_poll"]["state"] == "polling" and status["order_poll"]["last_complete_listing"]
    assert status["dead_letters"] == 0
    names = {queue["name"] for queue in status["dead_letter_queues"]}
    assert {"DeadLetterQueue", "OrderEventsDeadLetterQueue", "PushDeadLetterQueue", "BusDeadLetterQueue"} <= names
    assert {"RecomputeQueue", "PushQueue", "OrderEventsQueue"} <= {queue["name"] for queue in status["queues"]}
    assert all(queue["oldest_message_age_seconds"] is None for queue in status["queues"])  # moto: no metrics

    code, out, err = seen["unknown"]
    assert (code, out) == (2, "")
    assert err.strip().startswith("stocksync explain: unknown SKU 'NO-SUCH-SKU'")


def test_status_counts_a_bad_record_in_the_reasoned_dead_letter_queue_and_leaves_it_there(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sample = json.loads((EVENTS / "order_events_sqs_batch.json").read_text())  # its second record is bad
    load_handler("order_events").lambda_handler(sample, FakeLambdaContext())
    capsys.readouterr()
    calls = aws_operations()
    for _ in range(2):  # read-only: a second look finds the same letter
        assert main(["status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        counts = {queue["name"]: queue["messages"] for queue in status["dead_letter_queues"]}
        assert counts["DeadLetterQueue"] == 1
        assert status["dead_letters"] == 1
    assert main(["status"]) == 0
    assert "dead letters: 1 in" in capsys.readouterr().out
    assert main(["explain", "MUG-RED"]) == 0  # the sample's good record ordered 2 (no warehouse level yet)
    explained = capsys.readouterr().out
    assert "order events:web-100234: CREATED (events" in explained and "-> C 2" in explained
    assert "I: unknown" in explained
    assert set(calls) <= READ_OPERATIONS, set(calls) - READ_OPERATIONS


# Every AWS operation status and explain may call: reads only (no receive, which hides and counts a message).
READ_OPERATIONS = {
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "ListQueues",
    "GetQueueAttributes",
    "GetMetricData",
}


def aws_operations() -> list[str]:
    """The operations the product's boto3 clients make from now on (clients made afresh, with a hook on each)."""
    calls: list[str] = []
    aws.reset_clients()
    aws._session().events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)


@pytest.fixture
def platform_options() -> dict[str, Any]:
    return {"access_token": "loop-test-token", "app_secret": "loop-test-app-secret", "start": T0}


@pytest.fixture
def pipeline(local_aws: LocalAws, platform: CommercePlatformSimulator) -> LocalPipeline:
    return LocalPipeline(local_aws, advance_clock=platform.advance)


def test_status_shows_the_drift_the_last_audit_found_and_explain_what_the_catalog_was_read_to_show(
    local_aws: LocalAws,
    pipeline: LocalPipeline,
    platform: CommercePlatformSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start_with(local_aws, pipeline, platform, level=10, shows=10)
    platform.edit_product("SKU-A", **{FIELD: 7})  # someone edits it in Commerce Manager
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_audit"] is None

    audit(dry_run=True)  # a dry run changes nothing, the recorded result included
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_audit"] is None

    audit()
    platform.advance(timedelta(minutes=1).total_seconds())
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    last = json.loads(capsys.readouterr().out)["last_audit"]
    assert (last["finished"], last["read"], last["drifted"]) == (True, 1, 1)
    assert last["differences"] == [
        {
            "retailer_id": "SKU-A",
            "bucket": "slow",
            "expected": 10,
            "catalog": 7,
            "catalog_visibility": "published",
            "ambiguous": False,
        }
    ]
    assert main(["explain", "SKU-A", "--json"]) == 0
    sku = json.loads(capsys.readouterr().out)
    assert sku["catalog"]["last_read"]["units"] == 7
    assert sku["catalog"]["anchor"]["basis"] == "read"
    assert sku["next_decision"] == "catalog differs"  # the read anchored 7; A is 10: recompute pushes it

    pipeline.drain()  # the repair: pushed and confirmed, so the anchor is the push now
    assert platform.catalog()["SKU-A"][FIELD] == 10
    capsys.readouterr()  # the handlers' log lines
    assert main(["explain", "SKU-A", "--json"]) == 0
    sku = json.loads(capsys.readouterr().out)
    assert sku["catalog"]["anchor"]["basis"] == "push"
    assert sku["catalog"]["last_read"]["units"] == 7  # still known after the push replaced the anchor
    assert sku["pushes"][0]["units"] == 10


def test_an_aws_call_that_fails_is_one_clear_line_not_a_traceback(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SKU_TABLE", "no-such-table")  # e.g. the settings of a stack since deleted
    forget_cached_environment()
    for argv in (["explain", "SKU-1"], ["status"]):
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        error = captured.err.strip().splitlines()
        assert len(error) == 1 and "ResourceNotFoundException" in error[0], error
        assert error[0].startswith(f"stocksync {argv[0]}: ")


def test_an_endpoint_that_does_not_answer_asks_whether_the_kept_replay_still_runs() -> None:
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert describe_aws_error(error).endswith("is `stocksync replay --keep` still running?)")


def test_a_skus_pushes_are_found_in_every_part_of_a_split_batch_record_newest_first(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = batches_table.split_blobs
    monkeypatch.setattr(batches_table, "split_blobs", lambda entries: original(entries, limit=120))
    table = batches_table.BatchesTable(aws.client("dynamodb"), aws_env["BATCHES_TABLE"])

    def entry(rid: str, version: int) -> BatchEntry:
        return BatchEntry(retailer_id=rid, value=version, version=version, visibility="published", computed_at=T0)

    rows = [entry(f"SKU-{i:03d}", 1) for i in range(40)] + [entry("SKU-X", 1)]  # SKU-X lands in a later part
    table.record(BatchRecord(handle="h-old", accepted_at=T0, entries=rows))
    table.record(BatchRecord(handle="h-new", accepted_at=T0 + timedelta(minutes=1), entries=[entry("SKU-X", 2)]))
    table.record(BatchRecord(handle="h-older", accepted_at=T0 - timedelta(days=2), entries=[entry("SKU-X", 1)]))
    stored = table.load("h-old")
    assert stored is not None and len(stored.entries) == 41
    head = aws.client("dynamodb").get_item(TableName=aws_env["BATCHES_TABLE"], Key={"handle": {"S": "h-old"}})
    assert int(head["Item"]["parts"]["N"]) > 1  # the record really is split

    found = table.pushes_of("SKU-X", since=T0 - timedelta(hours=1))
    assert [(push.handle, push.entry.version) for push in found] == [("h-new", 2), ("h-old", 1)]
