"""Deciding what to push: catalog expectation, pending pushes, the confirmation timeout, version claims, sweeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stocksync.errors import InvalidInputError
from stocksync.logic.overselling import OverSellingReport, OverSold
from stocksync.logic.recompute import (
    BucketPage,
    CatalogValue,
    ClaimConflictError,
    Decision,
    PushReason,
    StateReads,
    StockRecompute,
    evaluate,
    push_reason,
    sweep_bucket,
)
from stocksync.models.recompute import SweepRequest
from stocksync.models.settings import BucketSettings, DeductionMode
from stocksync.models.sku import PlatformMove, PushMessage, SkuState, Visibility

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=15)
MERCHANT, PLATFORM = DeductionMode.MERCHANT, DeductionMode.PLATFORM
PUBLISHED, STAGING = Visibility.PUBLISHED, Visibility.STAGING
BUCKETS = {
    "fast": BucketSettings(threshold=3, min_units_per_hour=2),
    "slow": BucketSettings(threshold=0, allocation_percent=50),
}


def sku(retailer_id: str = "SKU-1", **fields: Any) -> SkuState:
    return SkuState(retailer_id=retailer_id, **{"bucket": "fast", "warehouse_level": 10, **fields})


SENT = NOW - timedelta(hours=1)
CONFIRMED_AT = SENT + timedelta(minutes=1)


def confirmed(value: int, *, version: int = 1, units: int = 0, **fields: Any) -> dict[str, Any]:
    """Fields of a SKU whose version ``version`` with ``value`` was sent an hour ago and seen landed a minute later
    (the catalog anchor), when platform_units was ``units``."""
    return {
        "published_value": value,
        "published_visibility": PUBLISHED,
        "published_version": version,
        "published_at": SENT,
        "published_platform_units": units,
        "confirmed_value": value,
        "confirmed_visibility": PUBLISHED,
        "confirmed_version": version,
        "catalog_value": value,
        "catalog_visibility": PUBLISHED,
        "catalog_from": SENT,
        "catalog_to": CONFIRMED_AT,
        "platform_units": units,
        **fields,
    }


def order_at(moment: datetime, units: int = 1) -> PlatformMove:
    """An order of ``units`` placed on Facebook/Instagram at ``moment`` (its placement time is known exactly)."""
    return PlatformMove(units=-units, not_before=moment, not_after=moment)


def reason(
    state: SkuState, target: CatalogValue, mode: DeductionMode = MERCHANT, **options: Any
) -> PushReason | Decision | None:
    decided = push_reason(state, target, mode=mode, now=NOW, confirmation_timeout=TIMEOUT, **options)
    return None if decided is Decision.NOTHING else decided


# ------------------------------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    ("state", "bucket", "expected"),
    [
        (sku(pending_processing=2, pending_created=1), "fast", CatalogValue(7, PUBLISHED)),
        (sku(pending_processing=7), "fast", CatalogValue(0, PUBLISHED)),  # 3 <= threshold 3
        (sku(bucket="slow", warehouse_level=9), "slow", CatalogValue(4, PUBLISHED)),  # bucket allocation 50 %
        (sku(bucket="slow", allocation_fixed=8), "slow", CatalogValue(8, PUBLISHED)),  # the SKU's own cap wins
        (sku(discontinued=True), "fast", CatalogValue(0, STAGING)),
        (sku(discontinued=True, warehouse_level=None), "fast", CatalogValue(0, STAGING)),
        (sku(warehouse_level=None), "fast", None),  # I unknown: publish nothing
    ],
)
def test_evaluate(state: SkuState, bucket: str, expected: CatalogValue | None) -> None:
    assert evaluate(state, bucket, BUCKETS[bucket], MERCHANT).target == expected


def test_evaluate_in_platform_mode_subtracts_acknowledged_only() -> None:
    state = sku(pending_processing=2, pending_created=2, acknowledged_unsynced=1)
    assert evaluate(state, "fast", BUCKETS["fast"], PLATFORM).target == CatalogValue(9, PUBLISHED)


# ----------------------------------------------------------------------------------------------- what the catalog shows


@pytest.mark.parametrize(
    ("fields", "target", "expected"),
    [
        ({}, CatalogValue(5, PUBLISHED), PushReason.NEVER_CONFIRMED),
        (confirmed(5), CatalogValue(5, PUBLISHED), None),
        (confirmed(5), CatalogValue(4, PUBLISHED), PushReason.CATALOG_DIFFERS),
        (confirmed(0), CatalogValue(0, STAGING), PushReason.CATALOG_DIFFERS),  # visibility alone differs
        # an FB/IG order of 2 units placed after the push landed: the platform already shows 3, as does the target
        (
            confirmed(5, platform_moves=(order_at(CONFIRMED_AT + timedelta(seconds=1), 2),)),
            CatalogValue(3, PUBLISHED),
            None,
        ),
        # the same order placed before the push was sent: the push erased the platform's decrement, it shows 5
        (
            confirmed(5, platform_moves=(order_at(SENT - timedelta(seconds=1), 2),)),
            CatalogValue(3, PUBLISHED),
            PushReason.CATALOG_DIFFERS,
        ),
        # placed while the batch was processing: nobody knows whether it was erased, so the catalog is read back
        (
            confirmed(5, platform_moves=(order_at(SENT + timedelta(seconds=30), 2),)),
            CatalogValue(3, PUBLISHED),
            Decision.READ_BACK,
        ),
        # a web-store order of 2 units: only we know it
        (confirmed(5), CatalogValue(3, PUBLISHED), PushReason.CATALOG_DIFFERS),
        # a record from before the catalog anchor existed: confirmed, but what it shows is unknown
        (
            {k: v for k, v in confirmed(5).items() if not k.startswith("catalog_")},
            CatalogValue(5, PUBLISHED),
            PushReason.NEVER_CONFIRMED,
        ),
    ],
)
def test_push_only_when_the_catalog_differs(
    fields: dict[str, Any], target: CatalogValue, expected: PushReason | None
) -> None:
    assert reason(sku(**fields), target) == expected


def test_with_reads_off_an_ambiguous_sku_is_pushed_with_its_absolute_value() -> None:
    state = sku(**confirmed(5, platform_moves=(order_at(SENT + timedelta(seconds=30), 2),)))
    assert reason(state, CatalogValue(3, PUBLISHED), reads_enabled=False) is PushReason.AMBIGUOUS


def test_in_the_platform_mode_the_platforms_moves_do_not_change_the_provided_value() -> None:
    state = sku(**confirmed(8, platform_moves=(order_at(CONFIRMED_AT + timedelta(minutes=1), 3),)))
    assert reason(state, CatalogValue(8, PUBLISHED), PLATFORM) is None
    assert reason(state, CatalogValue(8, PUBLISHED)) is PushReason.CATALOG_DIFFERS  # merchant mode: it shows 5


def in_flight(value: int, *, age: timedelta, units: int = 0, **fields: Any) -> SkuState:
    """Version 2 with ``value`` pushed ``age`` ago at platform_units ``units``; version 1 (value 9) confirmed."""
    return sku(
        **{
            **confirmed(9),
            "published_value": value,
            "published_version": 2,
            "published_at": NOW - age,
            "published_platform_units": units,
            "platform_units": units,
            **fields,
        }
    )


def test_a_pending_push_of_the_same_value_is_not_repeated_within_the_timeout() -> None:
    assert reason(in_flight(5, age=timedelta(minutes=3)), CatalogValue(5, PUBLISHED)) is None
    # ... nor when the platform has since sold 1 unit on FB/IG: once landed, the catalog decrements from there.
    assert reason(in_flight(5, age=timedelta(minutes=3), platform_units=-1), CatalogValue(4, PUBLISHED)) is None


def test_a_pending_push_unconfirmed_past_the_timeout_is_pushed_again() -> None:
    assert reason(in_flight(5, age=TIMEOUT), CatalogValue(5, PUBLISHED)) is PushReason.UNCONFIRMED


def test_a_redelivery_sends_the_pending_push_again_at_once() -> None:
    # The first try claimed version 2 and may have died before sending it: no wait for the timeout.
    assert reason(in_flight(5, age=timedelta(minutes=1)), CatalogValue(5, PUBLISHED), redelivered=True) is (
        PushReason.RESEND
    )
    # If the target moved meanwhile, the redelivery claims the target instead.
    assert reason(in_flight(5, age=timedelta(minutes=1)), CatalogValue(4, PUBLISHED), redelivered=True) is (
        PushReason.PENDING_DIFFERS
    )


def test_a_pending_push_of_another_value_is_superseded_even_when_the_catalog_shows_the_target() -> None:
    # Version 1 (9) is in the catalog and the target went back to 9, but version 2 (5) would land after it.
    assert reason(in_flight(5, age=timedelta(minutes=1)), CatalogValue(9, PUBLISHED)) is PushReason.PENDING_DIFFERS


# ------------------------------------------------------------------------------------------------- the service


class FakeStore:
    """SkuStore in memory with DynamoDB's conditional version claim."""

    def __init__(self, states: Iterable[SkuState], invalid: dict[str, str] | None = None) -> None:
        self.states = {state.retailer_id: state for state in states}
        self.invalid = dict(invalid or {})
        self.before_claim: Callable[[], None] | None = None
        self.claims = 0

    def read_states(self, retailer_ids: Iterable[str]) -> StateReads:
        ids = set(retailer_ids)
        return StateReads(
            states={rid: state for rid, state in self.states.items() if rid in ids},
            invalid={rid: why for rid, why in self.invalid.items() if rid in ids},
        )

    def claim_push(self, push: PushMessage, *, expected_version: int, platform_units: int) -> bool:
        if self.before_claim is not None:
            self.before_claim()
        self.claims += 1
        state = self.states[push.retailer_id]
        if state.published_version != expected_version:
            return False
        self.states[push.retailer_id] = state.model_copy(
            update={
                "published_value": push.value,
                "published_visibility": push.visibility,
                "published_version": push.version,
                "published_at": push.computed_at,
                "published_platform_units": platform_units,
            }
        )
        return True

    def bucket_page(self, bucket: str, *, after: str | None, page_size: int) -> BucketPage:
        ids = sorted(
            [rid for rid, state in self.states.items() if state.bucket == bucket]
            + [rid for rid in self.invalid if rid.startswith(bucket)]
        )
        ids = [rid for rid in ids if after is None or rid > after]
        chosen = ids[:page_size]
        return BucketPage(
            states=[self.states[rid] for rid in chosen if rid in self.states],
            invalid={rid: self.invalid[rid] for rid in chosen if rid in self.invalid},
            last_retailer_id=chosen[-1] if chosen else None,
            has_more=len(ids) > page_size,
        )


