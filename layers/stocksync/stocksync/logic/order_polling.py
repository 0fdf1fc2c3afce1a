"""One poll of a listed order source: read every page changed since the watermark, apply, enqueue, advance.

Why a watermark with an overlap, and why it moves only at the end: the platform's clocks and its eventual
consistency can surface an order with a ``last_updated`` a little older than orders already seen, so a strict
watermark loses orders. Each listing asks for orders updated after (watermark - overlap); the ledger makes the
re-read overlap harmless. The watermark is the newest ``last_updated`` the platform reported (its clock, not ours),
and it advances only once the whole listing was applied. Within a listing, the page cursor is saved after each page
is applied, so a poll cut short (throttling, the Lambda deadline) resumes exactly there and loses nothing. A saved
cursor the platform no longer accepts (cursors expire) restarts that listing from its first page, once.

Why a retry re-enqueues: a poll that dies after a page's ledger transactions and before their recompute enqueue
leaves rows the next poll finds unchanged, so it would enqueue nothing and the catalog would stay stale until the
bucket's sweep. Two things close that gap without a single extra request. (1) Every cursor save carries the changed
SKUs not enqueued yet (``pending_recompute``), and the next poll enqueues them, so the pages behind the saved cursor
owe nothing. (2) Every save records the saving poll's clock (``saved_at``), the same clock the ingest stamps on the
ledger rows it writes (``updated_at``): a row the next poll finds unchanged but written after that save (at it,
when the listing was cut mid-way, since the saving poll's rows behind its cursor are covered by (1)) was written by
a poll that died before saving, and its SKUs are enqueued again. A repeat enqueue is harmless: recompute pushes
nothing when nothing differs. An overlapping poll after a complete listing re-enqueues nothing, since a complete
listing enqueues everything before its last save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict

from stocksync.errors import SourceCursorRejectedError, SourceRemovedError, SourceThrottledError
from stocksync.logic.order_ingest import OrderIngest, Unfinished
from stocksync.models.base import Model

if TYPE_CHECKING:
    # Annotations only: at run time this would load the order models into every function that reads a poll cursor
    # from the control table, not only poll_orders (cold start).
    from stocksync.models.orders import OrderObservation

# Changed SKUs are enqueued once per this many distinct SKUs (and at the end of the poll), not per page: a SKU
# changed on several pages is recomputed once. Until then they ride along in each cursor save, so a crash loses none.
ENQUEUE_FLUSH_SKUS = 100


# The port the poller lists through (adapters: integrations/order_sources.py).
@dataclass
class SourcePage:
    """One page of sightings, the ones that could not be read (raw record, reason), and where to resume."""

    observations: list[OrderObservation]
    rejected: list[tuple[Any, str]] = field(default_factory=list)
    after: str | None = None
    has_next: bool = False
    latest_update: datetime | None = None  # the newest last_updated on the page (the platform's clock)


class PolledOrderSource(Protocol):
    """A source the poller lists: pages of orders changed since a time, resumable by cursor."""

    def pages(
        self, *, updated_after: datetime | None, after: str | None, observed_at: datetime
    ) -> Iterator[SourcePage]: ...


class PollCursor(Model):
    """A source's polling position, stored in the control table."""

    model_config = ConfigDict(frozen=True)

    watermark: datetime | None = None  # newest last_updated of the last complete listing
    in_progress: bool = False  # a listing was cut short; resume it
    listing_updated_after: datetime | None = None
    listing_after: str | None = None  # page cursor to resume from
    listing_latest: datetime | None = None
    listing_started_at: datetime | None = None  # our clock: when the listing in progress began
    completed_at: datetime | None = None  # our clock: when a listing last reached its last page
    not_before: datetime | None = None  # our clock: the platform asked us not to call again before this
    disabled_reason: str | None = None
    # Our clock: the ``now`` of the poll that reached this position (the ingest stamps its ledger rows with it).
    saved_at: datetime | None = None
    # SKUs the pages behind this position changed and no enqueue has carried yet: the next poll that calls the
    # source enqueues them (fewer than ENQUEUE_FLUSH_SKUS, since a save follows any flush the count calls for).
    pending_recompute: tuple[str, ...] = ()

    def stalled_since(self) -> datetime | None:
        """Since when orders have not been fully read: the last complete listing, else the first one's start."""
        return self.completed_at or self.listing_started_at

    def unfinished(self) -> Unfinished:
        """Which rows a poll resuming from this cursor finds unchanged but must enqueue again.

        Rows written after the save were written by a poll that died before its next save, its enqueue lost with
        it. A cut listing's save precedes the rows its poll writes on the next pages, at the same clock, so those
        count too; a complete listing enqueued everything before its save. With no save recorded (the first poll,
        or a cursor saved before ``saved_at`` existed) nothing says the rows were enqueued: all of them count.
        """
        saved_at = self.saved_at
        if saved_at is None:
            return lambda row: True
        if self.in_progress:
            return lambda row: row.updated_at is None or row.updated_at >= saved_at
        return lambda row: row.updated_at is None or row.updated_at > saved_at


