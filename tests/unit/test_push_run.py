"""Pusher against in-memory ports: minimal calls, nothing lost on throttling or failures, only failed records back."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.logic.batch_budget import epoch_ms
from stocksync.logic.call_pacing import LEASE_RETRY_SECONDS
from stocksync.logic.push_planning import ReceivedPush
from stocksync.logic.pushing import PushConfig, Pusher
from stocksync.models.graph_errors import GraphThrottledError, GraphTransientError, GraphValidationError
from stocksync.models.push import QueuedPush
from stocksync.models.sku import SkuState
from tests.fakes.push import (
    MemoryBatches,
    MemoryBudget,
    MemoryDeadLetters,
    MemoryQueue,
    MemorySkus,
    ScriptedCatalog,
)

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


class Rig:
    def __init__(self, skus: int, *, calls_per_hour: int = 90, burst: int = 3, **config: object) -> None:
        self.skus = MemorySkus(SkuState(retailer_id=f"S{i:05d}", published_version=1) for i in range(skus))
        self.catalog = ScriptedCatalog()
        self.budget = MemoryBudget(calls_per_hour, burst)
        self.batches = MemoryBatches()
        self.verify_queue = MemoryQueue()
        self.push_queue = MemoryQueue()
        self.dead_letters = MemoryDeadLetters()
        self.now = T0
        self.pusher = Pusher(
            PushConfig(catalog_id="1001", catalog_field="quantity_to_sell_on_facebook", **config),  # type: ignore[arg-type]
            states=self.skus,
            catalog=self.catalog,
            budget=self.budget,
            batches=self.batches,
            verify_queue=self.verify_queue,
            push_queue=self.push_queue,
            dead_letters=self.dead_letters,
            confirmations=self.skus,
            now=lambda: self.now,
        )


def checks(rig: Rig) -> list[tuple[str, int, int]]:
    """(handle, attempt, delay) of each status check scheduled."""
    return [(body["handle"], body["attempt"], delay) for body, delay in rig.verify_queue.sent]


def pushes(count: int, version: int = 1, start: int = 0) -> list[ReceivedPush]:
    return [
        ReceivedPush(
            f"m{i}",
            QueuedPush(retailer_id=f"S{i:05d}", value=i % 7, version=version, visibility="published", computed_at=T0),
        )
        for i in range(start, start + count)
    ]


def test_12000_changed_skus_go_out_in_four_calls_of_3000_each_recorded_and_scheduled() -> None:
    rig = Rig(12_000, burst=4)
    outcome = rig.pusher.push(pushes(12_000))
    assert [len(call.rows) for call in rig.catalog.calls] == [3000] * 4
    assert (outcome.calls, outcome.pushed, outcome.failed_record_ids) == (4, 12_000, [])
    first = rig.catalog.calls[0].rows[0]
    assert first == ("S00000", {"quantity_to_sell_on_facebook": 0, "visibility": "published"})
    assert sorted(rig.batches.by_handle) == ["h1", "h2", "h3", "h4"]
    assert [len(r.entries) for r in rig.batches.by_handle.values()] == [3000] * 4
    assert checks(rig) == [(f"h{i}", 1, 60) for i in range(1, 5)]
    # Each record is keyed by the run and the call, where a run settling this one after a crash looks for it.
    assert [body["record"] for body in rig.verify_queue.bodies] == list(rig.batches.records)


def test_a_second_push_of_confirmed_versions_makes_no_call() -> None:
    rig = Rig(10)
    rig.pusher.push(pushes(10))
    for record in rig.batches.records.values():
        rig.skus.confirm_pushes(record.entries, accepted_at=record.accepted_at, confirmed_at=T0)
    again = rig.pusher.push(pushes(10))
    assert len(rig.catalog.calls) == 1
    assert (again.already_confirmed, again.calls, again.failed_record_ids) == (10, 0, [])


def test_an_older_version_than_the_published_one_is_never_sent() -> None:
    rig = Rig(3)
    rig.skus.states["S00001"] = rig.skus.states["S00001"].model_copy(update={"published_version": 2})
    outcome = rig.pusher.push(pushes(3, version=1) + pushes(1, version=2, start=1))
    sent = dict(rig.catalog.calls[0].rows)
    assert sorted(sent) == ["S00000", "S00001", "S00002"]
    assert [e.version for e in rig.batches.by_handle["h1"].entries if e.retailer_id == "S00001"] == [2]
    assert outcome.superseded == 1


def test_throttling_mid_run_pauses_the_budget_and_requeues_the_unsent_rows_with_the_announced_delay() -> None:
    rig = Rig(9000)
    rig.catalog.failures = [
        None,
        GraphThrottledError("(#80014) too many calls", retry_after_seconds=1200, usage=None, code=80014),
    ]
    outcome = rig.pusher.push(pushes(9000))
    assert outcome.calls == 1 and outcome.pushed == 3000
    assert outcome.failed_record_ids == []
    assert outcome.deferred == 6000
    assert {delay for _body, delay in rig.push_queue.sent} == {900}  # SQS caps a delay at 900 s
    assert sorted(b["retailer_id"] for b in rig.push_queue.bodies) == [f"S{i:05d}" for i in range(3000, 9000)]
    assert rig.budget.window.blocked_until_ms == epoch_ms(T0 + timedelta(seconds=1200))
    assert outcome.errors_by_code == {"80014": 1}
    # The re-sent messages are the same versions, unchanged.
    assert rig.push_queue.bodies[0] == pushes(1, start=3000)[0].message.body()


def test_a_transient_failure_reports_only_that_calls_records_and_the_next_call_still_goes_out() -> None:
    rig = Rig(6000)
    rig.catalog.failures = [GraphTransientError("(#2) temporary", code=2)]
    outcome = rig.pusher.push(pushes(6000))
    assert outcome.failed_record_ids == [f"m{i}" for i in range(3000)]
    assert (outcome.calls, outcome.pushed) == (1, 3000)
    assert rig.push_queue.sent == []


def test_requeue_refused_by_sqs_turns_into_failed_records() -> None:
    rig = Rig(4000)
    rig.catalog.failures = [GraphThrottledError("throttled", retry_after_seconds=30, usage=None, code=4)]
    rig.push_queue.fail = lambda body: body["retailer_id"] == "S00007"
    outcome = rig.pusher.push(pushes(4000))
    assert outcome.failed_record_ids == ["m7"]
    assert outcome.deferred == 3999
    assert {delay for _body, delay in rig.push_queue.sent} == {30}


def test_more_rows_than_the_open_slots_carry_fill_them_to_5000_and_the_rest_waits_for_the_next_slot() -> None:
    rig = Rig(12_000, burst=3)
    outcome = rig.pusher.push(pushes(12_000))
    assert [len(call.rows) for call in rig.catalog.calls] == [5000, 5000, 2000]  # 3 slots open: the burst
    rig = Rig(12_000, burst=2)
    outcome = rig.pusher.push(pushes(12_000))
    assert [len(call.rows) for call in rig.catalog.calls] == [5000, 5000]
    assert outcome.deferred == 2000
    slot = rig.budget.pace.slot_seconds  # 3600 / (90 - 2 + 1) = 40.45 s
    assert {delay for _body, delay in rig.push_queue.sent} == {math.ceil(slot)}
    assert (outcome.next_slot_seconds, outcome.slots_used_in_hour) == (slot, 2)
    rest = [ReceivedPush(f"again{i}", QueuedPush.model_validate(b)) for i, b in enumerate(rig.push_queue.bodies)]
    released = len(rig.budget.released)
    assert rig.pusher.push(rest).calls == 0  # too early: the slot is not open yet
    assert len(rig.budget.released) == released  # no slot, no lease taken, nothing to give back
    rig.now += timedelta(seconds=slot)
    assert rig.pusher.push(rest).pushed == 2000


def test_an_exhausted_hour_defers_rows_until_its_oldest_call_leaves_the_trailing_hour() -> None:
    rig = Rig(12_000, calls_per_hour=2, burst=2)
    outcome = rig.pusher.push(pushes(12_000))
    assert [len(call.rows) for call in rig.catalog.calls] == [5000, 5000]
    assert {delay for _body, delay in rig.push_queue.sent} == {900}  # SQS's cap; the rows wait again if need be
    assert outcome.next_slot_seconds == 3600
    rig.now += timedelta(hours=1)
    rest = [ReceivedPush(f"again{i}", QueuedPush.model_validate(b)) for i, b in enumerate(rig.push_queue.bodies)]
    assert rig.pusher.push(rest).pushed == 2000


def test_rows_refused_at_upload_are_dead_lettered_with_the_platform_message() -> None:
    rig = Rig(5)
    rig.catalog.refuse = {"S00002": "Invalid value for field quantity_to_sell_on_facebook: -3"}
    outcome = rig.pusher.push(pushes(5))
    assert outcome.pushed == 4
    assert [e.retailer_id for e in rig.batches.by_handle["h1"].entries] == ["S00000", "S00001", "S00003", "S00004"]
    [(source, reason, body)] = rig.dead_letters.letters
    assert source == "push_batch" and reason.startswith("invalid_value: Invalid value for field")
    assert body["retailer_id"] == "S00002"


def test_a_call_without_a_handle_sends_its_rows_again() -> None:
    rig = Rig(3)
    rig.catalog.no_handle = True
    outcome = rig.pusher.push(pushes(3))
    assert outcome.failed_record_ids == ["m0", "m1", "m2"]
    assert outcome.errors_by_code == {"no_handle": 1}


@pytest.mark.parametrize("what", ["record", "verify"])
def test_an_accepted_batch_that_cannot_be_recorded_comes_back_with_its_handle_and_is_never_sent_again(
    what: str,
) -> None:
    """The platform took the call; recording it (or scheduling its check) failed. The rows go back to the push queue
    carrying the handle, and the next run records and schedules them without a call: one call for the rows."""
    rig = Rig(3)
    if what == "record":
        rig.batches.fail_record = True
    else:
        rig.verify_queue.fail = lambda body: True
    outcome = rig.pusher.push(pushes(3))
    assert (outcome.failed_record_ids, outcome.calls, outcome.handed_over) == ([], 1, 3)
    [handle] = outcome.handles
    # Recorded under the handle only when the verify send was what failed: a record nothing will check (it expires).
    assert list(rig.batches.by_handle) == ([handle] if what == "verify" else []) and rig.verify_queue.sent == []
    assert [body["handle"] for body in rig.push_queue.bodies] == [handle] * 3

    rig.batches.fail_record = False
    rig.verify_queue.fail = lambda body: False
    back = [ReceivedPush(f"r{i}", QueuedPush.model_validate(body)) for i, body in enumerate(rig.push_queue.bodies)]
    again = rig.pusher.push(back)
    assert (again.calls, again.recorded_late, again.failed_record_ids) == (0, 3, [])
    assert len(rig.catalog.calls) == 1
    [(key, record)] = [(key, record) for key, record in rig.batches.records.items() if "#late-" in key]
    assert record.handle == handle and key.startswith(f"{handle}#late-")
    assert [(e.retailer_id, e.value, e.version) for e in record.entries] == [(f"S{i:05d}", i % 7, 1) for i in range(3)]
    assert rig.verify_queue.bodies == [{"handle": handle, "record": key, "attempt": 1}]


def test_accepted_rows_that_cannot_be_handed_back_either_are_reported_failed_with_the_reason() -> None:
    rig = Rig(2)
    rig.batches.fail_record = True
    rig.push_queue.fail = lambda body: body["retailer_id"] == "S00001"
    outcome = rig.pusher.push(pushes(2))
    assert (outcome.handed_over, outcome.failed_record_ids) == (1, ["m1"])
    assert outcome.failure_reasons["m1"].endswith("not recorded: RuntimeError: table unavailable")


def test_rows_carrying_a_handle_that_still_cannot_be_recorded_come_back_without_a_call() -> None:
    rig = Rig(2)
    carried = [
        ReceivedPush(p.record_id, p.message.model_copy(update={"handle": "h-9", "accepted_at": T0, "sent_at": T0}))
        for p in pushes(2)
    ]
    rig.batches.fail_record = True
    outcome = rig.pusher.push(carried)
    assert (outcome.failed_record_ids, rig.catalog.calls) == (["m0", "m1"], [])
    assert outcome.failure_reasons["m0"] == "batch h-9 not recorded: RuntimeError: table unavailable"


def test_unknown_skus_are_dead_lettered_and_feed_served_skus_left_to_the_feed() -> None:
    rig = Rig(2, feed_buckets=frozenset({"slow"}))
    rig.skus.states["S00001"] = rig.skus.states["S00001"].model_copy(update={"bucket": "slow"})
    outcome = rig.pusher.push(pushes(3))
    assert [rid for rid, _ in rig.catalog.calls[0].rows] == ["S00000"]
    assert outcome.feed_served == 1
    [(_source, reason, _body)] = rig.dead_letters.letters
    assert reason == "retailer_id: no SKU record for 'S00002'"


def urgent(count: int, *, version: int = 1, start: int = 0, at: datetime = T0) -> list[ReceivedPush]:
    return [
        ReceivedPush(
            f"u{i}",
            QueuedPush(
                retailer_id=f"S{i:05d}", value=0, version=version, visibility="published", computed_at=at, urgent=True
            ),
        )
        for i in range(start, start + count)
    ]


def test_urgent_rows_go_into_the_slot_first_and_the_newest_routine_rows_are_the_ones_that_wait() -> None:
    rig = Rig(7000, burst=1)
    routine = [
        ReceivedPush(p.record_id, p.message.model_copy(update={"computed_at": T0 + timedelta(seconds=p_index)}))
        for p_index, p in enumerate(pushes(6000))
    ]
    outcome = rig.pusher.push(routine + urgent(1000, start=6000, at=T0 + timedelta(minutes=5)))
    [call] = rig.catalog.calls
    sent = [rid for rid, _fields in call.rows]
    assert sent[:1000] == [f"S{i:05d}" for i in range(6000, 7000)]  # the urgent ones, although the newest
    assert sent[1000:] == [f"S{i:05d}" for i in range(4000)]  # then the oldest routine changes
    assert sorted(b["retailer_id"] for b in rig.push_queue.bodies) == [f"S{i:05d}" for i in range(4000, 6000)]
    assert (outcome.urgent, outcome.deferred) == (1000, 2000)
    assert outcome.oldest_waiting_age_seconds == 0  # the clock stands at T0: S04000 changed at T0 + 4000 s
    # The urgent flag travels with the message, so a row sent back keeps its place in the order.
    assert QueuedPush.model_validate(urgent(1)[0].message.body()).urgent


def test_one_pusher_at_a_time_a_run_that_starts_while_another_sends_gets_no_slot() -> None:
    """Interleaves two runs: the second starts while the first is inside its items_batch call. Without the lease
    the second would take a burst slot and send at the same time."""
    rig = Rig(10, burst=3)
    second_outcomes = []

    class Interleaving(ScriptedCatalog):
        def items_batch(self, catalog_id, requests, **kwargs):  # type: ignore[no-untyped-def]
            if not second_outcomes:
                second_outcomes.append(rig.pusher.push(pushes(5, version=1, start=5)))
            return super().items_batch(catalog_id, requests, **kwargs)

    rig.pusher._catalog = rig.catalog = Interleaving()
    first = rig.pusher.push(pushes(5))
    [second] = second_outcomes
    assert (first.calls, second.calls) == (1, 0)
    assert second.deferred == 5
    assert {delay for _body, delay in rig.push_queue.sent} == {LEASE_RETRY_SECONDS}
    assert rig.budget.state.holder == ""  # the first run gave the lease back when it was done
    # Once the first is done, the next run finds the lease free and the burst's second slot open.
    assert rig.pusher.push(pushes(5, start=5)).calls == 1


def test_a_lease_left_by_a_run_that_died_lapses_at_that_runs_deadline() -> None:
    rig = Rig(10, burst=3)
    rig.budget.acquire_slots(1, preferred_size=3000, now=T0, holder="dead-run", lease_seconds=60)
    assert rig.pusher.push(pushes(5)).calls == 0
    rig.now = T0 + timedelta(seconds=60)
    assert rig.pusher.push(pushes(5)).calls == 1


def test_urgent_rows_may_go_through_single_updates_when_the_next_slot_is_far() -> None:
    rig = Rig(6, burst=1, single_update_max_skus=2, single_update_after_seconds=20)
    rig.catalog.single_failures = {"S00003": GraphValidationError("(#100) Product not found: S00003", code=100)}
    # An older version of S00002 is still unconfirmed (maybe in a batch in flight): the update could be overtaken.
    rig.skus.states["S00002"] = rig.skus.states["S00002"].model_copy(update={"published_version": 2})
    assert rig.pusher.push(pushes(1)).calls == 1  # the only slot for the next 40 s
    outcome = rig.pusher.push(
        urgent(1, start=1)
        + urgent(1, start=2, version=2)
        + urgent(1, start=3)
        + urgent(1, start=4)
        + pushes(1, start=5)
    )
    assert outcome.calls == 0
    assert rig.catalog.single == [("S00001", {"quantity_to_sell_on_facebook": 0, "visibility": "published"})]
    assert rig.skus.states["S00001"].confirmed_version == 1  # a single update is synchronous: confirmed at once
    assert [reason.split(":")[0] for _s, reason, _b in rig.dead_letters.letters] == ["product_not_found"]
    # At most 2 tried (S00001, S00003); S00002 is unsafe, S00004 over the limit, S00005 routine: they wait.
    assert sorted(b["retailer_id"] for b in rig.push_queue.bodies) == ["S00002", "S00004", "S00005"]
    assert outcome.single_updates == 1


def test_single_updates_stay_off_by_default_and_when_the_slot_is_near() -> None:
    rig = Rig(3, burst=1)
    rig.pusher.push(pushes(1))
    assert rig.pusher.push(urgent(1, start=1)).single_updates == 0
    near = Rig(3, calls_per_hour=1000, burst=1, single_update_max_skus=5, single_update_after_seconds=20)
    near.pusher.push(pushes(1))  # the next slot is 3.6 s away
    assert near.pusher.push(urgent(1, start=1)).single_updates == 0
    assert near.catalog.single == []


def test_the_first_status_check_follows_the_observed_processing_times_and_falls_back_when_unreadable() -> None:
    class Timing:
        def __init__(self, answer: int | Exception) -> None:
            self.answer = answer
            self.reads = 0

        def first_check_delay(self, default_seconds: int) -> int:
            self.reads += 1
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    rig = Rig(6000)
    rig.pusher._verify_timing = timing = Timing(22)
    rig.pusher.push(pushes(6000))
    assert checks(rig) == [(f"h{i}", 1, 22) for i in (1, 2)]
    assert timing.reads == 1  # one read of the estimate for the run's two calls
    rig = Rig(3)
    rig.pusher._verify_timing = Timing(RuntimeError("table unavailable"))
    assert rig.pusher.push(pushes(3)).calls == 1  # the batch still goes out, checked after VerifyDelaySeconds
    assert checks(rig) == [("h1", 1, 60)]


def test_calls_granted_but_never_made_go_back_to_the_hour_when_a_throttle_ends_the_run() -> None:
    """Three calls granted (the burst), the second throttled: it was sent (the platform may count it), the third
    never was. The hour's log keeps two calls and the rate gets the third slot back."""
    rig = Rig(9000)
    rig.catalog.failures = [None, GraphThrottledError("(#80014) too many calls", retry_after_seconds=60, usage=None)]
    slot_ms = rig.budget.pace.slot_ms
    outcome = rig.pusher.push(pushes(9000))
    assert (outcome.calls_made, outcome.calls_returned) == (2, 1)
    assert rig.budget.window.call_times_ms == (epoch_ms(T0),) * 2
    assert rig.budget.state.next_slot_ms == epoch_ms(T0) + 2 * slot_ms
    assert rig.budget.state.holder == ""


