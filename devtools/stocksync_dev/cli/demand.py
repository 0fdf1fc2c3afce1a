"""Simulated selling for the ``demand`` scenario step (issue 15): who wants which unit when, and what came of it.

The buyers are drawn before anything is sold, from one ``random.Random(seed)``: each SKU's demand is a Poisson
process (exponential gaps) at its profile's rate, times the factor of the spikes it is in. Drawing them up front,
independently of what the catalog shows, is what makes two strategies comparable on one seed: the same buyers come
at the same instants whatever each deployment publishes, and only what they could buy differs. A unit's channel is
drawn with it (one more draw per unit, whatever the share), so changing ``platform_share`` moves units between the
channels without moving anyone in time.

``DemandTally`` counts the outcomes against the true stock (the warehouse's level minus the units sold and not yet
shipped): a sale when it is already 0 is over-selling, a buyer turned away while it is above 0 is under-selling.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from stocksync_dev.cli.scenario import DemandProfile, DemandSpec

Channel = Literal["platform", "web"]
CHANNELS: tuple[Channel, ...] = ("platform", "web")


@dataclass(frozen=True)
class Arrival:
    """One buyer wanting one unit, ``seconds`` into the window."""

    seconds: float
    retailer_id: str
    channel: Channel


def segments(profile: DemandProfile, window_seconds: float) -> list[tuple[float, float, float]]:
    """The window cut where the rate changes: (start, end, units per second), spikes overlapping multiplying."""
    cuts = {0.0, window_seconds}
    for spike in profile.spikes:
        cuts.update((spike.at_minute * 60, (spike.at_minute + spike.minutes) * 60))
    edges = sorted(cut for cut in cuts if 0 <= cut <= window_seconds)
    pieces = []
    for start, end in itertools.pairwise(edges):
        rate = profile.units_per_hour / 3600
        for spike in profile.spikes:
            if spike.at_minute * 60 <= start and end <= (spike.at_minute + spike.minutes) * 60:
                rate *= spike.factor
        pieces.append((start, end, rate))
    return pieces


def arrivals(spec: DemandSpec) -> list[Arrival]:
    """Every buyer of the window in time order (ties by SKU). Within a piece of constant rate the gaps are
    exponential; a piece starts afresh at its edge, which the process's lack of memory makes exact."""
    generator = random.Random(spec.seed)
    window = spec.minutes * 60.0
    found: list[Arrival] = []
    for profile in spec.profiles:
        pieces = segments(profile, window)
        for retailer_id in profile.skus:
            for start, end, rate in pieces:
                if rate <= 0:
                    continue
                moment = start
                while True:
                    moment += generator.expovariate(rate)
                    if moment >= end:
                        break
                    channel: Channel = "platform" if generator.random() < spec.platform_share else "web"
                    found.append(Arrival(moment, retailer_id, channel))
    return sorted(found, key=lambda arrival: (arrival.seconds, arrival.retailer_id))


class DemandTally:
    """The outcomes of every demand step of a replay, per SKU: what issue 15 compares strategies on."""

    def __init__(self) -> None:
        self.by_sku: dict[str, Counter[str]] = {}
        self.steps = 0

    def _counter(self, retailer_id: str) -> Counter[str]:
        return self.by_sku.setdefault(retailer_id, Counter())

    def sold(self, retailer_id: str, channel: Channel, true_stock: int) -> None:
        """A unit sold while the warehouse held ``true_stock`` units nobody had bought yet."""
        counter = self._counter(retailer_id)
        counter["demand"] += 1
        counter[f"sold_{channel}"] += 1
        if true_stock <= 0:
            counter["over_sold"] += 1

    def turned_away(self, retailer_id: str, channel: Channel, true_stock: int) -> None:
        counter = self._counter(retailer_id)
        counter["demand"] += 1
        counter[f"turned_away_{channel}"] += 1
        counter["under_sold" if true_stock > 0 else "turned_away_correctly"] += 1

    def shipped(self, retailer_id: str, units: int, unfilled: int) -> None:
        """``units`` left the warehouse; ``unfilled`` sold units it did not have (over-sold, never shipped)."""
        counter = self._counter(retailer_id)
        counter["shipped"] += units
        counter["unfilled"] += unfilled

    def as_dict(self) -> dict[str, Any] | None:
        """Totals and per SKU; None when the replay had no demand step (a report says nothing of what never ran)."""
        if not self.steps:
            return None
        names = (
            "demand",
            "sold_platform",
            "sold_web",
            "over_sold",
            "under_sold",
            "turned_away_correctly",
            "turned_away_platform",
            "turned_away_web",
            "shipped",
            "unfilled",
        )
        total: Counter[str] = Counter()
        for counter in self.by_sku.values():
            total.update(counter)

        def figures(counter: Counter[str]) -> dict[str, int]:
            values = {name: counter[name] for name in names}
            values["sold"] = values["sold_platform"] + values["sold_web"]
            values["turned_away"] = values["turned_away_platform"] + values["turned_away_web"]
            return values

        return {
            "steps": self.steps,
            **figures(total),
            "by_sku": {retailer_id: figures(counter) for retailer_id, counter in sorted(self.by_sku.items())},
        }


__all__ = ["CHANNELS", "Arrival", "Channel", "DemandTally", "arrivals", "segments"]
