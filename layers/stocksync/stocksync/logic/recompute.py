"""Deciding what to push: the target value of each SKU, compared with what the catalog shows now.

What the catalog shows is not the last value pushed. In the merchant deduction mode Meta decrements its copy on
every Facebook/Instagram order and restores it on buyer cancellations and restocking seller cancellations; the ledger
sums those moves per SKU in ``platform_units``, so the catalog shows::

    confirmed_value + (platform_units - confirmed_platform_units)

In the platform deduction mode Meta keeps its deductions apart from the value we provide, so the catalog's provided
value is the confirmed value itself.

A push is claimed by bumping ``published_version`` with a condition on the version read: of two concurrent
recomputes only one gets a version, so one version never carries two values; the other re-reads and decides again.
A value already pushed and not yet confirmed is not pushed again until the confirmation timeout has passed (a lost
push message, or a verification that never ends, is then retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from stocksync.errors import InvalidInputError, StockSyncError
from stocksync.logic.overselling import OverSellingReport, OverSold
from stocksync.logic.stock_formula import Allocation, PendingUnits, StockFigures, resolve_allocation, stock_figures
from stocksync.models.recompute import SweepRequest
from stocksync.models.settings import BucketSettings, DeductionMode
from stocksync.models.sku import PushMessage, SkuState, Visibility

MAX_CLAIM_ATTEMPTS = 3
# How many names of SKUs without a warehouse level one report keeps for its warning (the count is always exact).
MAX_NAMED_SKUS = 200


@dataclass(frozen=True, slots=True)
class CatalogValue:
    value: int
    visibility: Visibility


class PushReason(StrEnum):
    NEVER_CONFIRMED = "never confirmed"
    CATALOG_DIFFERS = "catalog differs"
    PENDING_DIFFERS = "pending push differs"
    UNCONFIRMED = "unconfirmed past the timeout"


def _with_platform_moves(value: int, state: SkuState, since_units: int, mode: DeductionMode) -> int:
    if mode is DeductionMode.MERCHANT:
        value += state.platform_units - since_units
    return max(0, value)  # the platform refuses orders at 0; its copy never goes below


def expected_catalog(state: SkuState, mode: DeductionMode) -> CatalogValue | None:
    """What the catalog shows now, from the last confirmed push; None when nothing was ever confirmed."""
    if state.confirmed_value is None or state.confirmed_version == 0:
        return None
    return CatalogValue(
        _with_platform_moves(state.confirmed_value, state, state.confirmed_platform_units, mode),
        state.confirmed_visibility or Visibility.PUBLISHED,
    )


def pending_push(state: SkuState, mode: DeductionMode) -> CatalogValue | None:
    """What the catalog will show once the pushed-but-unconfirmed version lands; None when none is pending."""
    if state.published_value is None or state.published_version <= state.confirmed_version:
        return None
    return CatalogValue(
        _with_platform_moves(state.published_value, state, state.published_platform_units, mode),
        state.published_visibility or Visibility.PUBLISHED,
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One SKU's formula result. ``target`` is None when there is nothing to publish (warehouse level unknown)."""

    retailer_id: str
    bucket: str
    figures: StockFigures | None
    target: CatalogValue | None


def evaluate(state: SkuState, bucket: str, settings: BucketSettings, mode: DeductionMode) -> Evaluation:
    """The value and visibility the catalog should show. Discontinued: 0 and staging, whatever the stock."""
    figures = None
    if state.warehouse_level is not None:
        allocation = resolve_allocation(
            Allocation(state.allocation_percent, state.allocation_fixed),
            Allocation(settings.allocation_percent, settings.allocation_fixed),
        )
        pending = PendingUnits(state.pending_processing, state.pending_created, state.acknowledged_unsynced)
        figures = stock_figures(state.warehouse_level, pending, allocation, threshold=settings.threshold, mode=mode)
    if state.discontinued:
        target: CatalogValue | None = CatalogValue(0, Visibility.STAGING)
    elif figures is not None:
        target = CatalogValue(figures.published, Visibility.PUBLISHED)
    else:
        target = None
    return Evaluation(state.retailer_id, bucket, figures, target)


def push_reason(
    state: SkuState, target: CatalogValue, *, mode: DeductionMode, now: datetime, confirmation_timeout: timedelta
) -> PushReason | None:
    """Why ``target`` must be pushed, or None when the catalog shows it (or will, once the pending push lands)."""
    pending = pending_push(state, mode)
    if pending is not None:
        if pending != target:
            return PushReason.PENDING_DIFFERS
        if state.published_at is None or now - state.published_at >= confirmation_timeout:
            return PushReason.UNCONFIRMED
        return None
    shows = expected_catalog(state, mode)
    if shows is None:
        return PushReason.NEVER_CONFIRMED
    return None if shows == target else PushReason.CATALOG_DIFFERS


