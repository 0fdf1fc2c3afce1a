"""The delivery latency the merchant cares about: from "value changed" to "value confirmed in the catalog".

A value changes when recompute computes it (the push message's ``computed_at``); it is confirmed when verify_batch
sees the platform finish the batch that carried it. verify_batch stores each confirmed row's latency with its batch
record; the replay and the push benchmark read them back and summarise them here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values: a value that was observed, never an interpolation."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[rank - 1]


def summarize(latencies_seconds: Sequence[float]) -> LatencySummary | None:
    """p50/p95/p99/max of the latencies (seconds); None when there are none."""
    if not latencies_seconds:
        return None
    ordered = sorted(latencies_seconds)
    return LatencySummary(
        count=len(ordered),
        p50=percentile(ordered, 0.50),
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
        max=ordered[-1],
    )