class FakePushes:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.sent: list[PushMessage] = []
        self.calls = 0
        self.fail = fail or set()

    def send(self, pushes: Sequence[PushMessage]) -> list[tuple[PushMessage, str]]:
        self.calls += 1
        self.sent.extend(push for push in pushes if push.retailer_id not in self.fail)
        return [(push, "Throttled: try later") for push in pushes if push.retailer_id in self.fail]


class FakeOverSelling:
    def __init__(self) -> None:
        self.cases: list[OverSold] = []
        self.calls = 0

    def respond(self, cases: Sequence[OverSold]) -> OverSellingReport:
        self.calls += 1
        self.cases.extend(cases)
        return OverSellingReport(skus=len(cases), units_at_risk=sum(case.figures.shortfall for case in cases))


def service(
    store: FakeStore, pushes: FakePushes | None = None, over: FakeOverSelling | None = None, **kwargs: Any
) -> StockRecompute:
    return StockRecompute(
        store,
        pushes or FakePushes(),
        over or FakeOverSelling(),
        buckets=BUCKETS,
        default_bucket="slow",
        mode=kwargs.pop("mode", MERCHANT),
        confirmation_timeout=TIMEOUT,
        now=NOW,
        **kwargs,
    )


def test_a_changed_sku_is_claimed_at_the_next_version_and_sent_once() -> None:
    store, pushes = FakeStore([sku(**confirmed(10, version=4), pending_processing=2)]), FakePushes()
    recompute = service(store, pushes)
    recompute.add(store.states["SKU-1"])
    report = recompute.finish()
    assert pushes.sent == [PushMessage(retailer_id="SKU-1", value=8, version=5, visibility=PUBLISHED, computed_at=NOW)]
    assert store.states["SKU-1"].published_version == 5 and store.states["SKU-1"].published_value == 8
    assert report.buckets["fast"].pushes_enqueued == 1 and report.pushes_claimed == 1

    # The same SKU again (a redelivery): the push is pending and within the timeout; nothing is sent.
    again = service(store, pushes)
    again.add(store.states["SKU-1"])
    assert again.finish().unchanged == 1 and len(pushes.sent) == 1