# ------------------------------------------------------------------------------------------------- ports


@dataclass
class StateReads:
    """SKU records read, and the ones that could not be read as a SkuState (retailer id -> why)."""

    states: dict[str, SkuState] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


class SkuStore(Protocol):
    def read_states(self, retailer_ids: Iterable[str]) -> StateReads: ...

    def claim_push(self, push: PushMessage, *, expected_version: int, platform_units: int) -> bool:
        """Record ``push`` as published if the SKU's published_version is still ``expected_version``."""
        ...


class PushSender(Protocol):
    def send(self, pushes: Sequence[PushMessage]) -> list[tuple[PushMessage, str]]:
        """Enqueue the pushes; returns the ones that could not be sent, with why."""
        ...


class OverSellingPort(Protocol):
    def respond(self, cases: Sequence[OverSold]) -> OverSellingReport: ...


class ClaimConflictError(StockSyncError):
    """Concurrent recomputes kept winning the version of this SKU; retry later (the record is redelivered)."""


# ------------------------------------------------------------------------------------------------- service


@dataclass
class BucketTally:
    """Per-bucket figures of one run (the EMF metrics)."""

    evaluated: int = 0
    at_zero: int = 0
    over_sold: int = 0
    units_at_risk: int = 0
    pushes_enqueued: int = 0
    without_warehouse_level: int = 0


@dataclass
class RecomputeReport:
    buckets: dict[str, BucketTally] = field(default_factory=dict)
    unchanged: int = 0
    pushes_claimed: int = 0
    push_failures: list[tuple[str, str]] = field(default_factory=list)
    conflicts: int = 0
    without_warehouse_level: list[str] = field(default_factory=list)  # the first MAX_NAMED_SKUS names
    over_selling: OverSellingReport = field(default_factory=OverSellingReport)

    def tally(self, bucket: str) -> BucketTally:
        return self.buckets.setdefault(bucket, BucketTally())

    @property
    def pushes_enqueued(self) -> int:
        return sum(tally.pushes_enqueued for tally in self.buckets.values())


class StockRecompute:
    """Evaluates SKUs one by one (``add``), claims the pushes they need, and sends them in batches (``flush``).

    The queue path and the sweep share it; ``finish`` answers the over-selling found, once per invocation.
    """

    def __init__(
        self,
        store: SkuStore,
        pushes: PushSender,
        over_selling: OverSellingPort,
        *,
        buckets: Mapping[str, BucketSettings],
        default_bucket: str,
        mode: DeductionMode,
        confirmation_timeout: timedelta,
        now: datetime,
    ) -> None:
        self._store = store
        self._pushes = pushes
        self._over_selling = over_selling
        self._buckets = buckets
        self._default_bucket = default_bucket
        self._mode = mode
        self._timeout = confirmation_timeout
        self._now = now
        self._claimed: list[tuple[str, PushMessage]] = []
        self._over_sold: list[OverSold] = []
        self.report = RecomputeReport()

    def bucket_of(self, state: SkuState) -> tuple[str, BucketSettings]:
        name = state.bucket or self._default_bucket
        settings = self._buckets.get(name)
        if settings is None:
            raise InvalidInputError(
                "bucket", f"SKU {state.retailer_id} is in unknown bucket {name!r}; known: {sorted(self._buckets)}"
            )
        return name, settings

    def add(self, state: SkuState) -> Evaluation:
        """Evaluate one SKU; claim a push when the catalog needs one. Raises InvalidInputError for an unknown bucket,
        ClaimConflictError when concurrent recomputes kept taking the version."""
        for _attempt in range(MAX_CLAIM_ATTEMPTS):
            bucket, settings = self.bucket_of(state)
            evaluation = evaluate(state, bucket, settings, self._mode)
            if evaluation.target is None or self._claim_if_needed(state, bucket, evaluation.target):
                break
            self.report.conflicts += 1
            state = self._reread(state.retailer_id)
        else:
            raise ClaimConflictError(f"SKU {state.retailer_id}: {MAX_CLAIM_ATTEMPTS} concurrent version claims lost")
        self._tally(state, evaluation)
        return evaluation

    def _claim_if_needed(self, state: SkuState, bucket: str, target: CatalogValue) -> bool:
        """False only when a concurrent recompute took the version first."""
        reason = push_reason(state, target, mode=self._mode, now=self._now, confirmation_timeout=self._timeout)
        if reason is None:
            self.report.unchanged += 1
            return True
        push = PushMessage(
            retailer_id=state.retailer_id,
            value=target.value,
            version=state.published_version + 1,
            visibility=target.visibility,
            computed_at=self._now,
        )
        if not self._store.claim_push(
            push, expected_version=state.published_version, platform_units=state.platform_units
        ):
            return False
        self.report.pushes_claimed += 1
        self._claimed.append((bucket, push))
        return True

    def _reread(self, retailer_id: str) -> SkuState:
        reads = self._store.read_states([retailer_id])
        if retailer_id in reads.invalid:
            raise InvalidInputError("sku", f"SKU record {retailer_id}: {reads.invalid[retailer_id]}")
        if retailer_id not in reads.states:
            raise InvalidInputError("retailer_id", f"SKU {retailer_id} has no state record")
        return reads.states[retailer_id]

    def _tally(self, state: SkuState, evaluation: Evaluation) -> None:
        tally = self.report.tally(evaluation.bucket)
        tally.evaluated += 1
        if evaluation.target is None:
            tally.without_warehouse_level += 1
            if len(self.report.without_warehouse_level) < MAX_NAMED_SKUS:
                self.report.without_warehouse_level.append(state.retailer_id)
            return
        if evaluation.target.value == 0:
            tally.at_zero += 1
        figures = evaluation.figures
        if figures is not None and figures.over_sold:
            tally.over_sold += 1
            tally.units_at_risk += figures.shortfall
            pending = PendingUnits(state.pending_processing, state.pending_created, state.acknowledged_unsynced)
            self._over_sold.append(OverSold(state.retailer_id, evaluation.bucket, figures, pending))

    def flush(self) -> None:
        """Send the pushes claimed so far. A push that cannot be sent stays claimed but unconfirmed: the next
        recompute after the confirmation timeout sends it again."""
        if not self._claimed:
            return
        buckets = {push.retailer_id: bucket for bucket, push in self._claimed}
        failed = self._pushes.send([push for _, push in self._claimed])
        failed_ids = {push.retailer_id for push, _ in failed}
        for retailer_id, bucket in buckets.items():
            if retailer_id not in failed_ids:
                self.report.tally(bucket).pushes_enqueued += 1
        self.report.push_failures.extend((push.retailer_id, why) for push, why in failed)
        self._claimed.clear()

    def finish(self) -> RecomputeReport:
        """Flush the pushes, answer the over-selling found, and return the run's report."""
        self.flush()
        if self._over_sold:
            self.report.over_selling = self._over_selling.respond(self._over_sold)
            self._over_sold.clear()
        return self.report


