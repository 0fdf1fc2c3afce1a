"""Bucket boundaries for ``stocksync tune``: where a measured velocity puts a SKU, and the boundaries to try.

A scenario names each SKU's bucket, so its boundaries are the scenario's choice. An order history does not: tune
measures each SKU's velocity and puts it in the bucket the deployment's rule gives (``<B>MinUnitsPerHour``, the
floors assign_buckets uses). There the boundaries are a setting like the others: a lower fast floor moves SKUs into
the fast bucket, with its threshold and sweep rate. The search moves one floor at a time by a factor of 2 either
way, keeping the floors in their order (the slowest bucket's floor, 0 by default, stays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stocksync.logic.bucketing import plain_bucket
from stocksync.models.settings import BucketSettings
from stocksync_dev.cli.scenario import Scenario

FLOOR_FACTOR = 2.0
FLOOR_DECIMALS = 6  # the template's MinUnitsPerHour pattern allows six decimals


@dataclass(frozen=True)
class Velocities:
    """Units per hour of each SKU measured from a history: what its bucket is assigned from."""

    units_per_hour: Mapping[str, float]


def bucket_for(velocity: float, floors: Mapping[str, float]) -> str:
    """The deployment's rule for a SKU it has not placed (no hysteresis without a current bucket)."""
    buckets = {bucket: BucketSettings(min_units_per_hour=floor) for bucket, floor in floors.items()}
    return plain_bucket(velocity, buckets)


def rebucketed(scenario: Scenario, velocities: Velocities, floors: Mapping[str, float]) -> Scenario:
    """The scenario with each measured SKU in the bucket these floors give it (validated again)."""
    raw: dict[str, Any] = scenario.model_dump(mode="json")
    for sku in raw["skus"]:
        velocity = velocities.units_per_hour.get(sku["retailer_id"])
        if velocity is not None:
            sku["bucket"] = bucket_for(velocity, floors)
    return type(scenario).model_validate({**raw, "steps": scenario.steps, "expect": scenario.expect})


def searched_floors(floors: Mapping[str, float]) -> list[str]:
    """The buckets whose floor the search moves: every one above 0, the fastest first."""
    return [bucket for bucket, floor in sorted(floors.items(), key=lambda item: -item[1]) if floor > 0]


def floor_steps(floors: Mapping[str, float], bucket: str) -> list[float]:
    """The bucket's floor times and divided by FLOOR_FACTOR (up first), where the floors keep their order: above
    every slower bucket's floor and below every faster one's."""
    current = floors[bucket]
    above = [floor for name, floor in floors.items() if name != bucket and floor > current]
    below = [floor for name, floor in floors.items() if name != bucket and floor < current]
    steps = []
    for value in (round(current * FLOOR_FACTOR, FLOOR_DECIMALS), round(current / FLOOR_FACTOR, FLOOR_DECIMALS)):
        if value > 0 and all(value < floor for floor in above) and all(value > floor for floor in below):
            steps.append(value)
    return steps


__all__ = ["FLOOR_FACTOR", "Velocities", "bucket_for", "floor_steps", "rebucketed", "searched_floors"]
