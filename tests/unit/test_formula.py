"""The published-number formula: allocation, thresholds, both deduction modes, rounding, clamping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.logic.stock_formula import Allocation, PendingUnits, resolve_allocation, stock_figures
from stocksync.models.settings import DeductionMode

MERCHANT, PLATFORM = DeductionMode.MERCHANT, DeductionMode.PLATFORM


@pytest.mark.parametrize(
    ("level", "allocation", "expected"),
    [
        (10, Allocation(), 10),  # none: all of I
        (0, Allocation(), 0),
        (-3, Allocation(), 0),  # a warehouse deficit allocates nothing
        (10, Allocation(percent=50), 5),
        (11, Allocation(percent=50), 5),  # rounded down, never up into another channel's units
        (3, Allocation(percent=33), 0),  # 0.99 -> 0
        (100, Allocation(percent=33), 33),
        (7, Allocation(percent=100), 7),
        (7, Allocation(percent=0), 0),
        (10, Allocation(fixed=4), 4),  # a cap below I
        (3, Allocation(fixed=4), 3),  # a cap above I: all of I
        (10, Allocation(fixed=0), 0),
        (-1, Allocation(fixed=4), 0),
    ],
)
def test_allocation(level: int, allocation: Allocation, expected: int) -> None:
    assert allocation.units(level) == expected


@pytest.mark.parametrize(
    ("sku", "bucket", "expected"),
    [
        (Allocation(), Allocation(), Allocation()),
        (Allocation(), Allocation(percent=50), Allocation(percent=50)),
        (Allocation(fixed=5), Allocation(percent=50), Allocation(fixed=5)),  # the SKU's own wins
        (Allocation(percent=10), Allocation(fixed=3), Allocation(percent=10)),
        (Allocation(percent=0), Allocation(percent=80), Allocation(percent=0)),  # 0 % is set, not "none"
    ],
)
def test_sku_allocation_overrides_the_buckets(sku: Allocation, bucket: Allocation, expected: Allocation) -> None:
    assert resolve_allocation(sku, bucket) == expected


@pytest.mark.parametrize("kwargs", [{"percent": 101}, {"percent": -1}, {"fixed": -1}, {"percent": 10, "fixed": 5}])
def test_invalid_allocations_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="allocation"):
        Allocation(**kwargs)


# level, (P, C, K), allocation, threshold, mode -> (allocated, available, published, shortfall)
FORMULA_CASES = [
    # merchant mode: A = max(0, alloc(I) - P - C), K ignored
    (10, (0, 0, 0), Allocation(), 0, MERCHANT, (10, 10, 10, 0)),
    (10, (2, 3, 4), Allocation(), 0, MERCHANT, (10, 5, 5, 0)),
    (10, (6, 6, 0), Allocation(), 0, MERCHANT, (10, 0, 0, 2)),  # clamped at 0, over-sold by 2
    (10, (5, 5, 0), Allocation(), 0, MERCHANT, (10, 0, 0, 0)),  # exactly sold out: not over-sold
    (20, (1, 1, 0), Allocation(percent=50), 0, MERCHANT, (10, 8, 8, 0)),
    (21, (0, 0, 0), Allocation(percent=50), 0, MERCHANT, (10, 10, 10, 0)),  # floor(10.5)
    (20, (3, 0, 0), Allocation(fixed=5), 0, MERCHANT, (5, 2, 2, 0)),
    (20, (4, 3, 0), Allocation(fixed=5), 0, MERCHANT, (5, 0, 0, 0)),  # past the cap, the warehouse fills it
    (20, (0, 18, 0), Allocation(percent=50), 0, MERCHANT, (10, 0, 0, 0)),  # the web shop sold into its share
    (20, (2, 21, 0), Allocation(percent=50), 0, MERCHANT, (10, 0, 0, 3)),  # short of the warehouse: over-sold
    (-2, (0, 1, 0), Allocation(), 0, MERCHANT, (0, 0, 0, 1)),  # a deficit level counts as 0
    # thresholds: A := 0 when A <= threshold
    (10, (0, 0, 0), Allocation(), 3, MERCHANT, (10, 10, 10, 0)),
    (10, (7, 0, 0), Allocation(), 3, MERCHANT, (10, 3, 0, 0)),  # at the threshold: 0
    (10, (6, 0, 0), Allocation(), 3, MERCHANT, (10, 4, 4, 0)),  # one above: published
    (1, (0, 0, 0), Allocation(), 1, MERCHANT, (1, 1, 0, 0)),
    (0, (0, 0, 0), Allocation(), 0, MERCHANT, (0, 0, 0, 0)),
    # platform mode: A = max(0, alloc(I) - K); P and C are the platform's to subtract, but count as owed
    (10, (2, 3, 4), Allocation(), 0, PLATFORM, (10, 6, 6, 0)),
    (10, (0, 0, 12), Allocation(), 0, PLATFORM, (10, 0, 0, 2)),
    (10, (4, 4, 4), Allocation(), 0, PLATFORM, (10, 6, 6, 2)),  # owed P + C + K = 12 > 10
    (20, (0, 0, 3), Allocation(percent=50), 7, PLATFORM, (10, 7, 0, 0)),
    (20, (0, 5, 12), Allocation(percent=50), 0, PLATFORM, (10, 0, 0, 0)),  # 17 owed of 20: fillable
    (20, (0, 0, 2), Allocation(fixed=9), 2, PLATFORM, (9, 7, 7, 0)),
]


@pytest.mark.parametrize(("level", "pending", "allocation", "threshold", "mode", "expected"), FORMULA_CASES)
def test_formula(
    *,
    level: int,
    pending: tuple[int, int, int],
    allocation: Allocation,
    threshold: int,
    mode: DeductionMode,
    expected: tuple[int, int, int, int],
) -> None:
    figures = stock_figures(level, PendingUnits(*pending), allocation, threshold=threshold, mode=mode)
    assert (figures.allocated, figures.available, figures.published, figures.shortfall) == expected
    assert figures.over_sold == (expected[3] > 0)


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        stock_figures(5, PendingUnits(), Allocation(), threshold=-1, mode=MERCHANT)


units = st.integers(min_value=0, max_value=10_000)
allocations = st.one_of(
    st.just(Allocation()),
    st.builds(Allocation, percent=st.integers(0, 100)),
    st.builds(Allocation, fixed=units),
)


@given(
    level=st.integers(min_value=-100, max_value=100_000),
    p=units,
    c=units,
    k=units,
    allocation=allocations,
    threshold=st.integers(0, 50),
)
def test_merchant_value_is_never_above_alloc_minus_pending_and_never_negative(
    *, level: int, p: int, c: int, k: int, allocation: Allocation, threshold: int
) -> None:
    figures = stock_figures(level, PendingUnits(p, c, k), allocation, threshold=threshold, mode=MERCHANT)
    assert 0 <= figures.published <= max(0, allocation.units(level) - p - c)
    assert figures.published <= max(0, level)
    assert figures.published == 0 or figures.published > threshold
    assert figures.shortfall == max(0, p + c - max(0, level))  # judged against I, not alloc(I)


@given(
    level=st.integers(min_value=-100, max_value=100_000),
    p=units,
    c=units,
    k=units,
    allocation=allocations,
    threshold=st.integers(0, 50),
)
def test_platform_value_is_never_above_alloc_minus_acknowledged_and_never_negative(
    *, level: int, p: int, c: int, k: int, allocation: Allocation, threshold: int
) -> None:
    figures = stock_figures(level, PendingUnits(p, c, k), allocation, threshold=threshold, mode=PLATFORM)
    assert 0 <= figures.published <= max(0, allocation.units(level) - k)
    assert figures.published == 0 or figures.published > threshold
    assert figures.shortfall == max(0, p + c + k - max(0, level))


@given(level=st.integers(0, 100_000), percent=st.integers(0, 100))
def test_percentage_allocation_rounds_down(level: int, percent: int) -> None:
    allocated = Allocation(percent=percent).units(level)
    assert allocated <= level * percent / 100 < allocated + 1


@given(
    level=st.integers(0, 10_000),
    pending=st.tuples(units, units, units),
    extra=st.integers(1, 100),
    mode=st.sampled_from(DeductionMode),
)
def test_more_pending_units_never_raise_the_value(
    level: int, pending: tuple[int, int, int], extra: int, mode: DeductionMode
) -> None:
    p, c, k = pending
    before = stock_figures(level, PendingUnits(p, c, k), Allocation(), threshold=2, mode=mode)
    after = stock_figures(level, PendingUnits(p + extra, c, k + extra), Allocation(), threshold=2, mode=mode)
    assert after.published <= before.published