# ------------------------------------------------------------------------------------------------- sweep


@dataclass
class BucketPage:
    """One page of a bucket's SKUs from the bucket index, in retailer id order."""

    states: list[SkuState]
    invalid: dict[str, str]  # retailer id -> why its record is not a valid SkuState
    last_retailer_id: str | None
    has_more: bool


class BucketPages(Protocol):
    def bucket_page(self, bucket: str, *, after: str | None, page_size: int) -> BucketPage: ...


class Rejects(Protocol):
    def reject(self, retailer_id: str, reason: str) -> None:
        """A SKU record the sweep cannot process: logged, dead-lettered with the reason."""
        ...


@dataclass
class SweepReport:
    bucket: str
    pages: int = 0
    skus: int = 0
    rejected: int = 0
    contended: int = 0
    finished: bool = False
    resume_after: str | None = None  # set when the sweep hands over before the end of the bucket


def sweep_bucket(
    request: SweepRequest,
    *,
    pages: BucketPages,
    recompute: StockRecompute,
    rejects: Rejects,
    time_left: Callable[[], float],
    page_size: int = 1000,
    reserve_seconds: float = 5.0,
) -> SweepReport:
    """Recompute every SKU of one bucket, page by page, until the bucket ends or the time runs short.

    At least one page is done per invocation (so a hand-over always makes progress). Before each further page the
    remaining time must cover twice the slowest page so far plus ``reserve_seconds``; otherwise the sweep stops
    after a whole page and reports where to resume.
    """
    report = SweepReport(bucket=request.bucket)
    after = request.after
    slowest = 0.0
    while True:
        left = time_left()
        if report.pages and left < reserve_seconds + 2 * slowest:
            report.resume_after = after
            return report
        page = pages.bucket_page(request.bucket, after=after, page_size=page_size)
        for retailer_id, reason in page.invalid.items():
            report.rejected += 1
            rejects.reject(retailer_id, reason)
        for state in page.states:
            try:
                recompute.add(state)
            except InvalidInputError as error:
                report.rejected += 1
                rejects.reject(state.retailer_id, str(error))
            except ClaimConflictError:
                report.contended += 1  # concurrent recomputes are deciding this SKU right now; they push it
        recompute.flush()
        report.pages += 1
        report.skus += len(page.states) + len(page.invalid)
        after = page.last_retailer_id or after
        slowest = max(slowest, left - time_left())
        if not page.has_more:
            report.finished = True
            return report