class CursorStore(Protocol):
    def load(self, source: str) -> PollCursor: ...

    def save(self, source: str, cursor: PollCursor) -> None: ...

    def disable(self, source: str, reason: str) -> bool:
        """Mark the source disabled; True only for the call that disabled it (so the alarm fires once)."""
        ...


class PollSinks(Protocol):
    def enqueue_recompute(self, retailer_ids: Iterable[str]) -> None: ...

    def reject(self, raw: Any, reason: str) -> None: ...

    def source_removed(self, source: str, reason: str) -> None: ...


@dataclass
class PollReport:
    pages: int = 0
    sightings: int = 0
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    changed_skus: set[str] = field(default_factory=set)
    # SKUs enqueued for a poll that died before enqueueing them: carried by its last cursor save, or found unchanged
    # on a page it had written after that save.
    reenqueued_skus: set[str] = field(default_factory=set)
    completed: bool = False  # the listing reached its last page
    throttled_for: float | None = None  # seconds the source asked us to wait, when it did
    disabled: bool = False
    restarted_listing: str | None = None  # why a resumed listing started over from its first page
    # Seconds since a listing last completed (0 when this poll completed one): throttling that never lets up, a
    # restart loop or a deadline too short for the backlog all show here, while each poll looks successful.
    seconds_since_complete_listing: float = 0.0
    skipped_until: datetime | None = None  # the poll did not call the source: it asked us to wait until then


def _later(left: datetime | None, right: datetime | None) -> datetime | None:
    if left is None:
        return right
    if right is None:
        return left
    return max(left, right)


def poll_orders(
    source_name: str,
    source: PolledOrderSource,
    ingest: OrderIngest,
    cursors: CursorStore,
    sinks: PollSinks,
    *,
    overlap: timedelta,
    now: datetime,
    time_left: Callable[[], float] = lambda: float("inf"),
    reserve_seconds: float = 10.0,
) -> PollReport:
    report = PollReport()
    cursor = cursors.load(source_name)
    if cursor.disabled_reason:
        report.disabled = True
        return report
    if cursor.not_before is not None and now < cursor.not_before:
        # Calling before the announced time only extends the throttling (Meta counts those calls too).
        report.skipped_until = cursor.not_before
        report.throttled_for = (cursor.not_before - now).total_seconds()
        _report_stall(report, cursor, now)
        return report
    cursor = cursor.model_copy(update={"not_before": None})
    if cursor.in_progress:
        updated_after, after, latest = cursor.listing_updated_after, cursor.listing_after, cursor.listing_latest
    else:
        updated_after = cursor.watermark - overlap if cursor.watermark else None
        after, latest = None, None
        # A listing cut before its first page was saved keeps the start of the first attempt.
        cursor = cursor.model_copy(update={"listing_started_at": cursor.listing_started_at or now})
    listing = _Listing(
        source_name=source_name,
        source=source,
        ingest=ingest,
        cursors=cursors,
        sinks=sinks,
        report=report,
        cursor=cursor,
        updated_after=updated_after,
        latest=latest,
        now=now,
        unfinished=cursor.unfinished(),
        pending=set(cursor.pending_recompute),  # what the poll that saved the cursor had not enqueued yet
    )
    report.reenqueued_skus |= listing.pending
    try:
        try:
            finished = listing.read(after, time_left, reserve_seconds)
        except SourceCursorRejectedError as error:
            report.restarted_listing = str(error)
            finished = listing.read(None, time_left, reserve_seconds)
        if finished:
            # The listing reached its last page (or was empty): the watermark moves to the newest change seen.
            # Enqueue first: a saved complete listing owes no enqueue, which is what keeps the next poll's overlap
            # from enqueueing the same orders again.
            listing.flush()
            watermark = _later(cursor.watermark, listing.latest) or now
            cursors.save(source_name, PollCursor(watermark=watermark, completed_at=now, saved_at=now))
            report.completed = True
    except SourceThrottledError as error:
        report.throttled_for = error.retry_after_seconds
        # Keep the position (the last saved page, or the listing's start, with the clock of the poll that reached
        # it) and when the platform lets us back in; what it owed is enqueued now.
        listing.flush()
        wait = timedelta(seconds=max(error.retry_after_seconds, 0))
        position = (listing.saved or cursor).model_copy(update={"not_before": now + wait, "pending_recompute": ()})
        cursors.save(source_name, position)
    except SourceRemovedError as error:
        report.disabled = True
        if cursors.disable(source_name, str(error)):
            sinks.source_removed(source_name, str(error))
    finally:
        listing.flush()
    _report_stall(report, cursor, now)
    return report


