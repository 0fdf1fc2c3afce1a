"""Verifier against in-memory ports: rechecks with growing delay, confirmation, item errors split, give-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stocksync.errors import InvalidInputError
from stocksync.logic.item_errors import MAX_ITEM_RETRIES
from stocksync.logic.verification import Verifier, VerifyConfig, recheck_delay
from stocksync.models.graph import BatchRequestStatus, BatchRowError, BatchStatus
from stocksync.models.graph_errors import GraphThrottledError, GraphTransientError, GraphValidationError
from stocksync.models.push import BatchEntry, BatchRecord, BatchState, VerifyMessage
from stocksync.models.sku import PlatformMove, SkuState, Visibility
from tests.fakes.push import MemoryBatches, MemoryDeadLetters, MemoryQueue, MemorySkus, ScriptedStatus

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
ACCEPTED = T0 + timedelta(seconds=30)
CHECKED = T0 + timedelta(minutes=2)


def entry(sku: str, version: int = 1, value: int = 4, retries: int = 0) -> BatchEntry:
    return BatchEntry(
        retailer_id=sku,
        value=value,
        version=version,
        visibility=Visibility.PUBLISHED,
        computed_at=T0,
        retries=retries,
    )


class Rig:
    def __init__(self, entries: list[BatchEntry], *, max_checks: int = 4) -> None:
        self.skus = MemorySkus(SkuState(retailer_id=e.retailer_id, published_version=e.version) for e in entries)
        self.batches = MemoryBatches()
        self.batches.record(BatchRecord(handle="h1", accepted_at=ACCEPTED, entries=entries))
        self.status = ScriptedStatus()
        self.push_queue = MemoryQueue()
        self.verify_queue = MemoryQueue()
        self.dead_letters = MemoryDeadLetters()
        self.recompute_queue = MemoryQueue()
        self.verifier = Verifier(
            VerifyConfig(catalog_id="1001", recheck_delay_seconds=60, max_checks=max_checks),
            batches=self.batches,
            status=self.status,
            states=self.skus,
            confirmations=self.skus,
            push_queue=self.push_queue,
            verify_queue=self.verify_queue,
            dead_letters=self.dead_letters,
            recompute_queue=self.recompute_queue,
            now=lambda: CHECKED,
        )

    def answer(self, status: str, *, invalid: list[str] = (), errors: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.status.answers["h1"] = [
            BatchRequestStatus(
                handle="h1",
                status=BatchStatus(status),
                errors=[BatchRowError(id=rid, message=msg) for rid, msg in errors],
                errors_total_count=len(invalid),
                ids_of_invalid_requests=list(invalid),
            )
        ]


def test_a_finished_batch_confirms_its_rows_and_records_the_latencies() -> None:
    rig = Rig([entry("A", value=4), entry("B", value=0)])
    rig.answer("finished")
    outcome = rig.verifier.verify(VerifyMessage(handle="h1"))
    assert rig.status.asked == [("h1", True)]  # always asks for the ids of invalid rows
    assert outcome.confirmed == 2
    a = rig.skus.states["A"]
    assert (a.confirmed_value, a.confirmed_version, a.confirmed_visibility, a.confirmed_at) == (
        4,
        1,
        "published",
        CHECKED,
    )
    assert outcome.batch_latency_seconds == 90
    assert outcome.latencies_seconds == [120, 120]
    assert rig.batches.records["h1"].state is BatchState.DONE
    assert rig.batches.finished["h1"]["latencies"] == [120, 120]


def test_while_processing_it_rechecks_with_doubling_delays_then_gives_up_loudly() -> None:
    rig = Rig([entry("A")], max_checks=4)
    rig.answer("started")
    delays = []
    for attempt in range(1, 4):
        outcome = rig.verifier.verify(VerifyMessage(handle="h1", attempt=attempt))
        body, delay = rig.verify_queue.sent[-1]
        # The check that saw it processing travels with the next one: the lower bound of its processing time.
        assert body == {"handle": "h1", "attempt": attempt + 1, "seen_processing_at": "2026-11-23T09:02:00Z"}
        delays.append(delay)
        assert outcome.rechecks == 1
    assert delays == [60, 120, 240]
    final = rig.verifier.verify(VerifyMessage(handle="h1", attempt=4))
    assert final.gave_up
    assert len(rig.verify_queue.sent) == 3
    [(source, reason, body)] = rig.dead_letters.letters
    assert source == "verify_batch" and "still started after 4 checks" in reason
    assert body == {"handle": "h1", "rows": 1}
    assert rig.batches.records["h1"].state is BatchState.ABANDONED
    assert rig.skus.states["A"].confirmed_version == 0


def test_recheck_delays_are_capped_at_the_sqs_maximum() -> None:
    assert [recheck_delay(n, 60) for n in range(1, 7)] == [60, 120, 240, 480, 900, 900]


def test_item_errors_split_into_retried_and_dead_lettered() -> None:
    rows = [entry("OK"), entry("GONE"), entry("BAD"), entry("FLAKY"), entry("UNSAMPLED"), entry("TIRED", retries=3)]
    rig = Rig(rows)
    rig.answer(
        "finished",
        invalid=["GONE", "BAD", "FLAKY", "UNSAMPLED", "TIRED"],
        errors=[
            ("GONE", "Product not found: GONE"),
            ("BAD", "Invalid value for field quantity_to_sell_on_facebook: 'x' is not a non-negative integer"),
            ("FLAKY", "Internal processing error, please retry"),
            ("TIRED", "Internal processing error, please retry"),
        ],
    )
    outcome = rig.verifier.verify(VerifyMessage(handle="h1"))
    assert outcome.confirmed == 1 and rig.skus.states["OK"].confirmed_version == 1
    assert {rid: s.confirmed_version for rid, s in rig.skus.states.items() if rid != "OK"} == dict.fromkeys(
        ["GONE", "BAD", "FLAKY", "UNSAMPLED", "TIRED"], 0
    )
    retried = {body["retailer_id"]: body for body in rig.push_queue.bodies}
    assert sorted(retried) == ["FLAKY", "UNSAMPLED"]
    assert retried["FLAKY"] == {
        "retailer_id": "FLAKY",
        "value": 4,
        "version": 1,
        "visibility": "published",
        "computed_at": T0.isoformat().replace("+00:00", "Z"),
        "retries": 1,
    }
    letters = {body["retailer_id"]: reason for _source, reason, body in rig.dead_letters.letters}
    assert letters["GONE"] == "product_not_found: Product not found: GONE"
    assert letters["BAD"].startswith("invalid_value: Invalid value for field")
    assert letters["TIRED"].startswith(f"gave up after {MAX_ITEM_RETRIES} retries")
    assert outcome.errors_by_code == {"product_not_found": 1, "invalid_value": 1, "item_error": 2, "unreported": 1}
    assert (outcome.retried, outcome.dead_lettered) == (2, 3)


@pytest.mark.parametrize("status", ["error", "canceled"])
def test_a_failed_batch_retries_every_row_unless_superseded(status: str) -> None:
    rig = Rig([entry("A"), entry("B"), entry("C")])
    rig.skus.states["B"] = rig.skus.states["B"].model_copy(update={"published_version": 2})
    rig.skus.states["C"] = rig.skus.states["C"].model_copy(update={"confirmed_version": 1})
    rig.answer(status)
    outcome = rig.verifier.verify(VerifyMessage(handle="h1"))
    assert [b["retailer_id"] for b in rig.push_queue.bodies] == ["A"]
    assert (outcome.retried, outcome.superseded, outcome.confirmed) == (1, 2, 0)
    assert outcome.errors_by_code == {f"batch_{status}": 1}
    assert rig.batches.records["h1"].state is BatchState.DONE


def test_an_older_batch_never_overwrites_a_newer_confirmed_version() -> None:
    rig = Rig([entry("A", version=1, value=9)])
    newer = entry("A", version=2, value=3)
    rig.skus.states["A"] = rig.skus.states["A"].model_copy(update={"published_version": 2})
    rig.skus.confirm_pushes([newer], accepted_at=ACCEPTED + timedelta(seconds=1), confirmed_at=CHECKED)
    rig.answer("finished")
    outcome = rig.verifier.verify(VerifyMessage(handle="h1"))
    assert (outcome.confirmed, outcome.refused) == (0, 1)
    assert (rig.skus.states["A"].confirmed_value, rig.skus.states["A"].confirmed_version) == (3, 2)


def test_a_confirmation_recomputes_the_skus_the_platform_moved_while_the_push_was_in_flight() -> None:
    rig = Rig([entry("A"), entry("B"), entry("C")])
    sent = ACCEPTED - timedelta(seconds=1)
    rig.batches.records["h1"] = rig.batches.records["h1"].model_copy(update={"sent_at": sent})
    moves = {
        "A": PlatformMove(units=-1, not_before=sent + timedelta(seconds=5), not_after=sent + timedelta(seconds=5)),
        "B": PlatformMove(units=-1, not_before=T0, not_after=T0),  # before the call: erased, nothing open
    }
    for sku, move in moves.items():
        rig.skus.states[sku] = rig.skus.states[sku].model_copy(update={"platform_moves": (move,)})
    rig.answer("finished")
    rig.verifier.verify(VerifyMessage(handle="h1"))
    assert [body["retailer_id"] for body in rig.recompute_queue.bodies] == ["A"]
    anchored = rig.skus.states["A"]
    assert (anchored.catalog_value, anchored.catalog_from, anchored.catalog_to) == (4, sent, CHECKED)


def test_a_recompute_that_cannot_be_enqueued_keeps_the_verify_message() -> None:
    rig = Rig([entry("A")])
    move_at = ACCEPTED + timedelta(seconds=5)
    rig.skus.states["A"] = rig.skus.states["A"].model_copy(
        update={"platform_moves": (PlatformMove(units=-1, not_before=move_at, not_after=move_at),)}
    )
    rig.recompute_queue.fail = lambda body: True
    rig.answer("finished")
    with pytest.raises(RuntimeError, match="recomputes"):
        rig.verifier.verify(VerifyMessage(handle="h1"))
    assert rig.batches.records["h1"].state is BatchState.PENDING  # the redelivery asks again
    rig.recompute_queue.fail = lambda body: False
    rig.verifier.verify(VerifyMessage(handle="h1"))
    assert [body["retailer_id"] for body in rig.recompute_queue.bodies] == ["A"]


def test_a_redelivered_message_of_a_settled_batch_does_nothing() -> None:
    rig = Rig([entry("A")])
    rig.answer("finished")
    rig.verifier.verify(VerifyMessage(handle="h1"))
    again = rig.verifier.verify(VerifyMessage(handle="h1"))
    assert again.already_settled
    assert len(rig.status.asked) == 1


def test_throttling_reschedules_the_same_check_after_the_announced_wait() -> None:
    rig = Rig([entry("A")])
    rig.status.answers["h1"] = [
        GraphThrottledError("(#80009) slow down", retry_after_seconds=300, usage=None, code=80009)
    ]
    outcome = rig.verifier.verify(VerifyMessage(handle="h1", attempt=2))
    assert rig.verify_queue.sent == [({"handle": "h1", "attempt": 2}, 300)]
    assert outcome.errors_by_code == {"80009": 1}


def test_a_failed_status_call_is_raised_so_the_message_is_redelivered() -> None:
    rig = Rig([entry("A")])
    rig.status.answers["h1"] = [GraphTransientError("(#2) temporary", code=2)]
    with pytest.raises(GraphTransientError):
        rig.verifier.verify(VerifyMessage(handle="h1"))
    assert rig.batches.records["h1"].state is BatchState.PENDING


def test_unknown_handles_and_statuses_that_name_no_failed_row_are_invalid_input() -> None:
    rig = Rig([entry("A")])
    with pytest.raises(InvalidInputError) as unknown:
        rig.verifier.verify(VerifyMessage(handle="nope"))
    assert unknown.value.field == "handle"
    rig.status.answers["h1"] = [GraphValidationError("(#100) Invalid handle 'h1'", code=100)]
    with pytest.raises(InvalidInputError, match="the platform refused the status request: \\(#100\\) Invalid handle"):
        rig.verifier.verify(VerifyMessage(handle="h1"))
    rig.status.answers["h1"] = [BatchRequestStatus(handle="h1", status=BatchStatus.FINISHED, errors_total_count=2)]
    with pytest.raises(InvalidInputError) as silent:
        rig.verifier.verify(VerifyMessage(handle="h1"))
    assert silent.value.field == "ids_of_invalid_requests"
    assert rig.skus.states["A"].confirmed_version == 0


def test_a_retry_that_sqs_refuses_keeps_the_batch_pending_for_the_redelivery() -> None:
    rig = Rig([entry("A"), entry("B")])
    rig.answer("error")
    rig.push_queue.fail = lambda body: body["retailer_id"] == "B"
    with pytest.raises(RuntimeError, match="could not re-enqueue 1 rows"):
        rig.verifier.verify(VerifyMessage(handle="h1"))
    assert rig.batches.records["h1"].state is BatchState.PENDING


def test_a_confirmation_recomputes_a_sku_whose_orders_were_seen_while_its_push_was_in_flight() -> None:
    # The order was placed before the call (the overwrite erased it) but polled only after the claim: recompute
    # then assumed it came after the overwrite and waited for this confirmation to know.
    rig = Rig([entry("A")])
    before = ACCEPTED - timedelta(seconds=30)
    rig.skus.states["A"] = rig.skus.states["A"].model_copy(
        update={
            "platform_units": -2,
            "published_platform_units": 0,
            "platform_moves": (PlatformMove(units=-2, not_before=before, not_after=before),),
        }
    )
    rig.answer("finished")
    rig.verifier.verify(VerifyMessage(handle="h1"))
    assert [body["retailer_id"] for body in rig.recompute_queue.bodies] == ["A"]
