"""Deciding what to push: the target value of each SKU, compared with what the catalog shows now.

What the catalog shows is not the last value pushed: the platform moves its own copy as buyers order and cancel,
and each push overwrites those moves at an instant the product cannot see. logic/catalog_model.py works out what
the catalog shows from the last anchor (a push seen landing, or a read) and the platform's moves with their
instants. When a move may or may not have been erased (it fell inside the anchor's window), the SKU is ambiguous:
it is read back from the catalog (``CatalogReads``), or, when reads are off, pushed again with its absolute value.

A push is claimed by bumping ``published_version`` with a condition on the version read: of two concurrent
recomputes only one gets a version, so one version never carries two values; the other re-reads and decides again.
A value already pushed and not yet confirmed is not pushed again until the confirmation timeout has passed (a lost
push message, or a verification that never ends, is then retried), except on a redelivery of the message that
claimed it: the first try may have claimed the version and died before sending it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from stocksync.errors import InvalidInputError, StockSyncError
from stocksync.logic.catalog_model import CatalogValue, catalog_belief, prunable_moves
from stocksync.logic.overselling import OverSellingReport, OverSold
from stocksync.logic.push_priority import is_urgent
from stocksync.logic.stock_formula import Allocation, PendingUnits, StockFigures, resolve_allocation, stock_figures
from stocksync.models.recompute import SweepRequest
from stocksync.models.settings import BucketSettings, DeductionMode
from stocksync.models.sku import PushMessage, SkuState, Visibility

MAX_CLAIM_ATTEMPTS = 3
# Moves behind the catalog anchor never matter again; they are dropped once this many piled up (one write).
PRUNE_MOVES_AT = 8
# How many names of SKUs without a warehouse level one report keeps for its warning (the count is always exact).
MAX_NAMED_SKUS = 200


class PushReason(StrEnum):
    NEVER_CONFIRMED = "never confirmed"
    CATALOG_DIFFERS = "catalog differs"
    PENDING_DIFFERS = "pending push differs"
    UNCONFIRMED = "unconfirmed past the timeout"
    AMBIGUOUS = "catalog ambiguous"  # reads are off: push the absolute value instead of guessing
    RESEND = "claimed, maybe never sent"  # a redelivery of the message whose first try claimed the version


class Decision(StrEnum):
    """What a SKU needs besides (or instead of) a push."""

    NOTHING = "nothing"
    READ_BACK = "read back"  # the catalog is ambiguous: read it before deciding


def pending_push(state: SkuState, mode: DeductionMode) -> CatalogValue | None:
    """What the catalog will show once the pushed-but-unconfirmed version lands, if the platform's moves seen since
    the claim come after it; None when none is pending. Whether they do is settled once the push is confirmed
    (verify_batch asks for a recompute then), so this only decides whether to wait for that."""
    if state.published_value is None or state.published_version <= state.confirmed_version:
        return None
    value = state.published_value
    if mode is DeductionMode.MERCHANT:
        value += state.platform_units - state.published_platform_units
    return CatalogValue(max(0, value), state.published_visibility or Visibility.PUBLISHED)


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


def shown_before_push(state: SkuState, mode: DeductionMode) -> CatalogValue | None:
    """What the catalog shows, or will show once the pending push lands, before the push being decided; None when
    that is unknown (never confirmed, or ambiguous). Decides a push's urgency (logic/push_priority.py)."""
    pending = pending_push(state, mode)
    if pending is not None:
        return pending
    belief = catalog_belief(state, mode)
    return belief.shows if belief is not None and not belief.ambiguous else None


def push_reason(
    state: SkuState,
    target: CatalogValue,
    *,
    mode: DeductionMode,
    now: datetime,
    confirmation_timeout: timedelta,
    reads_enabled: bool = True,
    redelivered: bool = False,
) -> PushReason | Decision:
    """Why ``target`` must be pushed; ``Decision.READ_BACK`` when the catalog must be read first; otherwise
    ``Decision.NOTHING`` (the catalog shows the target, or will once the pending push lands)."""
    pending = pending_push(state, mode)
    if pending is not None:
        if redelivered:
            # The first try may have claimed this version and died before sending it: send it now, or the target.
            same = (state.published_value, state.published_visibility) == (target.value, target.visibility)
            return PushReason.RESEND if same else PushReason.PENDING_DIFFERS
        if pending != target:
            return PushReason.PENDING_DIFFERS
        if state.published_at is None or now - state.published_at >= confirmation_timeout:
            return PushReason.UNCONFIRMED
        return Decision.NOTHING
    belief = catalog_belief(state, mode)
    if belief is None:
        return PushReason.NEVER_CONFIRMED
    if belief.ambiguous:
        return Decision.READ_BACK if reads_enabled else PushReason.AMBIGUOUS
    return Decision.NOTHING if belief.shows == target else PushReason.CATALOG_DIFFERS


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

    def prune_moves(self, state: SkuState, indexes: Sequence[int]) -> bool:
        """Drop these platform moves (behind the catalog anchor) if the list is still the one in ``state``."""
        ...