def test_calls_granted_to_a_run_that_fails_before_making_them_go_back_to_the_hour() -> None:
    """A failure before the first call (here: sending the rows no slot carries back to the queue) used to keep the
    run's calls reserved for the whole hour."""
    rig = Rig(16_000)  # three calls of 5,000 granted; 1,000 rows wait

    def unreachable(bodies: object, *, delay_seconds: int = 0) -> object:
        raise ConnectionError("sqs unreachable")

    rig.push_queue.send = unreachable  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        rig.pusher.push(pushes(16_000))
    assert rig.catalog.calls == []
    assert rig.budget.window.call_times_ms == ()
    assert (rig.budget.state.holder, rig.budget.state.next_slot_ms) == ("", epoch_ms(T0))


def test_no_call_starts_too_close_to_the_deadline_to_record_its_answer() -> None:
    """A call whose answer arrives after Lambda's deadline loses the accepted batch's handle (the one crash nothing
    can recover from: the platform finds no batch without it). With 34 s left, below the 35 s reserve (the Graph
    client's 30 s read timeout and time to record), the rows wait for the next slot and the calls go back."""
    rig = Rig(6000)
    left = iter([40.0, 34.0])  # the first call may start, the second not
    outcome = rig.pusher.push(pushes(6000), time_left=lambda: next(left))
    assert len(rig.catalog.calls) == 1 and outcome.calls_made == 1
    assert (outcome.calls_returned, outcome.deferred, outcome.errors_by_code["deadline_near"]) == (1, 3000, 1)
    assert sorted(b["retailer_id"] for b in rig.push_queue.bodies) == [f"S{i:05d}" for i in range(3000, 6000)]
    assert rig.budget.window.call_times_ms == (epoch_ms(T0),)