def _report_stall(report: PollReport, cursor: PollCursor, now: datetime) -> None:
    stalled_since = cursor.stalled_since()
    if not report.completed and stalled_since is not None:
        report.seconds_since_complete_listing = (now - stalled_since).total_seconds()


@dataclass
class _Listing:
    """One listing's pages, read from a page cursor on; the changed SKUs it has not enqueued yet."""

    source_name: str
    source: PolledOrderSource
    ingest: OrderIngest
    cursors: CursorStore
    sinks: PollSinks
    report: PollReport
    cursor: PollCursor
    updated_after: datetime | None
    latest: datetime | None
    now: datetime
    unfinished: Unfinished  # the unchanged rows a poll that died before this one may not have enqueued
    pending: set[str] = field(default_factory=set)
    saved: PollCursor | None = None  # the last position saved by this listing

    def read(self, after: str | None, time_left: Callable[[], float], reserve_seconds: float) -> bool:
        """True when the last page was applied; False when the deadline stopped it after a saved page."""
        for page in self.source.pages(updated_after=self.updated_after, after=after, observed_at=self.now):
            self.pending |= _apply_page(page, self.ingest, self.sinks, self.report, self.unfinished)
            self.latest = _later(self.latest, page.latest_update)
            if not page.has_next:
                return True
            stopping = time_left() < reserve_seconds
            if stopping or len(self.pending) >= ENQUEUE_FLUSH_SKUS:
                self.flush()  # stopping: enqueue before the save, so the next poll has nothing to repeat
            progress = {
                "in_progress": True,
                "listing_updated_after": self.updated_after,
                "listing_after": page.after,
                "listing_latest": self.latest,
                "saved_at": self.now,
                "pending_recompute": tuple(sorted(self.pending)),
            }
            self.saved = self.cursor.model_copy(update=progress)
            self.cursors.save(self.source_name, self.saved)
            if stopping:
                return False  # the next scheduled poll resumes from the saved page cursor
        return True

    def flush(self) -> None:
        if self.pending:
            self.sinks.enqueue_recompute(self.pending)
            self.pending = set()


def _apply_page(
    page: SourcePage, ingest: OrderIngest, sinks: PollSinks, report: PollReport, unfinished: Unfinished
) -> set[str]:
    """Apply one page; the SKUs to enqueue: changed now, or changed by a poll that died before enqueueing them."""
    report.pages += 1
    report.sightings += len(page.observations)
    for raw, reason in page.rejected:
        sinks.reject(raw, reason)
    receipt = ingest.apply(page.observations, unfinished=unfinished)
    for observation, error in receipt.rejected:
        sinks.reject(observation.model_dump(mode="json"), str(error))
    report.rejected += len(page.rejected) + len(receipt.rejected)
    report.applied += receipt.applied
    report.unchanged += receipt.unchanged
    report.changed_skus |= receipt.changed_skus
    report.reenqueued_skus |= receipt.reenqueue_skus - receipt.changed_skus
    return receipt.skus_to_recompute
