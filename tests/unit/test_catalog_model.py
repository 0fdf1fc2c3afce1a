"""What the catalog shows: the platform's moves placed against an anchor's window (before, inside, after it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.logic.catalog_model import Anchor, CatalogValue, belief_at, has_open_moves, prunable_moves
from stocksync.logic.ledger import LedgerPart, deltas, merge
from stocksync.models.orders import OrderLine, OrderObservation, OrderSource, OrderState
from stocksync.models.settings import DeductionMode
from stocksync.models.sku import PlatformMove, SkuState, Visibility

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)
SENT, FINISHED = T0, T0 + timedelta(seconds=60)
ANCHOR = Anchor(10, Visibility.PUBLISHED, SENT, FINISHED)
MERCHANT = DeductionMode.MERCHANT


def at(seconds: float, units: int = -1, *, until: float | None = None) -> PlatformMove:
    start = T0 + timedelta(seconds=seconds)
    end = start if until is None else T0 + timedelta(seconds=until)
    return PlatformMove(units=units, not_before=start, not_after=end)


@pytest.mark.parametrize(
    ("move", "shows", "ambiguous"),
    [
        (at(-5), 10, False),  # placed before the call was sent: the overwrite erased it
        (at(61), 9, False),  # placed after the batch was seen finished: on top of the pushed value
        (at(30), 10, True),  # placed while the batch was processing: nobody knows
        (at(0), 10, True),  # the window's bounds belong to it
        (at(60), 10, True),
        (at(-30, 2, until=5), 10, True),  # a restock known only between two sightings that straddle the send
        (at(-30, 2, until=-1), 10, False),
        (at(61, 2, until=120), 12, False),
    ],
)
def test_a_move_is_behind_after_or_inside_the_anchor(move: PlatformMove, shows: int, ambiguous: bool) -> None:
    belief = belief_at(ANCHOR, [move], MERCHANT)
    assert (belief.shows.value, belief.ambiguous) == (shows, ambiguous)


def test_the_catalog_never_shows_less_than_zero_and_the_platform_mode_ignores_moves() -> None:
    moves = [at(100, -4), at(200, -9)]
    assert belief_at(ANCHOR, moves, MERCHANT).shows == CatalogValue(0, Visibility.PUBLISHED)
    assert belief_at(ANCHOR, moves, DeductionMode.PLATFORM).shows == CatalogValue(10, Visibility.PUBLISHED)


def test_what_a_read_should_find_counts_only_the_moves_certainly_before_it() -> None:
    read = (T0 + timedelta(seconds=200), T0 + timedelta(seconds=201))
    moves = [at(100, -1), at(300, -2)]  # one before the read, one after it
    assert belief_at(ANCHOR, moves, MERCHANT, read=read) == belief_at(ANCHOR, moves[:1], MERCHANT)
    during = belief_at(ANCHOR, [at(200.5, -1)], MERCHANT, read=read)
    assert during.ambiguous and during.ambiguous_units == 1


@given(
    st.lists(
        st.tuples(st.integers(-120, 240), st.integers(0, 60), st.integers(-3, 3).filter(bool)),
        max_size=12,
    )
)
def test_a_belief_is_exact_whenever_it_is_not_ambiguous(raw: list[tuple[int, int, int]]) -> None:
    """For every instant the batch could have been applied at, the catalog would show the same value."""
    moves = [at(start, units, until=start + width) for start, width, units in raw]
    anchor = Anchor(100, Visibility.PUBLISHED, SENT, FINISHED)  # high enough that the floor at 0 never applies
    belief = belief_at(anchor, moves, MERCHANT)
    if belief.ambiguous:
        return
    for applied in (0, 30, 60):  # any application instant inside the window
        for placement in ("start", "end"):  # any instant of each move inside its own bounds
            applied_at = T0 + timedelta(seconds=applied)
            shown = anchor.value + sum(
                move.units
                for move in moves
                if (move.not_before if placement == "start" else move.not_after) > applied_at
            )
            assert shown == belief.shows.value


def test_moves_behind_the_anchor_are_prunable_and_the_others_stay_open() -> None:
    state = SkuState(
        retailer_id="A",
        catalog_value=10,
        catalog_from=SENT,
        catalog_to=FINISHED,
        platform_moves=(at(-10), at(30), at(-1), at(90)),
    )
    assert prunable_moves(state) == [0, 2]
    assert has_open_moves(state)
    assert not has_open_moves(state.model_copy(update={"platform_moves": (at(-10),)}))


# ------------------------------------------------------------------------------------------------- ledger moves


def sighting(observed: float, *, cancelled: int = 0, restocked: int = 0, placed: float | None = 0) -> OrderObservation:
    return OrderObservation(
        order_id="o-1",
        source=OrderSource.META_COMMERCE,
        state=OrderState.COMPLETED if cancelled else OrderState.CREATED,
        lines=(OrderLine(retailer_id="A", quantity=3, cancelled=cancelled, restocked=restocked),),
        sold_on_platform=True,
        placed_at=T0 + timedelta(seconds=placed) if placed is not None else None,
        observed_at=T0 + timedelta(seconds=observed),
    )


def apply(row: LedgerPart, observation: OrderObservation) -> tuple[LedgerPart, tuple[PlatformMove, ...]]:
    after = merge(row, observation, observation.lines)
    return after, deltas(row, after).get("A").moves if "A" in deltas(row, after) else ()


def test_the_ledger_dates_an_order_at_its_placement_and_a_restock_between_two_sightings() -> None:
    empty = LedgerPart("o-1", 0, 1, OrderSource.META_COMMERCE, None, False, True)
    first, moves = apply(empty, sighting(100))
    assert moves == (at(0, -3, until=1),)  # the platform reports when the order was placed, cut to the second
    repeat, moves = apply(first, sighting(200))
    assert moves == () and repeat.seen_at == first.seen_at  # a repeat changes nothing, not even seen_at
    _, moves = apply(repeat, sighting(300, cancelled=3, restocked=3))
    assert moves == (at(100, 3, until=300),)  # after the last sighting that did not show it, before this one


def test_an_order_without_a_placement_time_is_known_only_up_to_its_sighting() -> None:
    empty = LedgerPart("o-1", 0, 1, OrderSource.EVENTS, None, False, True)
    _, moves = apply(empty, sighting(100, placed=None))
    assert moves[0].not_after == T0 + timedelta(seconds=100) and moves[0].not_before.year == 1970


def test_an_order_placed_in_the_second_a_read_began_is_not_taken_as_already_read() -> None:
    """Graph cuts ``created`` to the second: an order placed 0.7 s into a second, just after a read sent at 0.5 s,
    is reported at 0.0 s. Taken as exact, it looked behind the read (already in the value read), so when the seller
    then cancelled it without restock the product expected the value read while the catalog showed it minus the
    order's units, and A (which no longer counts the cancelled order) equalled the expectation: nothing was pushed."""
    read = Anchor(9, Visibility.PUBLISHED, T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=0.5))
    empty = LedgerPart("o-2", 0, 1, OrderSource.META_COMMERCE, None, False, True)
    _, moves = apply(empty, sighting(10, placed=0))  # really placed at 0.7 s
    _, cancelled = apply(empty, sighting(10, cancelled=3, restocked=0, placed=0))  # first seen already cancelled
    for seen in (moves, cancelled):
        belief = belief_at(read, seen, MERCHANT)
        assert belief.ambiguous and belief.ambiguous_units == 3  # read it back, never assume the read included it
    later_read = Anchor(6, Visibility.PUBLISHED, T0 + timedelta(seconds=1.5), T0 + timedelta(seconds=1.5))
    assert belief_at(later_read, cancelled, MERCHANT) == belief_at(later_read, (), MERCHANT)  # a read a second on
