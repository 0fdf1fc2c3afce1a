"""What the catalog shows for a SKU, from what the product can know (docs/catalog.md has the timeline).

The platform keeps its own copy of each SKU's stock. It subtracts every order placed on Facebook/Instagram and adds
back what it restocks, and every value we upload overwrites that copy whole, at some instant while the platform
processes the batch. So after a push, the catalog shows the pushed value plus the platform's moves made *after* the
batch was applied; moves made before it were erased by the overwrite.

The product never knows the instant a batch was applied, only that it lies between sending the call and seeing the
batch finished. A read of the catalog likewise happened between sending the request and receiving the answer. Both
give an *anchor*: "the catalog showed ``value`` at some instant in [``from``, ``to``]". Against an anchor, each of the
platform's moves (whose own instant is known to lie in [``not_before``, ``not_after``]) is exactly one of:

- behind it (``not_after < from``): already erased by the push, or already in the value read: it changes nothing;
- after it (``not_before > to``): the catalog shows it on top of the anchor's value;
- inside it (the two intervals overlap): nobody can know whether it counts. The SKU is *ambiguous*, and the product
  does not guess: it reads the catalog back (or, when reads are off, pushes the absolute value again).

In the platform deduction mode the platform keeps its deductions apart from the value we provide, so the value we
provide is what the catalog field shows and the platform's moves do not change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stocksync.models.settings import DeductionMode
from stocksync.models.sku import PlatformMove, SkuState, Visibility


@dataclass(frozen=True, slots=True)
class CatalogValue:
    value: int
    visibility: Visibility


@dataclass(frozen=True, slots=True)
class CatalogBelief:
    """What the catalog shows now, as far as the product can tell. ``ambiguous``: a move fell inside the anchor's
    window, so ``shows`` may be off by the units of those moves (``ambiguous_units`` of them)."""

    shows: CatalogValue
    ambiguous: bool = False
    ambiguous_units: int = 0


@dataclass(frozen=True, slots=True)
class Anchor:
    value: int
    visibility: Visibility
    shown_from: datetime
    shown_to: datetime


def anchor_of(state: SkuState) -> Anchor | None:
    """The SKU's catalog anchor; None when the product never saw a value land (or read one)."""
    if state.catalog_value is None or state.catalog_from is None or state.catalog_to is None:
        return None
    return Anchor(
        state.catalog_value, state.catalog_visibility or Visibility.PUBLISHED, state.catalog_from, state.catalog_to
    )


def is_behind(move: PlatformMove, shown_from: datetime) -> bool:
    """The move happened before the anchor's window: erased by the push, or already in the value read."""
    return move.not_after < shown_from


def is_after(move: PlatformMove, shown_to: datetime) -> bool:
    return move.not_before > shown_to


def belief_at(
    anchor: Anchor, moves: Iterable[PlatformMove], mode: DeductionMode, *, read: tuple[datetime, datetime] | None = None
) -> CatalogBelief:
    """What the catalog shows given ``anchor`` and the platform's moves.

    With ``read`` (a read's window: request sent, answer received): what that read should have found. Moves
    certainly made before the read count, moves certainly made after it are left out, and moves that may have
    happened during it are ambiguous like those inside the anchor's window.
    """
    if mode is DeductionMode.PLATFORM:
        return CatalogBelief(CatalogValue(anchor.value, anchor.visibility))
    value = anchor.value
    ambiguous_units = 0
    for move in moves:
        if is_behind(move, anchor.shown_from):
            continue
        if read is not None and is_after(move, read[1]):
            continue
        if is_after(move, anchor.shown_to) and (read is None or is_behind(move, read[0])):
            value += move.units
        else:
            ambiguous_units += abs(move.units)
    # The platform refuses orders at 0: its copy never goes below.
    return CatalogBelief(CatalogValue(max(0, value), anchor.visibility), ambiguous_units > 0, ambiguous_units)


def catalog_belief(state: SkuState, mode: DeductionMode) -> CatalogBelief | None:
    """What the catalog shows now; None when nothing was ever seen to land (push it)."""
    anchor = anchor_of(state)
    if anchor is None:
        return None
    return belief_at(anchor, state.platform_moves, mode)


def prunable_moves(state: SkuState) -> list[int]:
    """Indexes of the moves that are behind the anchor: they can never matter again."""
    anchor = anchor_of(state)
    if anchor is None:
        return []
    return [index for index, move in enumerate(state.platform_moves) if is_behind(move, anchor.shown_from)]


def has_open_moves(state: SkuState) -> bool:
    """Some move is not behind the anchor: it shows on top of it, or it makes the SKU ambiguous."""
    anchor = anchor_of(state)
    return anchor is not None and any(not is_behind(move, anchor.shown_from) for move in state.platform_moves)


def unsettled_after_confirm(state: SkuState) -> bool:
    """A confirmed push leaves this SKU to decide again: the platform moved it while the push was in flight (recompute
    then assumed those moves came after the overwrite, and waited for the push's window to place them), or a move
    is not behind the new anchor."""
    return state.platform_units != state.published_platform_units or has_open_moves(state)