class PushSender(Protocol):
    def send(self, pushes: Sequence[PushMessage]) -> list[tuple[PushMessage, str]]:
        """Enqueue the pushes; returns the ones that could not be sent, with why."""
        ...


class CatalogReads(Protocol):
    def request(self, retailer_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Ask for these SKUs to be read back from the catalog; returns the ones that could not be asked, with why."""
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
    reads_requested: int = 0
    without_warehouse_level: int = 0


@dataclass
class RecomputeReport:
    buckets: dict[str, BucketTally] = field(default_factory=dict)
    unchanged: int = 0
    pushes_claimed: int = 0
    push_failures: list[tuple[str, str]] = field(default_factory=list)
    read_failures: list[tuple[str, str]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # pushes claimed, per PushReason
    moves_pruned: int = 0
    conflicts: int = 0
    # SKUs the catalog refused as unknown retailer ids, left unpushed (``not_in_catalog_version``): a summary field,
    # not a warning per run, since their dead letter reported each one once already.
    not_in_catalog: int = 0
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
        reads: CatalogReads | None = None,
    ) -> None:
        """``reads`` None: catalog reads are off, and an ambiguous SKU is pushed again with its absolute value."""
        self._store = store
        self._pushes = pushes
        self._over_selling = over_selling
        self._reads = reads
        self._to_read: list[tuple[str, str]] = []
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

    def add(self, state: SkuState, *, redelivered: bool = False) -> Evaluation:
        """Evaluate one SKU; claim a push when the catalog needs one, or ask for a read when it is ambiguous.

        ``redelivered``: the message that asked for this SKU was delivered before (a first try may have claimed a
        version and died before sending it). Raises InvalidInputError for an unknown bucket, ClaimConflictError
        when concurrent recomputes kept taking the version."""
        for _attempt in range(MAX_CLAIM_ATTEMPTS):
            bucket, settings = self.bucket_of(state)
            evaluation = evaluate(state, bucket, settings, self._mode)
            if evaluation.target is None or self._claim_if_needed(state, bucket, evaluation.target, redelivered):
                break
            self.report.conflicts += 1
            state = self._reread(state.retailer_id)
        else:
            raise ClaimConflictError(f"SKU {state.retailer_id}: {MAX_CLAIM_ATTEMPTS} concurrent version claims lost")
        behind = prunable_moves(state)
        if len(behind) >= PRUNE_MOVES_AT and self._store.prune_moves(state, behind):
            self.report.moves_pruned += len(behind)
        self._tally(state, evaluation)
        return evaluation

    def _claim_if_needed(self, state: SkuState, bucket: str, target: CatalogValue, redelivered: bool) -> bool:
        """False only when a concurrent recompute took the version first."""
        if state.not_in_catalog_version is not None:
            # The catalog has no item for this retailer id: a push would be refused and dead-lettered again, every
            # sweep. It waits until a catalog read finds the item (logic/catalog_reads.py unmarks it then).
            self.report.not_in_catalog += 1
            return True
        reason = push_reason(
            state,
            target,
            mode=self._mode,
            now=self._now,
            confirmation_timeout=self._timeout,
            reads_enabled=self._reads is not None,
            redelivered=redelivered,
        )
        if reason is Decision.NOTHING:
            self.report.unchanged += 1
            return True
        if reason is Decision.READ_BACK:
            self._to_read.append((bucket, state.retailer_id))
            return True
        self.report.reasons[reason.value] = self.report.reasons.get(reason.value, 0) + 1
        if reason is PushReason.RESEND:
            assert state.published_value is not None and state.published_at is not None
            self._claimed.append(
                (
                    bucket,
                    PushMessage(
                        retailer_id=state.retailer_id,
                        value=state.published_value,
                        version=state.published_version,
                        visibility=state.published_visibility or Visibility.PUBLISHED,
                        computed_at=state.published_at,
                    ),
                )
            )
            return True
        push = PushMessage(
            retailer_id=state.retailer_id,
            value=target.value,
            version=state.published_version + 1,
            visibility=target.visibility,
            computed_at=self._now,
            urgent=is_urgent(shown_before_push(state, self._mode), target),
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
        """Send the pushes claimed and the reads asked for so far. A push that cannot be sent stays claimed but
        unconfirmed: a redelivery of its message, or the next recompute after the confirmation timeout, sends it."""
        self._flush_reads()
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

    def _flush_reads(self) -> None:
        if not self._to_read or self._reads is None:
            return
        failed = dict(self._reads.request([retailer_id for _, retailer_id in self._to_read]))
        for bucket, retailer_id in self._to_read:
            if retailer_id not in failed:
                self.report.tally(bucket).reads_requested += 1
        self.report.read_failures.extend(failed.items())
        self._to_read.clear()

    @property
    def unsent(self) -> set[str]:
        """SKUs whose push or read could not be sent in this run (their messages must be delivered again)."""
        return {retailer_id for retailer_id, _ in self.report.push_failures + self.report.read_failures}

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
