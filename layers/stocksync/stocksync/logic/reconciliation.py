"""Reconciliation: recount P, C and K from the ledger's open rows, and repair any SKU counter that disagrees.

Counters only ever move in the same transaction as the ledger row they come from, so with no fault they always
equal what the open rows imply and a run repairs nothing. A run exists to prove that, and to put right what a
bug, a manual edit or a restore broke.

Which SKUs are checked: every SKU named by an open ledger row, and every SKU whose stored counters are not zero
(found by a filtered scan of the SKU "state" records: the product's only scan, run once a day), so a counter left
non-zero by an order that is no longer open is found too.

Why the repair is race-free: the ledger is read while orders keep arriving, so a SKU's counters are read before
and after the ledger (a SKU whose counters moved in between is skipped: its ledger reading may be half old, half
new), and a repair is a conditional write that applies only if the counters and their last-change time are still
the ones read. One gap remains: the open-orders index is eventually consistent, and a write can change counters and
change them back while the ledger is read. Both leave a trace in ``counters_updated_at``, which every ledger
transaction sets, so a SKU whose counters changed within ``settle`` (longer than any invocation of a writer, plus
the index's lag) before the run began is not repaired either; the next run checks it again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ConfigDict, StrictBool

from stocksync.logic.ledger import LedgerPart, contributions
from stocksync.models.base import Model
from stocksync.observability import logger

# The SKU state's counter fields (models/sku.py), and the field of a ledger contribution each one sums.
COUNTER_FIELDS = {
    "pending_processing": "processing",  # P
    "pending_created": "created",  # C
    "acknowledged_unsynced": "acknowledged",  # K
}
# A writer runs at most 15 minutes (the Lambda limit); the open-orders index lags by seconds. Both fit in this.
DEFAULT_SETTLE = timedelta(minutes=20)

Counts = dict[str, int]  # counter field -> units


def zero_counts() -> Counts:
    return dict.fromkeys(COUNTER_FIELDS, 0)


@dataclass(frozen=True)
class CounterReading:
    """One SKU's counters as stored, and when a ledger transaction last changed them."""

    retailer_id: str
    pending_processing: int = 0
    pending_created: int = 0
    acknowledged_unsynced: int = 0
    updated_at: datetime | None = None

    @property
    def counts(self) -> Counts:
        return {name: getattr(self, name) for name in COUNTER_FIELDS}


@dataclass(frozen=True)
class Repair:
    """A counter that disagreed with the ledger: its value and the value the ledger implies."""

    retailer_id: str
    counter: str
    was: int
    now: int


@dataclass
class ReconcileReport:
    dry_run: bool
    open_rows: int = 0
    skus_checked: int = 0
    repairs: list[Repair] = field(default_factory=list)  # made, or in a dry run, that would be made
    skipped_moved: list[str] = field(default_factory=list)  # disagreed, but changed while the run read them
    skipped_recent: list[str] = field(default_factory=list)  # disagreed, but changed within the settle time

    @property
    def repaired_skus(self) -> list[str]:
        return sorted({repair.retailer_id for repair in self.repairs})

    def summary(self) -> dict[str, Any]:
        """The outcome as plain data, for a log line, a handler's return value or ``--json`` output."""
        return {
            "dry_run": self.dry_run,
            "open_rows": self.open_rows,
            "skus_checked": self.skus_checked,
            "repairs": [vars(repair) for repair in self.repairs],
            "skipped_moved": self.skipped_moved,
            "skipped_recent": self.skipped_recent,
        }


class ReconcileRequest(Model):
    """What starts a run: the schedule's input or an operator's manual invoke. Other fields (the scheduler's
    scheduled time and execution id) are only there for the log of the event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dry_run: StrictBool = False


class CounterStore(Protocol):
    def nonzero(self) -> Iterator[CounterReading]:
        """Every SKU whose stored counters are not all zero."""
        ...

    def read(self, retailer_ids: Collection[str]) -> dict[str, CounterReading]:
        """Strongly consistent readings; a SKU without a state record is left out."""
        ...

    def repair(self, observed: CounterReading, counts: Mapping[str, int], *, now: datetime) -> bool:
        """Set the counters to ``counts`` only if they still are ``observed``; True when the write applied."""
        ...


class OpenLedger(Protocol):
    def open_rows(self) -> Iterable[LedgerPart]: ...


class RecomputeRequests(Protocol):
    def enqueue(self, retailer_ids: Iterable[str], *, reason: str) -> None: ...


def implied_counts(rows: Iterable[LedgerPart]) -> tuple[dict[str, Counts], int]:
    """Per SKU, the counters the rows hold up; and how many rows there were."""
    implied: dict[str, Counts] = {}
    count = 0
    for row in rows:
        count += 1
        for retailer_id, delta in contributions(row).items():
            counts = implied.setdefault(retailer_id, zero_counts())
            for name, part in COUNTER_FIELDS.items():
                counts[name] += getattr(delta, part)
    return implied, count


def disagreements(implied: Mapping[str, int], observed: CounterReading) -> list[Repair]:
    """The counters of ``observed`` that differ from ``implied``, as the repairs that would fix them."""
    stored = observed.counts
    return [
        Repair(observed.retailer_id, name, stored[name], implied[name])
        for name in COUNTER_FIELDS
        if stored[name] != implied[name]
    ]


def _moved(before: CounterReading | None, after: CounterReading) -> bool:
    if before is None:  # the scan did not list it: its counters were all zero then
        return any(after.counts.values())
    return before != after


def reconcile(
    store: CounterStore,
    ledger: OpenLedger,
    recompute: RecomputeRequests,
    *,
    now: datetime,
    dry_run: bool = False,
    settle: timedelta = DEFAULT_SETTLE,
) -> ReconcileReport:
    """Compare every SKU's counters with the ledger and repair (unless ``dry_run``) those that disagree."""
    report = ReconcileReport(dry_run=dry_run)
    before = {reading.retailer_id: reading for reading in store.nonzero()}
    implied, report.open_rows = implied_counts(ledger.open_rows())
    candidates = sorted(set(before) | set(implied))
    after = store.read(candidates)
    report.skus_checked = len(candidates)
    for retailer_id in candidates:
        observed = after.get(retailer_id, CounterReading(retailer_id))
        wanted = implied.get(retailer_id, zero_counts())
        repairs = disagreements(wanted, observed)
        if not repairs:
            continue
        if _moved(before.get(retailer_id), observed):
            report.skipped_moved.append(retailer_id)
        elif observed.updated_at is not None and observed.updated_at > now - settle:
            report.skipped_recent.append(retailer_id)
        elif dry_run:
            report.repairs.extend(repairs)
            _log(repairs, "counter disagrees with the ledger (dry run: not repaired)")
        elif store.repair(observed, wanted, now=now):
            report.repairs.extend(repairs)
            _log(repairs, "counter repaired")
        else:
            report.skipped_moved.append(retailer_id)
    if report.repairs and not dry_run:
        recompute.enqueue(report.repaired_skus, reason="reconciliation")
    return report


def _log(repairs: Iterable[Repair], message: str) -> None:
    for repair in repairs:
        logger.warning(
            message,
            extra={"retailer_id": repair.retailer_id, "counter": repair.counter, "was": repair.was, "now": repair.now},
        )