class Killed(BaseException):
    """The process dying (out of memory, Lambda's deadline): no except, no finally of ours runs after it."""


def test_a_pusher_killed_after_recording_its_batch_is_settled_by_the_next_run_and_its_rows_not_sent_again() -> None:
    """Killed between recording the accepted batch and scheduling its check: its lease is never given back. SQS
    brings its records back; the next run granted calls finds the lapsed lease, schedules the recorded batch's
    check, and leaves those rows out: one call for them in all."""
    rig = Rig(4)
    real_send, real_release = rig.verify_queue.send, rig.budget.release

    def killed(*args: object, **kwargs: object) -> object:
        raise Killed

    rig.verify_queue.send = killed  # type: ignore[method-assign]
    rig.budget.release = lambda *args, **kwargs: None  # type: ignore[method-assign]  # never reached in a real kill
    with pytest.raises(Killed):
        rig.pusher.push(pushes(3), lease_seconds=60)
    assert len(rig.catalog.calls) == 1 and rig.verify_queue.sent == []
    [(key, record)] = rig.batches.records.items()
    rig.verify_queue.send, rig.budget.release = real_send, real_release  # type: ignore[method-assign]

    rig.now = T0 + timedelta(seconds=61)  # the lease lapsed; SQS redelivers the same records (and a new row)
    outcome = rig.pusher.push(pushes(4))
    assert (outcome.lapsed_batches_settled, outcome.in_flight) == (1, 3)
    assert [call.rows for call in rig.catalog.calls[1:]] == [
        [("S00003", {"quantity_to_sell_on_facebook": 3, "visibility": "published"})]
    ]
    assert rig.verify_queue.bodies[0] == {"handle": record.handle, "record": key, "attempt": 1}
    assert rig.budget.state.lapsed == ()  # settled: the next run does not look again
