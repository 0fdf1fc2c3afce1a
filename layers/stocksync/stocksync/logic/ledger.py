"""The order ledger's rules: how sightings merge, and what each ledger row contributes to the SKU counters.

Why a merge and not "apply the event": the pollers and the bus deliver at least once, in any order, sometimes
concurrently. Every field of a ledger row only moves one way (state forward, cancelled/restocked units up, synced from
false to true; in an order that may grow, below, ordered units up and SKUs joining), so merging a sighting is a join:
applying it twice, or an old one after a new one, yields the same row. Counters are then a pure function of the rows,
and a counter change is the difference between the row's contribution before and after, written in the same conditional
transaction as the row itself.

Which orders may grow. A Meta Commerce order's line items never change after it is placed, so a sighting that adds a SKU
or names other units for one is a bad sighting and is refused (dead-lettered with the reason): merging it would count
units the platform never sold. A web-shop order (the ``events`` source: "Order Changed" events, and every connector
through logic/shop_orders.py) can be edited after it is placed: Shopify order edits add items or units, WooCommerce
admins add items to pending and on-hold orders. Refusing those sightings left the added units uncounted, and the catalog
could over-sell them. So a single-part ``events`` order *grows* by the same join as the rest of the row: a new SKU joins
its lines, and a SKU's ``ordered`` takes the larger of the stored and the seen units. The larger value wins because
deliveries come in any order: an older delivery with fewer units (or without the added SKU) must never undo a newer one.
The price is that a sighting with fewer units or lines (a WooCommerce admin lowering a quantity or removing an item)
leaves the larger count until the order completes or is cancelled: under-publishing for a while is the safe direction,
over-selling is not. ``cancelled`` and ``restocked`` keep their max-join, and every sighting has ``restocked <=
cancelled <= quantity``, so the joined row keeps them too (the largest ``cancelled`` came with a ``quantity`` no larger
than the largest one).

An order with more SKUs than one DynamoDB transaction can hold is split into parts of at most ``MAX_LINES_PER_PART``
SKUs (sorted retailer ids, chunked). Each part is its own ledger row with its own revision and transaction: 1 ledger
put + up to 49 counter updates + up to 49 velocity updates = 99 of the 100 actions a transaction allows. The split is
only stable while the line items do not change, so a split order never grows (whatever its source), and neither does
an order whose growth would split it: both are refused with a reason naming the order and what changed.

Because the parts are separate transactions, a failure between two of them (a crash, throttling, conflicts) leaves
some parts stored and others not, and the retry must be able to finish the order. So a sighting of a split order is
checked against the whole order as first seen (every part carries the number of parts and a digest of all the
order's line items), never against whichever parts happen to be stored: a retry completes the missing parts, while
a sighting that really changes the line items is still refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from stocksync.errors import InvalidInputError
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.sku import PlatformMove

MAX_LINES_PER_PART = 49
OPEN_SHARDS = 8  # spreads the sparse open-orders index over a few partitions
# The lower bound of a platform move whose instant nothing bounds from below (an order without a placement time).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Graph reports an order's ``created`` cut to the second: the order was placed at some instant in the second that
# follows it, so an anchor that began inside that second cannot tell whether the order came before it.
PLACED_AT_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class LineRecord:
    """What the ledger knows of one SKU of an order."""

    ordered: int
    cancelled: int = 0
    restocked: int = 0

    @property
    def open_units(self) -> int:
        return self.ordered - self.cancelled


@dataclass(frozen=True, slots=True)
class CounterDelta:
    """Changes to one SKU's counters, and the one-off facts (units sold, platform restocks) a merge revealed."""

    processing: int = 0  # P: units in FB_PROCESSING orders
    created: int = 0  # C: units in CREATED orders the warehouse has not accounted for
    acknowledged: int = 0  # K: units in acknowledged (IN_PROGRESS) orders the warehouse has not accounted for
    sold: int = 0  # units newly seen ordered (velocity)
    platform_units: int = 0  # change the platform made to its own catalog copy (-ordered on FB/IG, +restocked)
    # The same change, move by move, with when each happened (logic/catalog_model.py decides what the catalog shows).
    moves: tuple[PlatformMove, ...] = ()

    def __add__(self, other: CounterDelta) -> CounterDelta:
        return CounterDelta(
            self.processing + other.processing,
            self.created + other.created,
            self.acknowledged + other.acknowledged,
            self.sold + other.sold,
            self.platform_units + other.platform_units,
            self.moves + other.moves,
        )

    def __neg__(self) -> CounterDelta:
        return CounterDelta(
            -self.processing,
            -self.created,
            -self.acknowledged,
            -self.sold,
            -self.platform_units,
            tuple(move.model_copy(update={"units": -move.units}) for move in self.moves),
        )

    @property
    def changes_counters(self) -> bool:
        return bool(self.processing or self.created or self.acknowledged)

    @property
    def is_zero(self) -> bool:
        return not (self.changes_counters or self.sold or self.platform_units or self.moves)