def test_an_unchanged_sku_is_not_claimed() -> None:
    store, pushes = FakeStore([sku(**confirmed(10))]), FakePushes()
    recompute = service(store, pushes)
    recompute.add(store.states["SKU-1"])
    report = recompute.finish()
    assert report.unchanged == 1 and store.claims == 0 and pushes.calls == 0


def test_a_concurrent_claim_makes_the_loser_reread_and_decide_again() -> None:
    store, pushes = FakeStore([sku(**confirmed(10), pending_processing=2)]), FakePushes()
    stale = store.states["SKU-1"]

    def concurrent_recompute() -> None:
        # Another recompute, having read newer inputs (one more unit pending), takes version 2 first.
        store.before_claim = None
        newer = store.states["SKU-1"].model_copy(update={"pending_processing": 3})
        store.states["SKU-1"] = newer
        assert store.claim_push(
            PushMessage(retailer_id="SKU-1", value=7, version=2, visibility=PUBLISHED, computed_at=NOW),
            expected_version=1,
            platform_units=0,
        )

    store.before_claim = concurrent_recompute
    recompute = service(store, pushes)
    recompute.add(stale)
    report = recompute.finish()
    # The loser re-read version 2 (value 7, pending, just pushed) and found the same target: no second push.
    assert report.conflicts == 1 and report.pushes_claimed == 0 and pushes.sent == []
    assert store.states["SKU-1"].published_version == 2


