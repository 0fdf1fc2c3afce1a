"""Published vs true stock of one SKU over a replay's demand steps, for ``stocksync tune --plot`` (issue 15).

Only the hottest SKU is traced (the demand SKU with the most expected units, spikes included): the one whose
catalog lags its warehouse the most, and one read of the simulator per buyer or shipment keeps the cost flat
whatever the catalog's size. ``published`` is what a buyer on the platform can order (the simulator's
``available``: the cached quantity in merchant mode, less the held units in platform mode, 0 when not published);
``true`` is the warehouse's level less the units sold and not shipped. A point is kept only when either changed, so
a week of a slow SKU is a few points.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stocksync_dev.cli.scenario import DemandStep, Scenario


def hottest_sku(scenario: Scenario) -> str | None:
    """The demand SKU with the most expected units over every demand step (by name on a tie); None without one."""
    expected: Counter[str] = Counter()
    for step in scenario.steps:
        if not isinstance(step, DemandStep):
            continue
        for profile in step.demand.profiles:
            spiked = sum(spike.minutes * (spike.factor - 1) for spike in profile.spikes)
            units = profile.units_per_hour * max(0.0, step.demand.minutes + spiked) / 60
            for retailer_id in profile.skus:
                expected[retailer_id] += units
    if not expected:
        return None
    return min(expected, key=lambda retailer_id: (-expected[retailer_id], retailer_id))


class StockTrace:
    """(seconds since the replay's start, published, true) for one SKU, a point whenever either changed."""

    def __init__(self, retailer_id: str | None, origin: datetime) -> None:
        self.retailer_id = retailer_id
        self._origin = origin
        self.points: list[tuple[float, int, int]] = []

    def record(self, now: datetime, published: Callable[[str], int], true: Callable[[str], int]) -> None:
        if self.retailer_id is None:
            return
        try:
            shown = published(self.retailer_id)
        except KeyError:
            shown = 0  # the product is gone from the catalog (deleted): nobody can order it
        point = (shown, true(self.retailer_id))
        if self.points and self.points[-1][1:] == point:
            return
        self.points.append((round((now - self._origin).total_seconds(), 3), *point))

    def as_dict(self) -> dict[str, Any] | None:
        """The report's ``stock_trace``; None when the replay had no demand SKU to trace."""
        if self.retailer_id is None:
            return None
        return {"retailer_id": self.retailer_id, "points": [list(point) for point in self.points]}


__all__ = ["StockTrace", "hottest_sku"]