@dataclass(frozen=True, slots=True)
class LedgerPart:
    """One ledger row: a part of an order, the state last applied to it, and its optimistic-lock revision."""

    order_id: str
    part: int
    parts: int
    source: OrderSource
    state: OrderState | None
    synced: bool
    sold_on_platform: bool
    lines: Mapping[str, LineRecord] = field(default_factory=dict)
    placed_at: datetime | None = None
    # When the newest sighting that changed this row was made: a restock seen later happened after it.
    seen_at: datetime | None = None
    revision: int = 0  # 0: not stored yet
    # Split orders only: the digest of the whole order's line items (``lines_digest``), on every part, so a retry
    # after a failure between parts can tell "the same order, parts missing" from "line items changed".
    lines_digest: str | None = None
    # When the row was last written, by the writer's clock (the ``now`` of the invocation that wrote it). A caller
    # that knows when its previous try stopped compares this to decide whether that try's enqueue may be missing.
    updated_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Still counted in P, C or K: such rows are listed by the open-orders index for reconciliation."""
        return any(delta.changes_counters for delta in contributions(self).values())

    @property
    def open_shard(self) -> int:
        return zlib.crc32(self.order_id.encode()) % OPEN_SHARDS


# The sources whose orders may be edited after they are placed (see the module docstring): their single-part orders
# grow by merge instead of being refused.
EDITABLE_SOURCES = frozenset({OrderSource.EVENTS})


class LineItemsChangedError(InvalidInputError):
    """A sighting names SKUs or quantities the ledger may not merge: any change to a Meta Commerce order or a split
    order, or growth that would take an order past one part."""


def may_grow(row: LedgerPart, observation: OrderObservation) -> bool:
    """Whether ``observation`` may add SKUs or units to the stored single-part ``row``.

    Both sides must be editable: a Meta order's sighting never grows a row, and an ``events`` sighting never grows a
    row a Meta poll wrote (they share a key only for an order placed on Facebook/Instagram, which is a Meta order:
    any other channel's events are keyed ``events:<id>``, models/orders.py). A stub a sync notice wrote
    (``WAREHOUSE``) has no lines yet and takes the sighting's source.
    """
    stored_editable = row.source in EDITABLE_SOURCES or row.source is OrderSource.WAREHOUSE
    return row.parts == 1 and stored_editable and observation.source in EDITABLE_SOURCES


def _counted_as(state: OrderState | None, synced: bool) -> str | None:
    if synced or state is None:
        return None  # the warehouse has the order: its units are in I already
    if state is OrderState.FB_PROCESSING:
        return "processing"
    if state is OrderState.CREATED:
        return "created"
    if state is OrderState.IN_PROGRESS:
        return "acknowledged"
    return None  # COMPLETED: shipped or cancelled, in neither counter


def contributions(part: LedgerPart) -> dict[str, CounterDelta]:
    """The counters this row holds up, per SKU (what reconciliation recounts)."""
    bucket = _counted_as(part.state, part.synced)
    if bucket is None:
        return {}
    return {
        retailer_id: CounterDelta(**{bucket: line.open_units})
        for retailer_id, line in part.lines.items()
        if line.open_units
    }


def part_count(line_count: int) -> int:
    return max(1, math.ceil(line_count / MAX_LINES_PER_PART))


def split_lines(lines: Iterable[OrderLine]) -> list[list[OrderLine]]:
    """Stable split of an order's lines into transaction-sized parts (sorted by retailer id)."""
    ordered = sorted(lines, key=lambda line: line.retailer_id)
    count = part_count(len(ordered))
    return [ordered[index * MAX_LINES_PER_PART : (index + 1) * MAX_LINES_PER_PART] for index in range(count)]


def lines_digest(lines: Iterable[OrderLine]) -> str:
    """A short, stable digest of an order's line items (SKUs and units ordered), independent of their order.

    Stored on every part of a split order so that any one stored part knows the whole order: a sighting whose
    extra or changed line would land in a part not stored yet is still recognised as a change.
    """
    canonical = json.dumps(sorted((line.retailer_id, line.quantity) for line in lines), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def empty_part(observation: OrderObservation, part: int, parts: int, digest: str | None = None) -> LedgerPart:
    return LedgerPart(
        order_id=observation.order_id,
        part=part,
        parts=parts,
        source=observation.source,
        state=None,
        synced=False,
        sold_on_platform=observation.sold_on_platform,
        lines_digest=digest,
    )


def merge(stored: LedgerPart, observation: OrderObservation, lines: Iterable[OrderLine]) -> LedgerPart:
    """Join a sighting into a stored row. ``lines`` are the sighting's lines that belong to this part.

    A sighting that changes nothing returns ``stored`` itself (callers test ``is``: no second comparison on the
    ingest's hot path); otherwise ``seen_at`` moves to the sighting's time, so a repeat costs no write.
    """
    grows = may_grow(stored, observation)
    merged_lines = dict(stored.lines)
    for line in lines:
        known = merged_lines.get(line.retailer_id)
        if known is not None and known.ordered != line.quantity and not grows:
            raise LineItemsChangedError(
                f"lines[{line.retailer_id}].quantity",
                f"order {observation.order_id} was first seen with {known.ordered} units, now {line.quantity}",
            )
        merged_lines[line.retailer_id] = LineRecord(
            ordered=max(line.quantity, known.ordered if known else 0),
            cancelled=max(line.cancelled, known.cancelled if known else 0),
            restocked=max(line.restocked, known.restocked if known else 0),
        )
    if grows and len(merged_lines) > MAX_LINES_PER_PART:
        # The checks before the merge refuse this already; a row past one transaction must never be written.
        raise _grows_past_one_part(observation.order_id, stored.lines.keys(), merged_lines.keys())
    state = stored.state
    if observation.state is not None and (state is None or observation.state.rank > state.rank):
        state = observation.state
    source = stored.source
    if source is OrderSource.WAREHOUSE and observation.source is not OrderSource.WAREHOUSE:
        source = observation.source  # a sync notice came first; the order's real source is this one
    merged = replace(
        stored,
        source=source,
        state=state,
        synced=stored.synced or observation.synced,
        sold_on_platform=stored.sold_on_platform or observation.sold_on_platform,
        lines=merged_lines,
        placed_at=stored.placed_at or observation.placed_at,
    )
    if same_content(stored, merged):
        return stored
    seen_at = observation.observed_at if stored.seen_at is None else max(stored.seen_at, observation.observed_at)
    return replace(merged, seen_at=seen_at)


def platform_moves(
    before: LedgerPart, after: LedgerPart, newly_ordered: int, newly_restocked: int
) -> list[PlatformMove]:
    """The moves a merge revealed on the platform's own copy, with the instants they are known to lie between.

    An order's units left the platform's copy when it was placed: at the time the platform reports, or up to
    ``PLACED_AT_RESOLUTION`` later (that time is cut to the second); a restock happened after the last sighting
    that changed the row (which did not show it yet) and before this one.
    """
    seen_at = after.seen_at or after.placed_at or EARLIEST
    moves = []
    if newly_ordered:
        if after.placed_at is not None:
            placed = after.placed_at
            moves.append(PlatformMove(units=-newly_ordered, not_before=placed, not_after=placed + PLACED_AT_RESOLUTION))
        else:
            moves.append(PlatformMove(units=-newly_ordered, not_before=before.seen_at or EARLIEST, not_after=seen_at))
    if newly_restocked:
        not_before = before.seen_at or after.placed_at or EARLIEST
        moves.append(PlatformMove(units=newly_restocked, not_before=min(not_before, seen_at), not_after=seen_at))
    return moves


def deltas(before: LedgerPart, after: LedgerPart) -> dict[str, CounterDelta]:
    """Per-SKU counter changes and one-off facts between two versions of the same row."""
    result: dict[str, CounterDelta] = {}

    def add(retailer_id: str, delta: CounterDelta) -> None:
        result[retailer_id] = result.get(retailer_id, CounterDelta()) + delta

    for retailer_id, delta in contributions(after).items():
        add(retailer_id, delta)
    for retailer_id, delta in contributions(before).items():
        add(retailer_id, -delta)
    for retailer_id, line in after.lines.items():
        old = before.lines.get(retailer_id)
        newly_ordered = line.ordered - (old.ordered if old else 0)
        newly_restocked = line.restocked - (old.restocked if old else 0)
        if after.sold_on_platform:
            moves = tuple(platform_moves(before, after, newly_ordered, newly_restocked))
            platform = newly_restocked - newly_ordered
        else:
            moves, platform = (), 0
        if newly_ordered or moves:
            add(retailer_id, CounterDelta(sold=newly_ordered, platform_units=platform, moves=moves))
    return {retailer_id: delta for retailer_id, delta in result.items() if not delta.is_zero}


def same_content(left: LedgerPart, right: LedgerPart) -> bool:
    """True when a merge changed nothing, so no write is needed (the common case for overlapping polls)."""
    return replace(left, revision=0, seen_at=None, updated_at=None) == replace(
        right, revision=0, seen_at=None, updated_at=None
    )


def validate_against_known_lines(known_skus: set[str], observation: OrderObservation) -> None:
    """An order's line items are fixed when it is placed; a sighting adding SKUs is rejected, not merged."""
    if not known_skus or not observation.lines:
        return
    new = {line.retailer_id for line in observation.lines} - known_skus
    if new:
        raise LineItemsChangedError(
            "lines", f"order {observation.order_id} was first seen without SKU(s) {sorted(new)}"
        )


def _grows_past_one_part(order_id: str, known: Iterable[str], seen: Iterable[str]) -> LineItemsChangedError:
    known_skus = set(known)
    union = known_skus | set(seen)
    return LineItemsChangedError(
        "lines",
        f"order {order_id} holds {len(known_skus)} SKU(s); adding SKU(s) {sorted(union - known_skus)} would take "
        f"it to {len(union)}, past one part ({MAX_LINES_PER_PART} SKUs): an order only grows within one part",
    )


def validate_against_known_parts(known: Sequence[LedgerPart], observation: OrderObservation) -> None:
    """Refuse a sighting whose line items differ from the order first seen; ``known`` are its stored parts with lines.

    A single-part order of an editable source may grow (``may_grow``), as long as the union of its SKUs still fits
    one part. Any other single-part order keeps the rule it always had (no SKU may be added; a sighting may list
    fewer lines). A split order is checked against its whole first sighting, whichever of its parts are stored: the
    same number of parts, each stored part exactly the SKUs the sighting's split puts there, and the same digest of
    all line items. That is what lets a retry after a failure between parts write the missing parts instead of being
    refused for SKUs "not seen before" (they were, in the parts the failure kept from being written).
    """
    if not known or not observation.lines:
        return
    if all(may_grow(row, observation) for row in known):
        union = {sku for row in known for sku in row.lines} | {line.retailer_id for line in observation.lines}
        if len(union) > MAX_LINES_PER_PART:
            raise _grows_past_one_part(observation.order_id, {sku for row in known for sku in row.lines}, union)
        return
    parts = part_count(len(observation.lines))
    if any(row.parts != parts for row in known):
        raise LineItemsChangedError(
            "lines", f"order {observation.order_id} was first seen with a different number of SKUs"
        )
    if parts == 1:
        validate_against_known_lines({sku for row in known for sku in row.lines}, observation)
        return
    groups = split_lines(observation.lines)
    for row in known:
        skus = {line.retailer_id for line in groups[row.part]}
        if skus != row.lines.keys():
            new, missing = sorted(skus - row.lines.keys()), sorted(row.lines.keys() - skus)
            raise LineItemsChangedError(
                "lines",
                f"order {observation.order_id} part {row.part} was first seen without SKU(s) {new} and with "
                f"SKU(s) {missing} (a sighting of a split order lists all its lines, unchanged)",
            )
        for line in groups[row.part]:
            if row.lines[line.retailer_id].ordered != line.quantity:
                raise LineItemsChangedError(
                    f"lines[{line.retailer_id}].quantity",
                    f"order {observation.order_id} was first seen with {row.lines[line.retailer_id].ordered} "
                    f"units, now {line.quantity}",
                )
    digests = {row.lines_digest for row in known if row.lines_digest is not None}
    if digests and digests != {lines_digest(observation.lines)}:
        raise LineItemsChangedError(
            "lines",
            f"order {observation.order_id} was first seen with other line items (SKUs or units of a part not "
            "stored yet)",
        )
