"""Applying order sightings to the ledger and counters, exactly once, whatever the delivery does.

The service reads the ledger rows a batch of sightings touches (batched reads), merges each sighting, and hands
each changed row to the ledger port, which writes it together with its counter deltas in one conditional
transaction. A concurrent writer makes the condition fail; the row is then re-read and the sighting merged again,
so concurrent pollers and redeliveries never double-count. That holds for orders that grow too (logic/ledger.py):
two edits racing, each adding a SKU, both land (the loser's lines merged into the row the winner wrote), and the re-read
row is checked again, since the winner's SKUs may leave no room in one part for the loser's.

A retry must also finish what the failed try did not: the parts of a split order it did not write (the check
against the whole order, logic/ledger.py), and the recompute enqueue of rows it did write. A retry finds those rows
unchanged, so only the caller can tell that their enqueue may be missing (an SQS redelivery, a poll re-reading a
page after a crash): it passes ``unfinished``, and the receipt lists those rows' SKUs to enqueue again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from stocksync.errors import InvalidInputError, StockSyncError
from stocksync.logic.backoff import Backoff
from stocksync.logic.ledger import (
    CounterDelta,
    LedgerPart,
    deltas,
    empty_part,
    lines_digest,
    merge,
    part_count,
    split_lines,
    validate_against_known_parts,
)
from stocksync.models.orders import EVENTS_ORDER_PREFIX, OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.observability import logger, metrics

PartKey = tuple[str, int]
# Says of a stored row a sighting left unchanged whether the change last written to it may still lack its recompute
# enqueue (the caller knows when its previous try stopped; the row knows when it was written, ``updated_at``).
Unfinished = Callable[[LedgerPart], bool]

# Closed ledger rows expire this long after their last write (dal/ledger_table.py); rows still counted never do.
# What that means for a sighting of an order the ledger does not hold (``_beyond_retention``, docs/design.md,
# "Bounds at the edges"): its row may have expired only if the order was closed more than this long ago.
LEDGER_RETENTION = timedelta(days=90)
# Tries of one row's conditional transaction before the sighting's record is left to SQS's redelivery (and, on its
# last receive, to the reasoned dead-letter queue: integrations/sqs_batch.py). Between tries, a jittered exponential
# wait (logic/backoff.py): at most 1.6 s in all at the defaults, so writers racing on a hot SKU spread out.
MAX_CONFLICT_RETRIES = 8


class StaleLedgerError(StockSyncError):
    """The row changed since it was read (another writer won); re-read and merge again."""


class CounterUnderflowError(StockSyncError):
    """A counter would go negative: counters and ledger disagree; reconciliation must repair them."""

    def __init__(self, order_id: str, retailer_ids: Sequence[str]) -> None:
        super().__init__(f"order {order_id}: counters of {sorted(retailer_ids)} would go negative")
        self.order_id = order_id
        self.retailer_ids = list(retailer_ids)


class LedgerPort(Protocol):
    """What the ingest needs from storage (DynamoDB in production, a dict in unit tests)."""

    def read_parts(self, keys: Sequence[PartKey]) -> dict[PartKey, LedgerPart]: ...

    def write_part(
        self, before: LedgerPart, after: LedgerPart, changes: Mapping[str, CounterDelta], sold_at: datetime
    ) -> None:
        """Write ``after`` if the stored revision is still ``before.revision``, with the counter changes, atomically.

        Raises StaleLedgerError when the revision moved, CounterUnderflowError when a counter would go negative.
        """
        ...


@dataclass
class IngestReceipt:
    """What one batch of sightings did: which SKUs changed, which sightings were rejected and why."""

    applied: int = 0  # sightings that changed at least one ledger row
    unchanged: int = 0  # sightings the ledger already knew (repeats, stale states)
    # Sightings of closed orders placed before the ledger retention and not in the ledger: nothing left to count, and
    # their row may have expired (a second count would add their sale to velocity again). Reported, never silent.
    ignored: int = 0
    changed_skus: set[str] = field(default_factory=set)
    counter_changes: dict[str, CounterDelta] = field(default_factory=dict)
    rejected: list[tuple[OrderObservation, StockSyncError]] = field(default_factory=list)
    # SKUs of rows left unchanged whose last change may not have been enqueued (``unfinished``): enqueue them again.
    reenqueue_skus: set[str] = field(default_factory=set)

    @property
    def skus_to_recompute(self) -> set[str]:
        """Every SKU to enqueue: changed now, or changed by a try that may have stopped before its enqueue."""
        return self.changed_skus | self.reenqueue_skus

    def add_changes(self, changes: Mapping[str, CounterDelta]) -> None:
        for retailer_id, delta in changes.items():
            self.changed_skus.add(retailer_id)
            self.counter_changes[retailer_id] = self.counter_changes.get(retailer_id, CounterDelta()) + delta


def _other_key(observation: OrderObservation) -> str | None:
    """The one other key an order of this sighting may be stored under (``_keyed`` says when it is), or None.

    An ``events`` order is keyed ``events:<id>`` since order ids are namespaced by source; rows written before
    that (and a sync notice's stub written first) carry the bare id. A warehouse notice names an order by the id
    its source gave it, so a bare id may be an ``events`` order's.
    """
    order_id = observation.order_id
    if observation.source is OrderSource.EVENTS and order_id.startswith(EVENTS_ORDER_PREFIX):
        return order_id.removeprefix(EVENTS_ORDER_PREFIX)
    if observation.source is OrderSource.WAREHOUSE and not order_id.startswith(EVENTS_ORDER_PREFIX):
        return f"{EVENTS_ORDER_PREFIX}{order_id}"
    return None


def _keyed(observation: OrderObservation, stored: Mapping[PartKey, LedgerPart]) -> OrderObservation:
    """The sighting under the key its order is stored at (docs/connectors.md, "Order ids").

    - An ``events`` sighting (``events:<id>``) with no row under that key takes the bare id's row when that row is
      an ``events`` order's (written before ids were namespaced) or a sync notice's stub (the warehouse named the
      order first): the order keeps its one row, counted once. A Meta order's row under the bare id is another
      order, and is never merged into.
    - A warehouse notice naming a bare id with no row under it names the ``events`` order of that id when one is
      stored; where both exist, the bare id is the Meta order's, and the notice names ``events:<id>`` for the other.
    """
    other = _other_key(observation)
    if other is None or (observation.order_id, 0) in stored:
        return observation
    row = stored.get((other, 0))
    if row is None:
        return observation
    if observation.source is OrderSource.EVENTS and row.source not in (OrderSource.EVENTS, OrderSource.WAREHOUSE):
        return observation
    return observation.model_copy(update={"order_id": other})


def _report_beyond_retention(observation: OrderObservation) -> None:
    """One log line and one metric per ignored sighting (``OrderIngest._beyond_retention``): never silent."""
    logger.warning(
        "closed order placed before the ledger retention and not in the ledger: nothing to count, not counted",
        extra={
            "order_id": observation.order_id,
            "placed_at": observation.placed_at.isoformat() if observation.placed_at else None,
            "retention_days": LEDGER_RETENTION.days,
        },
    )
    metrics.add_metric(name="OrdersBeyondRetention", unit="Count", value=1)


class OrderIngest:
    """Merges sightings into the ledger through a ``LedgerPort``."""

    def __init__(self, ledger: LedgerPort, *, now: datetime, backoff: Backoff | None = None) -> None:
        """``backoff``: the wait between tries of a contended row (tests pass one with a fake sleeper)."""
        self._ledger = ledger
        self._now = now
        self._backoff = backoff or Backoff()

    def apply(self, observations: Iterable[OrderObservation], *, unfinished: Unfinished | None = None) -> IngestReceipt:
        """Merge every sighting. ``unfinished`` (a retry's caller) picks the unchanged rows to enqueue again.

        Changes are added to the receipt part by part, so a sighting refused after some parts were written (a
        counter underflow) still reports the SKUs those parts changed. Anything else raised (conflicts beyond the
        retries, throttling) ends the batch: the caller's retry finishes it.
        """
        receipt = IngestReceipt()
        sightings = list(observations)
        stored = self._prefetch(sightings)
        for observation in sightings:
            try:
                changed = self._apply_one(_keyed(observation, stored), stored, receipt, unfinished)
            except (InvalidInputError, CounterUnderflowError) as error:
                receipt.rejected.append((observation, error))
                continue
            if changed is None:
                receipt.ignored += 1
                _report_beyond_retention(observation)
            elif changed:
                receipt.applied += 1
            else:
                receipt.unchanged += 1
        return receipt

    def _prefetch(self, sightings: Sequence[OrderObservation]) -> dict[PartKey, LedgerPart]:
        """Read every row the batch touches in as few calls as possible (part 0 first, other parts if any)."""
        keys = {(obs.order_id, part) for obs in sightings for part in range(part_count(len(obs.lines)))}
        keys |= {(other, 0) for obs in sightings if (other := _other_key(obs)) is not None}
        stored = self._ledger.read_parts(sorted(keys))
        more = {
            (row.order_id, part)
            for row in list(stored.values())
            if row.part == 0
            for part in range(1, row.parts)
            if (row.order_id, part) not in stored
        }
        if more:
            stored.update(self._ledger.read_parts(sorted(more)))
        return stored

    def _apply_one(
        self,
        observation: OrderObservation,
        stored: dict[PartKey, LedgerPart],
        receipt: IngestReceipt,
        unfinished: Unfinished | None,
    ) -> bool | None:
        """True when a part's counters changed, False when nothing did, None when the sighting is too old."""
        rows = self._rows_for(observation, stored)
        if all(row.revision == 0 for row in rows) and self._beyond_retention(observation):
            return None
        synced = observation.synced or any(row.synced for row in rows)
        if synced != observation.synced:
            observation = observation.model_copy(update={"synced": synced})
        groups = split_lines(observation.lines) if observation.lines else [[] for _ in rows]
        changed = False
        for row, lines in zip(rows, groups, strict=True):
            changes, unchanged = self._apply_part(row, observation, lines, stored)
            if changes:
                changed = True
                receipt.add_changes(changes)
            elif unchanged is not None and unchanged.revision and unfinished is not None and unfinished(unchanged):
                receipt.reenqueue_skus.update(unchanged.lines)
        return changed

    def _rows_for(self, observation: OrderObservation, stored: dict[PartKey, LedgerPart]) -> list[LedgerPart]:
        """The order's rows for this sighting, stored or new, after checking it against the order first seen."""
        order_id = observation.order_id
        first = stored.get((order_id, 0))
        span = max(part_count(len(observation.lines)), first.parts if first is not None else 1)
        known = [row for part in range(span) if (row := stored.get((order_id, part))) is not None and row.lines]
        digest = None
        if observation.lines:
            validate_against_known_parts(known, observation)
            parts = part_count(len(observation.lines))
            digest = lines_digest(observation.lines) if parts > 1 else None
        else:
            parts = known[0].parts if known else (first.parts if first is not None else 1)
        rows = []
        for part in range(parts):
            row = stored.get((order_id, part))
            if row is None:
                row = empty_part(observation, part, parts, digest)
            elif not row.lines:
                # A stub (a sync notice came first, or a failure kept this part from being written) learns the
                # order's size, and from a sighting with lines the digest of its line items.
                row = replace(row, parts=parts, lines_digest=digest if observation.lines else row.lines_digest)
            rows.append(row)
        return rows

    def _apply_part(
        self,
        row: LedgerPart,
        observation: OrderObservation,
        lines: Sequence[OrderLine],
        stored: dict[PartKey, LedgerPart],
    ) -> tuple[dict[str, CounterDelta], LedgerPart | None]:
        """The counter changes written with the row, and the row as stored when the sighting left it unchanged."""
        key = (row.order_id, row.part)
        for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
            after = merge(row, observation, lines)
            if after is row:  # merge hands the stored row back when the sighting changed nothing
                return {}, row
            after = replace(after, updated_at=self._now)
            changes = deltas(row, after)
            try:
                self._ledger.write_part(row, after, changes, observation.reference_time)
            except StaleLedgerError:
                if attempt == MAX_CONFLICT_RETRIES:
                    break
                # Another writer won (a revision moved, or a transaction on a hot SKU's counters conflicted): wait a
                # jittered, growing while, so the racing writers spread out, then merge into the row as it is now.
                self._backoff.wait(attempt)
                row = self._reread(row, observation)
                continue
            stored[key] = replace(after, revision=row.revision + 1)
            return changes, None
        raise StaleLedgerError(
            f"order {row.order_id} part {row.part}: still contended after {MAX_CONFLICT_RETRIES} tries with backoff"
        )

    def _reread(self, row: LedgerPart, observation: OrderObservation) -> LedgerPart:
        """The row as stored now. A stub a sync notice wrote meanwhile does not know the order's size: keep ours.

        A concurrent writer may have written this part's lines meanwhile: they are checked like the ones read first.
        """
        key = (row.order_id, row.part)
        fresh = self._ledger.read_parts([key]).get(key)
        if fresh is None:
            return empty_part(observation, row.part, row.parts, row.lines_digest)
        if fresh.lines:
            validate_against_known_parts([fresh], observation)
        elif (fresh.parts, fresh.lines_digest) != (row.parts, row.lines_digest):
            return replace(fresh, parts=row.parts, lines_digest=row.lines_digest)
        return fresh

    def _beyond_retention(self, observation: OrderObservation) -> bool:
        """The rule for a sighting of an order the ledger does not hold, when retention makes it ambiguous.

        Only closed rows expire, ``LEDGER_RETENTION`` after their last write, so a missing row is ambiguous only for
        an order that may have closed that long ago. States only move forward, so a sighting whose content is newer
        than the order's close shows it closed too: a sighting that still counts (open, not synced) and whose
        content is recent cannot belong to an expired row, and is counted normally, however long ago the order was
        placed (an old backorder still open must hold its units; dropping it would over-sell them). Two cases stay:

        - the sighting still counts but its content is older than the retention (an event delivered or replayed more
          than 90 days late): it may be a stale view of an order closed since, whose row expired; counting it would
          hold units forever. Refused with the reason, naming ``occurred_at`` (the time its content was true).
        - the sighting counts in nothing (the order is completed or synced) and was placed before the retention:
          nothing is left to count, and its row may have expired. Ignored, and reported (``ignored``: the metric
          ``OrdersBeyondRetention`` and a log line), so a second count never adds its sale to velocity again.
        Returns True for the second case.
        """
        cutoff = self._now - LEDGER_RETENTION
        counts = observation.state is not None and observation.state.rank < OrderState.COMPLETED.rank
        if counts and not observation.synced:
            if observation.observed_at < cutoff:
                raise InvalidInputError(
                    "occurred_at",
                    f"order {observation.order_id}: the sighting's content dates from "
                    f"{observation.observed_at.isoformat()}, more than {LEDGER_RETENTION.days} days ago (the ledger's "
                    "retention), and the ledger does not hold the order: it may be a stale view of an order closed "
                    "since, so it is not counted",
                )
            return False
        return observation.placed_at is not None and observation.placed_at < cutoff