def test_claims_lost_again_and_again_end_in_a_retryable_error() -> None:
    store = FakeStore([sku(**confirmed(10), pending_processing=2)])

    def bump() -> None:
        state = store.states["SKU-1"]
        store.states["SKU-1"] = state.model_copy(
            update={"published_version": state.published_version + 1, "published_value": 99}
        )

    store.before_claim = bump
    with pytest.raises(ClaimConflictError):
        service(store).add(store.states["SKU-1"])


def test_an_unknown_bucket_is_an_input_error_naming_the_bucket() -> None:
    store = FakeStore([sku(bucket="turbo")])
    with pytest.raises(InvalidInputError, match="unknown bucket 'turbo'") as raised:
        service(store).add(store.states["SKU-1"])
    assert raised.value.field == "bucket"


def test_a_sku_without_a_bucket_uses_the_default_bucket() -> None:
    store = FakeStore([sku(bucket=None, warehouse_level=9)])
    assert service(store).add(store.states["SKU-1"]).target == CatalogValue(4, PUBLISHED)  # slow: 50 %


def test_skus_without_a_warehouse_level_publish_nothing_and_are_named() -> None:
    store, pushes = FakeStore([sku("A", warehouse_level=None), sku("B")]), FakePushes()
    recompute = service(store, pushes)
    for state in store.states.values():
        recompute.add(state)
    report = recompute.finish()
    assert report.without_warehouse_level == ["A"]
    assert report.buckets["fast"].without_warehouse_level == 1
    assert [push.retailer_id for push in pushes.sent] == ["B"]


def test_discontinued_skus_are_pushed_as_staging_zero() -> None:
    store, pushes = FakeStore([sku(**confirmed(10), discontinued=True)]), FakePushes()
    recompute = service(store, pushes)
    recompute.add(store.states["SKU-1"])
    report = recompute.finish()
    assert [(push.value, push.visibility) for push in pushes.sent] == [(0, STAGING)]
    assert report.buckets["fast"].at_zero == 1


def test_over_sold_skus_are_tallied_and_answered_once_per_run() -> None:
    store = FakeStore([sku("A", pending_processing=8, pending_created=4), sku("B", pending_created=13), sku("C")])
    over = FakeOverSelling()
    recompute = service(store, over=over)
    for state in store.states.values():
        recompute.add(state)
    report = recompute.finish()
    assert over.calls == 1 and sorted(case.retailer_id for case in over.cases) == ["A", "B"]
    tally = report.buckets["fast"]
    assert (tally.over_sold, tally.units_at_risk, tally.at_zero, tally.evaluated) == (2, 5, 2, 3)
    assert report.over_selling.units_at_risk == 5


def test_push_send_failures_are_reported_and_not_counted_as_enqueued() -> None:
    store = FakeStore([sku("A"), sku("B")])
    recompute = service(store, FakePushes(fail={"B"}))
    for state in store.states.values():
        recompute.add(state)
    report = recompute.finish()
    assert report.push_failures == [("B", "Throttled: try later")]
    assert report.buckets["fast"].pushes_enqueued == 1
    # B stays claimed: once the confirmation timeout has passed, the next recompute pushes it again.
    later = StockRecompute(
        store,
        FakePushes(),
        FakeOverSelling(),
        buckets=BUCKETS,
        default_bucket="slow",
        mode=MERCHANT,
        confirmation_timeout=TIMEOUT,
        now=NOW + TIMEOUT,
    )
    assert later.add(store.states["B"]) and later.finish().pushes_claimed == 1


