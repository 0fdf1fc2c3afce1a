"""Reading the catalog back: what it shows, against what the product expects it to show (docs/catalog.md).

Two jobs share this code. The *read-back* reads the SKUs recompute found ambiguous (a platform move fell inside a
push's window), by retailer id. The *audit* pages through the whole catalog on a schedule, which also catches what
nobody in the product did: an edit in Commerce Manager, another feed, a lost update.

For each product read, in a window [request sent, answer received]:

- a SKU the product does not know is reported (never created);
- a value that does not parse (a missing or negative stock field, an unknown visibility) is reported and skipped;
- a SKU with a push in flight, or whose anchor ends after the read began, is skipped: the read may predate the
  push's overwrite, so it says nothing certain (the push anchors the SKU when it lands);
- otherwise the value read is compared with what the product expects the read to find. A difference is drift
  (counted per bucket, logged with both values); an ambiguous expectation is settled by the read. In both cases the
  value read becomes the SKU's anchor (a conditional write that re-checks the two rules above) and the SKU is
  recomputed, which pushes it if the catalog differs from its target. A match costs no write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from stocksync.logic.batch_budget import CallGrant
from stocksync.logic.catalog_model import CatalogValue, anchor_of, belief_at
from stocksync.models.graph import CatalogProduct, ProductPage
from stocksync.models.graph_errors import GraphThrottledError
from stocksync.models.settings import DeductionMode
from stocksync.models.sku import SkuState, Visibility
from stocksync.observability import logger

# How many SKUs one report names in its log lines (the counts are always exact).
MAX_NAMED = 50
Clock = Callable[[], datetime]


class AnchorStore(Protocol):
    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]: ...

    def record_catalog_read(
        self,
        retailer_id: str,
        *,
        value: int,
        visibility: Visibility,
        read_from: datetime,
        read_to: datetime,
        published_version: int,
    ) -> bool: ...

    def found_in_catalog(self, retailer_id: str) -> bool:
        """Unmark a SKU marked not in the catalog (its item was listed); True when this call unmarked it."""
        ...


class Recomputes(Protocol):
    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Drift:
    retailer_id: str
    bucket: str
    expected: CatalogValue | None  # None: nothing was ever seen to land
    shows: CatalogValue
    ambiguous: bool


@dataclass
class ReadReport:
    """What one run of reads found. ``drift`` lists SKUs whose catalog differed from the expectation."""

    read: int = 0
    matched: int = 0
    drift: list[Drift] = field(default_factory=list)
    settled: int = 0  # ambiguous (or never anchored) SKUs that the read anchored
    anchored: int = 0
    in_flight: int = 0  # skipped: a push in flight or an anchor newer than the read
    unknown: list[str] = field(default_factory=list)
    unknown_count: int = 0
    unparsable: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # asked for by retailer id, not in the catalog
    # SKUs marked not in the catalog (a push refused as an unknown retailer id) whose item the read listed: unmarked.
    back_in_catalog: list[str] = field(default_factory=list)
    recomputes: set[str] = field(default_factory=set)

    def drift_by_bucket(self) -> Counter[str]:
        return Counter(case.bucket for case in self.drift if case.expected is not None and not case.ambiguous)

    def summary(self) -> dict[str, object]:
        return {
            "read": self.read,
            "matched": self.matched,
            "drifted": sum(self.drift_by_bucket().values()),
            "settled": self.settled,
            "anchored": self.anchored,
            "in_flight": self.in_flight,
            "unknown": self.unknown_count,
            "back_in_catalog": len(self.back_in_catalog),
            "unparsable": len(self.unparsable),
            "missing": len(self.missing),
            "recomputed": len(self.recomputes),
            "differences": [
                {
                    "retailer_id": case.retailer_id,
                    "bucket": case.bucket,
                    "expected": None if case.expected is None else case.expected.value,
                    "catalog": case.shows.value,
                    "catalog_visibility": case.shows.visibility.value,
                    "ambiguous": case.ambiguous,
                }
                for case in self.drift[:MAX_NAMED]
            ],
        }


def shown_value(product: CatalogProduct) -> CatalogValue | str:
    """What the product shows, or why it cannot be read as a stock value."""
    quantity = product.quantity_to_sell_on_facebook
    if quantity is None:
        return "quantity_to_sell_on_facebook: missing"
    if quantity < 0:
        return f"quantity_to_sell_on_facebook: {quantity} is not a stock level (unmanaged stock?)"
    try:
        visibility = Visibility(product.visibility or Visibility.PUBLISHED.value)
    except ValueError:
        return f"visibility: {product.visibility!r} is not one of {[v.value for v in Visibility]}"
    return CatalogValue(quantity, visibility)


class CatalogCheck:
    """Compares what was read with what the product expects, one page at a time; ``report`` holds the totals."""

    def __init__(
        self,
        *,
        skus: AnchorStore,
        recomputes: Recomputes,
        mode: DeductionMode,
        default_bucket: str,
        dry_run: bool = False,
    ) -> None:
        self._skus = skus
        self._recomputes = recomputes
        self._mode = mode
        self._default_bucket = default_bucket
        self._dry_run = dry_run
        self.report = ReadReport()

    def check(
        self,
        products: Sequence[CatalogProduct],
        *,
        read_from: datetime,
        read_to: datetime,
        asked_for: Sequence[str] = (),
    ) -> None:
        """Settle one page read between ``read_from`` and ``read_to``. ``asked_for``: the retailer ids the read
        named (a read-back); any of them not in the page is missing from the catalog."""
        listed = {product.retailer_id for product in products}
        states = self._skus.get_states(listed | set(asked_for))  # after the read: every move seen so far counts
        recompute: list[str] = []
        for product in products:
            self.report.read += 1
            state = states.get(product.retailer_id)
            if state is None:
                self._unknown(product.retailer_id)
                continue
            marked = state.not_in_catalog_version is not None and not self._dry_run
            # The catalog holds the item now (the merchant added it): pushes resume at the next recompute.
            if marked and self._skus.found_in_catalog(state.retailer_id):
                self.report.back_in_catalog.append(state.retailer_id)
                recompute.append(state.retailer_id)
            shows = shown_value(product)
            if isinstance(shows, str):
                self._unparsable(product.retailer_id, shows)
                continue
            if self._settle(state, shows, read_from, read_to):
                recompute.append(state.retailer_id)
        for retailer_id in asked_for:
            if retailer_id not in listed and retailer_id in states:
                # Not in the catalog: it shows nothing. Recompute pushes it (the platform then says why it cannot).
                self.report.missing.append(retailer_id)
                if self._settle(states[retailer_id], CatalogValue(0, Visibility.STAGING), read_from, read_to):
                    recompute.append(retailer_id)
        if recompute and not self._dry_run:
            self._recomputes.enqueue(recompute, reason="catalog read")
        self.report.recomputes.update(recompute)

    def _settle(self, state: SkuState, shows: CatalogValue, read_from: datetime, read_to: datetime) -> bool:
        """True when the SKU must be recomputed (the read differed or settled an ambiguity)."""
        anchor = anchor_of(state)
        pending = state.published_version > state.confirmed_version
        if pending or (anchor is not None and anchor.shown_to > read_from):
            self.report.in_flight += 1
            return False
        belief = belief_at(anchor, state.platform_moves, self._mode, read=(read_from, read_to)) if anchor else None
        expected = belief.shows if belief is not None else None
        ambiguous = belief is not None and belief.ambiguous
        if expected == shows and not ambiguous:
            self.report.matched += 1
            return False
        case = Drift(state.retailer_id, state.bucket or self._default_bucket, expected, shows, ambiguous)
        self.report.drift.append(case)
        if expected is not None and not ambiguous:
            logger.warning(
                "the catalog differs from what the product expects",
                extra={
                    "retailer_id": case.retailer_id,
                    "bucket": case.bucket,
                    "expected": {"value": expected.value, "visibility": expected.visibility.value},
                    "catalog": {"value": shows.value, "visibility": shows.visibility.value},
                },
            )
        else:
            self.report.settled += 1
        if self._dry_run:
            return True
        if self._skus.record_catalog_read(
            state.retailer_id,
            value=shows.value,
            visibility=shows.visibility,
            read_from=read_from,
            read_to=read_to,
            published_version=state.published_version,
        ):
            self.report.anchored += 1
            return True
        self.report.in_flight += 1  # a push was claimed since the state was read: it anchors the SKU
        return False

    def _unknown(self, retailer_id: str) -> None:
        self.report.unknown_count += 1
        if len(self.report.unknown) < MAX_NAMED:
            self.report.unknown.append(retailer_id)

    def _unparsable(self, retailer_id: str, why: str) -> None:
        self.report.unparsable.append((retailer_id, why))
        logger.warning("catalog value skipped", extra={"retailer_id": retailer_id, "reason": why})


# ------------------------------------------------------------------------------------------------- the two jobs


class CatalogListing(Protocol):
    """``GraphApiClient.list_products``: the products edge, page by page, optionally filtered by retailer id."""

    def list_products(
        self,
        catalog_id: str,
        fields: str = ...,
        *,
        limit: int | None = None,
        retailer_ids: Sequence[str] | None = None,
        after: str | None = None,
    ) -> Iterator[ProductPage]: ...


class ReadBudget(Protocol):
    """The catalog-read call budget (its own, apart from the items_batch one): ``CallBudget`` of logic/pushing.py."""

    def acquire(self, rows: int, *, preferred_size: int, now: datetime) -> CallGrant: ...

    def block_until(self, until: datetime) -> None: ...


# Retailer ids per filtered read: one page of the products edge holds them all.
READ_BACK_CHUNK = 50
AUDIT_PAGE_SIZE = 500


@dataclass
class ReadBackOutcome:
    """``waiting``: ids not read (no call left in the budget, or throttled) and when to ask again."""

    waiting: list[str] = field(default_factory=list)
    retry_after_seconds: float = 0.0
    calls: int = 0


def _timed_pages(pages: Iterator[ProductPage], now: Clock) -> Iterator[tuple[ProductPage, datetime, datetime]]:
    """Each page with the window it was read in: the request went out after the first instant, the answer came
    back before the second, so whatever the page shows was true at some instant in between."""
    while True:
        read_from = now()
        try:
            page = next(pages)
        except StopIteration:
            return
        yield page, read_from, now()


def _note_rejected(page: ProductPage, check: CatalogCheck) -> None:
    """Records the platform sent that do not parse (a control character in an id, a quantity DynamoDB cannot hold):
    reported and skipped, the rest of the page is applied."""
    for rejected in page.rejected:
        raw = rejected.raw if isinstance(rejected.raw, dict) else {}
        check.report.unparsable.append((str(raw.get("retailer_id", "?"))[:100], str(rejected.error)))
        logger.warning("catalog record skipped", extra={"record": raw.get("id"), "reason": str(rejected.error)})


def read_back(
    retailer_ids: Sequence[str],
    *,
    catalog_id: str,
    listing: CatalogListing,
    budget: ReadBudget,
    check: CatalogCheck,
    now: Clock,
) -> ReadBackOutcome:
    """Read these SKUs back, in filtered reads of up to READ_BACK_CHUNK ids, one budget call each."""
    outcome = ReadBackOutcome()
    wanted = sorted(set(retailer_ids))
    for start in range(0, len(wanted), READ_BACK_CHUNK):
        chunk = wanted[start : start + READ_BACK_CHUNK]
        granted = budget.acquire(1, preferred_size=1, now=now())
        if not granted.calls:
            outcome.waiting = wanted[start:]
            outcome.retry_after_seconds = granted.retry_after_seconds
            return outcome
        try:
            for page, read_from, read_to in _timed_pages(
                listing.list_products(catalog_id, retailer_ids=chunk, limit=len(chunk)), now
            ):
                outcome.calls += 1
                _note_rejected(page, check)
                check.check(page.products, read_from=read_from, read_to=read_to, asked_for=chunk)
        except GraphThrottledError as error:
            budget.block_until(now() + timedelta(seconds=error.retry_after_seconds))
            outcome.waiting = wanted[start:]
            outcome.retry_after_seconds = error.retry_after_seconds
            return outcome
    return outcome


@dataclass
class AuditOutcome:
    pages: int = 0
    finished: bool = False
    resume_after: str | None = None  # the listing's cursor to resume from on the next run
    stopped_by: str | None = None  # "budget", "throttled" or "time"


def audit_catalog(
    *,
    catalog_id: str,
    listing: CatalogListing,
    budget: ReadBudget,
    check: CatalogCheck,
    after: str | None,
    time_left: Callable[[], float],
    now: Clock,
    page_size: int = AUDIT_PAGE_SIZE,
    reserve_seconds: float = 10.0,
) -> AuditOutcome:
    """Page through the catalog from ``after`` until it ends, the read budget is spent, the platform throttles, or
    the time runs short; the outcome says where to resume (the caller stores it for the next scheduled run)."""
    outcome = AuditOutcome(resume_after=after)
    slowest = 0.0
    pages = listing.list_products(catalog_id, limit=page_size, after=after)
    while True:
        left = time_left()
        if outcome.pages and left < reserve_seconds + 2 * slowest:
            outcome.stopped_by = "time"
            return outcome
        granted = budget.acquire(1, preferred_size=1, now=now())
        if not granted.calls:
            outcome.stopped_by = "budget"
            return outcome
        read_from = now()
        try:
            page = next(pages)
        except StopIteration:
            outcome.finished, outcome.resume_after = True, None
            return outcome
        except GraphThrottledError as error:
            budget.block_until(now() + timedelta(seconds=error.retry_after_seconds))
            outcome.stopped_by = "throttled"
            return outcome
        read_to = now()
        outcome.pages += 1
        _note_rejected(page, check)
        check.check(page.products, read_from=read_from, read_to=read_to)
        slowest = max(slowest, left - time_left())
        if not page.has_next:
            outcome.finished, outcome.resume_after = True, None
            return outcome
        outcome.resume_after = page.after
