"""The simulated platform in time: where inside its delay a batch lands, and the two ways orders are netted out.

An upload overwrites the platform's copy at one instant inside the processing delay, so buyer orders and restocks
before that instant are erased and those after it survive; the status says ``finished`` only at the end of the delay.
In the platform deduction mode the provided value stays as uploaded and orders hold units until 30 minutes after
confirmation. No HTTP: the platform state is driven directly, or through the simulator's Python API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stocksync_dev.simulator import CommercePlatformSimulator, OrderRefused
from stocksync_dev.simulator.batches import BatchQueue, BatchRow, BatchStatus
from stocksync_dev.simulator.inventory import DeductionMode
from stocksync_dev.simulator.orders import CancelledBy, OrderState
from stocksync_dev.simulator.platform_state import PlatformState

START = datetime(2026, 11, 1, 10, tzinfo=UTC)


def upload(retailer_id: str, quantity: int) -> list[BatchRow]:
    return [BatchRow(0, "UPDATE", retailer_id, {"id": retailer_id, "quantity_to_sell_on_facebook": quantity})]


def state_with(delay: timedelta, mode: DeductionMode = DeductionMode.MERCHANT, **quantities: int) -> PlatformState:
    state = PlatformState(START, batch_calls_per_hour=100)
    state.batches.processing_delay = delay
    state.deduction_mode = mode
    for retailer_id, quantity in quantities.items():
        state.add_product(
            retailer_id, {"title": retailer_id, "price": "1.00 USD", "quantity_to_sell_on_facebook": quantity}
        )
    return state


def at(state: PlatformState, seconds: float) -> datetime:
    """Move the clock to START + seconds and settle the batches due by then."""
    state.clock.advance((START + timedelta(seconds=seconds) - state.clock.now()).total_seconds())
    with state.transaction() as now:
        return now


def quantity(state: PlatformState, retailer_id: str) -> int:
    with state.transaction():
        return state.catalog.snapshot()[retailer_id]["quantity_to_sell_on_facebook"]


def status(state: PlatformState, handle: str) -> BatchStatus:
    with state.transaction() as now:
        job = state.batches.get(handle)
        assert job is not None
        return job.status(now)


# -- where a batch lands ------------------------------------------------------------------------------------------


def test_an_order_before_the_application_point_is_erased_and_one_after_survives() -> None:
    state = state_with(timedelta(seconds=60), A=10)
    with state.transaction() as now:
        handle = state.batches.accept(upload("A", 10), allow_upsert=False, now=now)

    state.place_order("before", [("A", 2)], OrderState.FB_PROCESSING, at(state, 10))
    assert quantity(state, "A") == 8
    assert status(state, handle) is BatchStatus.DISPATCHED
    at(state, 30)  # halfway: the batch is applied and erases the order placed before it
    assert quantity(state, "A") == 10
    assert status(state, handle) is BatchStatus.STARTED
    state.place_order("after", [("A", 3)], OrderState.FB_PROCESSING, at(state, 40))
    assert (quantity(state, "A"), status(state, handle)) == (7, BatchStatus.STARTED)
    at(state, 59)
    assert status(state, handle) is BatchStatus.STARTED

    at(state, 60)

    assert (quantity(state, "A"), status(state, handle)) == (7, BatchStatus.FINISHED)
    assert state.batches.timelines()[handle] == {
        "accepted_at": START,
        "apply_at": START + timedelta(seconds=30),
        "applied_at": START + timedelta(seconds=30),
        "ready_at": START + timedelta(seconds=60),
        "finished": True,
    }


def test_a_restock_before_the_application_point_is_erased_and_one_after_survives() -> None:
    state = state_with(timedelta(seconds=100), A=10)
    state.place_order("o-1", [("A", 4)], OrderState.CREATED, at(state, 0))
    state.place_order("o-2", [("A", 4)], OrderState.CREATED, at(state, 0))
    state.batches.apply_fraction = 0.25
    with state.transaction() as now:
        state.batches.accept(upload("A", 5), allow_upsert=False, now=now)

    def buyer_cancels(order_id: str, seconds: float) -> None:
        cancel = {"restock_items": False, "reason_code": "CUSTOMER_REQUESTED", "reason_description": None}
        state.cancel_order(order_id, None, cancelled_by=CancelledBy.BUYER, now=at(state, seconds), **cancel)

    buyer_cancels("o-1", 10)
    assert quantity(state, "A") == 6
    at(state, 25)
    assert quantity(state, "A") == 5
    buyer_cancels("o-2", 50)

    assert quantity(state, "A") == 9


def test_the_application_point_is_a_configurable_fraction_of_the_delay() -> None:
    state = state_with(timedelta(seconds=100), A=10)
    handles = {}
    for seconds, fraction in ((0, 0.0), (100, 0.2), (200, 1.0)):
        state.batches.apply_fraction = fraction
        handles[fraction] = state.batches.accept(upload("A", 1), allow_upsert=False, now=at(state, seconds))

    at(state, 300)

    applied = {fraction: state.batches.timelines()[handle]["applied_at"] for fraction, handle in handles.items()}
    assert applied == {
        0.0: START,  # applied the moment it is accepted (and reported started, not finished)
        0.2: START + timedelta(seconds=120),
        1.0: START + timedelta(seconds=300),  # applied as it finishes
    }


def test_rows_never_land_while_the_batch_still_says_dispatched() -> None:
    state = state_with(timedelta(seconds=100), A=10)
    state.batches.apply_fraction = 0.1
    with state.transaction() as now:
        handle = state.batches.accept(upload("A", 1), allow_upsert=False, now=now)

    at(state, 9)
    assert (quantity(state, "A"), status(state, handle)) == (10, BatchStatus.DISPATCHED)
    at(state, 10)
    assert (quantity(state, "A"), status(state, handle)) == (1, BatchStatus.STARTED)


def test_random_application_points_are_inside_the_delay_and_repeat_with_the_seed() -> None:
    def points(seed: int) -> list[timedelta]:
        queue = BatchQueue(seed)
        queue.processing_delay = timedelta(seconds=60)
        queue.apply_fraction = None
        found = []
        for minute in range(20):
            now = START + timedelta(minutes=minute)
            job = queue.get(queue.accept(upload("A", 1), allow_upsert=True, now=now))
            assert job is not None
            found.append(job.apply_at - now)
        return found

    first = points(7)

    assert all(timedelta(0) <= point <= timedelta(seconds=60) for point in first)
    assert len(set(first)) > 1
    assert points(7) == first
    assert points(8) != first


def test_a_later_batch_with_a_shorter_delay_lands_after_the_earlier_one() -> None:
    state = state_with(timedelta(seconds=100), A=10)
    with state.transaction() as now:
        slow = state.batches.accept(upload("A", 1), allow_upsert=False, now=now)
    state.batches.processing_delay = timedelta(0)
    with state.transaction() as now:
        fast = state.batches.accept(upload("A", 2), allow_upsert=False, now=now)

    at(state, 49)
    assert quantity(state, "A") == 10
    at(state, 50)

    assert quantity(state, "A") == 2
    timelines = state.batches.timelines()
    assert timelines[fast]["applied_at"] == timelines[slow]["applied_at"] == START + timedelta(seconds=50)
    assert timelines[fast]["ready_at"] == START + timedelta(seconds=100)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, True, "half"])
def test_an_application_point_outside_the_delay_is_refused(fraction: object) -> None:
    sim = CommercePlatformSimulator(start=START)
    with pytest.raises(ValueError, match="batch_apply_fraction"):
        sim.batch_apply_fraction = fraction  # type: ignore[assignment]
    assert sim.batch_apply_fraction == 0.5


def test_the_batch_knobs_read_back() -> None:
    sim = CommercePlatformSimulator(start=START, batch_processing_delay=timedelta(minutes=2), batch_apply_seed=3)
    sim.batch_apply_fraction = None
    knobs = (sim.batch_processing_delay, sim.batch_apply_fraction, sim.batch_apply_seed, sim.deduction_mode)
    sim.batch_apply_seed = 4
    sim.deduction_mode = "platform"

    assert knobs == (timedelta(minutes=2), None, 3, "merchant")
    assert (sim.batch_apply_seed, sim.deduction_mode) == (4, "platform")
    assert sim.batches() == {}


# -- the platform deduction mode ----------------------------------------------------------------------------------


@pytest.fixture
def platform() -> CommercePlatformSimulator:
    sim = CommercePlatformSimulator(start=START, deduction_mode="platform")
    sim.add_product("MUG", quantity=5, name="Mug", price="9.99 USD")
    return sim


def provided(sim: CommercePlatformSimulator) -> int:
    return sim.catalog()["MUG"]["quantity_to_sell_on_facebook"]


def test_unconfirmed_orders_hold_units_and_orders_beyond_what_is_available_are_refused(
    platform: CommercePlatformSimulator,
) -> None:
    platform.place_order("o-1", [("MUG", 3)])
    platform.place_order("o-2", [("MUG", 1)], state="CREATED")

    assert (provided(platform), platform.available("MUG")) == (5, 1)
    with pytest.raises(OrderRefused) as refused:
        platform.place_order("o-3", [("MUG", 2)])
    assert (refused.value.requested, refused.value.available) == (2, 1)
    platform.place_order("o-4", [("MUG", 1)])
    assert (provided(platform), platform.available("MUG")) == (5, 0)
    assert "o-3" not in platform.orders()


def test_a_confirmed_order_stops_counting_30_minutes_after_confirmation(platform: CommercePlatformSimulator) -> None:
    platform.place_order("o-1", [("MUG", 3)])
    platform.advance(600)
    platform.move_order("o-1", "CREATED")
    platform.advance(600)
    assert platform.available("MUG") == 2  # still unconfirmed, however old
    platform.move_order("o-1", "IN_PROGRESS")  # acknowledged: confirmed now
    confirmed_at = platform.orders()["o-1"]["confirmed_at"]

    platform.advance(30 * 60 - 1)
    assert platform.available("MUG") == 2
    platform.move_order("o-1", "COMPLETED")  # shipping does not restart the 30 minutes
    platform.advance(1)

    assert platform.available("MUG") == 5
    assert confirmed_at == START + timedelta(minutes=20)
    assert provided(platform) == 5


def test_an_order_placed_already_confirmed_holds_units_for_30_minutes_from_its_creation(
    platform: CommercePlatformSimulator,
) -> None:
    platform.place_order("o-1", [("MUG", 4)], state="IN_PROGRESS")
    platform.advance(29 * 60)
    assert platform.available("MUG") == 1
    platform.advance(60)
    assert platform.available("MUG") == 5


def test_cancelled_units_stop_being_held_whoever_cancels(platform: CommercePlatformSimulator) -> None:
    platform.place_order("o-1", [("MUG", 2)], state="CREATED")
    platform.place_order("o-2", [("MUG", 2)], state="CREATED")

    platform.cancel_order("o-1", [("MUG", 1)], by="buyer")
    platform.cancel_order("o-2", by="seller", restock_items=False)

    assert (provided(platform), platform.available("MUG")) == (5, 4)


def test_an_upload_sets_the_provided_value_and_orders_still_hold_units() -> None:
    state = state_with(timedelta(seconds=60), DeductionMode.PLATFORM, A=10)
    state.place_order("o-1", [("A", 3)], OrderState.CREATED, at(state, 0))
    with state.transaction() as now:
        state.batches.accept(upload("A", 6), allow_upsert=False, now=now)

    at(state, 30)

    with state.transaction() as now:
        product = state.catalog.get("A")
        assert product is not None
        assert (product.quantity, state.available(product, now)) == (6, 3)


def test_the_merchant_mode_is_the_default_and_a_staging_product_has_nothing_available() -> None:
    sim = CommercePlatformSimulator(start=START)
    sim.add_product("MUG", quantity=5)
    sim.add_product("OLD", quantity=5, visibility="staging")
    sim.place_order("o-1", [("MUG", 2)])

    assert sim.deduction_mode == "merchant"
    assert (provided(sim), sim.available("MUG"), sim.available("OLD")) == (3, 3, 0)
    with pytest.raises(KeyError):
        sim.available("GHOST")
    with pytest.raises(ValueError, match="deduction_mode"):
        sim.deduction_mode = "meta"