# ------------------------------------------------------------------------------------------------- sweep


class Clock:
    """time_left for a sweep: every page costs ``per_page`` seconds."""

    def __init__(self, budget: float, per_page: float) -> None:
        self.left = budget
        self.per_page = per_page

    def __call__(self) -> float:
        return self.left


class CountingPages:
    def __init__(self, store: FakeStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.calls: list[str | None] = []

    def bucket_page(self, bucket: str, *, after: str | None, page_size: int) -> BucketPage:
        self.calls.append(after)
        self.clock.left -= self.clock.per_page
        return self.store.bucket_page(bucket, after=after, page_size=page_size)


class Rejects:
    def __init__(self) -> None:
        self.rejected: list[tuple[str, str]] = []

    def reject(self, retailer_id: str, reason: str) -> None:
        self.rejected.append((retailer_id, reason))


def fast_skus(count: int, **fields: Any) -> list[SkuState]:
    return [sku(f"fast-{index:03d}", **confirmed(10), **fields) for index in range(count)]


def test_a_sweep_pushes_only_changed_skus() -> None:
    states = fast_skus(25)
    states[3] = states[3].model_copy(update={"pending_created": 2})
    states[17] = states[17].model_copy(update={"warehouse_level": 30})
    store, pushes, clock = FakeStore(states), FakePushes(), Clock(60, 1)
    report = sweep_bucket(
        SweepRequest(bucket="fast"),
        pages=CountingPages(store, clock),
        recompute=(recompute := service(store, pushes)),
        rejects=Rejects(),
        time_left=clock,
        page_size=10,
    )
    assert report.finished and report.pages == 3 and report.skus == 25 and report.resume_after is None
    assert sorted((push.retailer_id, push.value) for push in pushes.sent) == [("fast-003", 8), ("fast-017", 30)]
    assert pushes.calls == 2  # flushed per page: the two pages that had changes
    assert recompute.finish().unchanged == 23


def test_a_sweep_hands_over_when_the_time_left_is_short_and_resumes_where_it_stopped() -> None:
    store = FakeStore(fast_skus(50, pending_created=1))
    clock = Clock(budget=25, per_page=4)  # reserve 5 s + 2 x 4 s per page: stops with under 13 s left
    pages = CountingPages(store, clock)
    first = sweep_bucket(
        SweepRequest(bucket="fast"),
        pages=pages,
        recompute=service(store),
        rejects=Rejects(),
        time_left=clock,
        page_size=10,
    )
    assert not first.finished and first.pages == 4 and first.resume_after == "fast-039"
    clock.left = 25
    second = sweep_bucket(
        SweepRequest(bucket="fast", after=first.resume_after, part=1),
        pages=pages,
        recompute=service(store),
        rejects=Rejects(),
        time_left=clock,
        page_size=10,
    )
    assert second.finished and second.skus == 10
    assert pages.calls == [None, "fast-009", "fast-019", "fast-029", "fast-039"]
    assert all(state.published_version == 2 for state in store.states.values())


def test_a_sweep_always_does_one_page_even_when_time_is_short() -> None:
    store, clock = FakeStore(fast_skus(15)), Clock(budget=1, per_page=0.5)
    report = sweep_bucket(
        SweepRequest(bucket="fast"),
        pages=CountingPages(store, clock),
        recompute=service(store),
        rejects=Rejects(),
        time_left=clock,
        page_size=10,
    )
    assert report.pages == 1 and report.resume_after == "fast-009"


def test_a_sweep_rejects_invalid_records_and_goes_on() -> None:
    store = FakeStore(fast_skus(3, pending_created=1), invalid={"fast-001x": "allocation_percent: <= 100"})
    rejects, pushes, clock = Rejects(), FakePushes(), Clock(60, 1)
    report = sweep_bucket(
        SweepRequest(bucket="fast"),
        pages=CountingPages(store, clock),
        recompute=service(store, pushes),
        rejects=rejects,
        time_left=clock,
    )
    assert rejects.rejected == [("fast-001x", "allocation_percent: <= 100")]
    assert report.rejected == 1 and report.skus == 4 and len(pushes.sent) == 3
