"""Verifier with a status-check budget and processing-time observations, against in-memory ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from stocksync.logic.batch_budget import CallGrant, CallWindow, epoch_ms, grant
from stocksync.logic.verification import Verifier, VerifyConfig
from stocksync.logic.verify_timing import Observation, remember
from stocksync.models.graph import BatchRequestStatus, BatchStatus
from stocksync.models.graph_errors import GraphThrottledError
from stocksync.models.push import BatchEntry, BatchRecord, BatchState, VerifyMessage
from stocksync.models.sku import SkuState, Visibility
from tests.fakes.push import MemoryBatches, MemoryDeadLetters, MemoryQueue, MemorySkus, ScriptedStatus

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
ACCEPTED = T0 + timedelta(seconds=30)


@dataclass
class WindowBudget:
    """The status-check budget: the real sliding window, in memory."""

    calls_per_hour: int
    window: CallWindow = field(default_factory=CallWindow)
    blocks: list[datetime] = field(default_factory=list)

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant:
        granted = grant(
            self.window, rows, calls_per_hour=self.calls_per_hour, preferred_size=preferred_size, now_ms=epoch_ms(now)
        )
        self.window = self.window.with_calls(granted.calls, epoch_ms(now))
        return granted

    def block_until(self, until: datetime) -> None:
        self.blocks.append(until)
        self.window = self.window.blocked_until(epoch_ms(until))


@dataclass
class MemoryTimes:
    kept: tuple[Observation, ...] = ()
    broken: bool = False

    def observations(self) -> Sequence[Observation]:
        return self.kept

    def record(self, observation: Observation) -> bool:
        if self.broken:
            raise RuntimeError("DynamoDB is having a bad day")
        kept = remember(self.kept, observation)
        if kept is None:
            return False
        self.kept = kept
        return True


class Rig:
    def __init__(self, *, calls_per_hour: int = 720, observed: Sequence[Observation] = ()) -> None:
        entries = [BatchEntry(retailer_id="A", value=3, version=1, visibility=Visibility.PUBLISHED, computed_at=T0)]
        self.now = ACCEPTED
        self.skus = MemorySkus([SkuState(retailer_id="A", published_version=1)])
        self.batches = MemoryBatches()
        self.batches.record(BatchRecord(handle="h1", accepted_at=ACCEPTED, entries=entries))
        self.status = ScriptedStatus()
        self.verify_queue = MemoryQueue()
        self.push_queue = MemoryQueue()
        self.budget = WindowBudget(calls_per_hour)
        self.times = MemoryTimes(tuple(observed))
        self.verifier = Verifier(
            VerifyConfig(catalog_id="1001", recheck_delay_seconds=60, max_checks=5),
            batches=self.batches,
            status=self.status,
            states=self.skus,
            confirmations=self.skus,
            push_queue=self.push_queue,
            verify_queue=self.verify_queue,
            dead_letters=MemoryDeadLetters(),
            recompute_queue=MemoryQueue(),
            status_budget=self.budget,
            processing_times=self.times,
            now=lambda: self.now,
        )

    def answer(self, *statuses: str) -> None:
        self.status.answers["h1"] = [BatchRequestStatus(handle="h1", status=BatchStatus(s)) for s in statuses]

    def at(self, seconds: float) -> Rig:
        self.now = ACCEPTED + timedelta(seconds=seconds)
        return self


def test_a_check_with_no_status_call_left_waits_without_asking_or_using_up_a_check() -> None:
    rig = Rig(calls_per_hour=1)
    rig.budget.acquire(1, preferred_size=1, now=ACCEPTED)  # another invocation spent the hour's call 10 s ago
    rig.answer("finished")
    outcome = rig.at(10).verifier.verify(VerifyMessage(handle="h1", attempt=3, seen_processing_at=ACCEPTED))
    assert rig.status.asked == []
    assert rig.verify_queue.sent == [
        ({"handle": "h1", "attempt": 3, "seen_processing_at": "2026-11-23T09:00:30Z"}, 900)
    ]
    assert (outcome.status_checks_deferred, outcome.rechecks, outcome.next_check_seconds) == (1, 0, 900)
    assert rig.batches.records["h1"].state is BatchState.PENDING


def test_a_throttled_status_call_blocks_the_budget_until_metas_time() -> None:
    rig = Rig()
    rig.status.answers["h1"] = [
        GraphThrottledError("(#80009) too many", retry_after_seconds=120, usage=None, code=80009)
    ]
    rig.at(20).verifier.verify(VerifyMessage(handle="h1", attempt=2))
    assert rig.budget.blocks == [ACCEPTED + timedelta(seconds=140)]
    assert rig.verify_queue.sent == [({"handle": "h1", "attempt": 2}, 120)]
    # The next invocation, before the pause is over, does not ask.
    rig.answer("finished")
    outcome = rig.at(80).verifier.verify(VerifyMessage(handle="h1", attempt=2))
    assert outcome.status_checks_deferred == 1 and rig.status.asked == [("h1", True)]
    assert rig.verify_queue.sent[-1] == ({"handle": "h1", "attempt": 2}, 60)


@pytest.mark.parametrize("status", ["finished", "error", "canceled"])
def test_every_batch_that_ends_adds_the_interval_its_checks_bracketed(status: str) -> None:
    rig = Rig()
    rig.answer(status)
    outcome = rig.at(25).verifier.verify(
        VerifyMessage(handle="h1", attempt=2, seen_processing_at=ACCEPTED + timedelta(seconds=12))
    )
    assert [(o.handle, o.lower_ms, o.upper_ms) for o in rig.times.kept] == [("h1", 12_000, 25_000)]
    assert (outcome.processing_lower_seconds, outcome.processing_upper_seconds) == (12, 25)


def test_a_batch_still_processing_records_nothing_and_is_rechecked_at_the_estimate() -> None:
    rig = Rig(observed=[Observation(f"o{i}", 20_000, 40_000, 0) for i in range(4)])
    rig.answer("started")
    outcome = rig.at(20).verifier.verify(VerifyMessage(handle="h1"))
    assert rig.times.kept == tuple(Observation(f"o{i}", 20_000, 40_000, 0) for i in range(4))
    # The 0.75 quantile of (20, 40] is 35 s after acceptance: 15 s on.
    assert rig.verify_queue.sent == [({"handle": "h1", "attempt": 2, "seen_processing_at": "2026-11-23T09:00:50Z"}, 15)]
    assert (outcome.recheck_basis, outcome.estimated_processing_seconds) == ("estimate", 35)


def test_a_failure_to_record_an_observation_does_not_undo_the_settlement() -> None:
    rig = Rig()
    rig.times.broken = True
    rig.answer("finished")
    outcome = rig.at(30).verifier.verify(VerifyMessage(handle="h1"))
    assert outcome.confirmed == 1
    assert rig.batches.records["h1"].state is BatchState.DONE
