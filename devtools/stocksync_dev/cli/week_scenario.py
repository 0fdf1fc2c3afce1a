"""The "flash sale + steady week" scenario that ``stocksync tune`` runs by default (issue 15), built from a seed.

    python -m stocksync_dev.cli.week_scenario > events/scenarios/tune/flash_sale_week.json   # the shipped file
    python -m stocksync_dev.cli.week_scenario --skus 60 --days 1                             # a smaller one

A shop of ``skus`` SKUs over ``days`` simulated days, shaped like the catalogs the product is deployed for: a few
hot SKUs (1 %), some that sell every day (9 %), and a long tail that sells a few units a week. The hot SKUs hold
a flash sale (25x for two hours on the third evening) and sell out in it; stock elsewhere is drawn so that a share
of every group runs out during the week, where strategies differ: a catalog that lags a sell-out over-sells, a
threshold that hides stock too early under-sells. Levels are drawn from ``random.Random(seed)``, so the file is
reproducible (a test rebuilds the shipped one and compares).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from typing import Any

SEED = 15
HOT_SHARE, MEDIUM_SHARE = 0.01, 0.09
HOT_RATE, MEDIUM_RATE, SLOW_RATE = 0.5, 0.05, 0.005  # units per hour, each SKU
SALE_FACTOR, SALE_MINUTES = 25.0, 120
SALE_DAY_MINUTE = 2 * 24 * 60 + 18 * 60  # the third evening, 18:00
PLATFORM_SHARE = 0.5
SHIP_AFTER_MINUTES, SHIP_EVERY_MINUTES = 60, 60


def _group(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{number:04d}" for number in range(1, count + 1)]


def build(skus: int = 1000, days: int = 7, seed: int = SEED) -> dict[str, Any]:
    """The scenario as JSON data (``parse_scenario`` validates it like any file)."""
    if skus < 3 or not 1 <= days <= 7:
        raise ValueError("a week scenario needs at least 3 SKUs and 1 to 7 days")
    hot = _group("HOT", max(1, round(skus * HOT_SHARE)))
    medium = _group("DAILY", max(1, round(skus * MEDIUM_SHARE)))
    slow = _group("TAIL", skus - len(hot) - len(medium))
    minutes = days * 24 * 60
    generator = random.Random(seed)
    hours = minutes / 60
    sale = [{"at_minute": SALE_DAY_MINUTE, "minutes": SALE_MINUTES, "factor": SALE_FACTOR}]
    sale_units = HOT_RATE * SALE_FACTOR * SALE_MINUTES / 60 if minutes > SALE_DAY_MINUTE else 0

    def level(expected: float) -> int:
        """Between 40 % and 140 % of the units the SKU is expected to sell: some run out, some do not."""
        return max(1, round(expected * generator.uniform(0.4, 1.4)))

    entries = [
        *({"retailer_id": sku, "warehouse": level(HOT_RATE * hours + sale_units), "bucket": "fast"} for sku in hot),
        *({"retailer_id": sku, "warehouse": level(MEDIUM_RATE * hours), "bucket": "medium"} for sku in medium),
        *({"retailer_id": sku, "warehouse": level(SLOW_RATE * hours), "bucket": "slow"} for sku in slow),
    ]
    profiles = [
        {"skus": hot, "units_per_hour": HOT_RATE, "spikes": sale if sale_units else []},
        {"skus": medium, "units_per_hour": MEDIUM_RATE},
        {"skus": slow, "units_per_hour": SLOW_RATE},
    ]
    return {
        "description": (
            f"A flash sale in a steady week: {skus} SKUs over {days} simulated day(s), half the buyers on "
            f"Facebook/Instagram. {len(hot)} hot SKUs sell {HOT_RATE:g} unit an hour and {SALE_FACTOR:g}x that for "
            f"two hours on the third evening; {len(medium)} sell {MEDIUM_RATE:g} an hour, {len(slow)} sell "
            f"{SLOW_RATE:g} an hour. Stock is drawn so that some of every group sells out; the warehouse ships each "
            f"sale within {SHIP_AFTER_MINUTES + SHIP_EVERY_MINUTES} minutes, in hourly waves. Built by "
            "stocksync_dev.cli.week_scenario (seed {seed}); `stocksync tune` runs it by default."
        ).replace("{seed}", str(seed)),
        "catalog_id": "1001",
        "skus": entries,
        "steps": [
            {
                "demand": {
                    "minutes": minutes,
                    "seed": seed,
                    "platform_share": PLATFORM_SHARE,
                    "profiles": profiles,
                    "ship_after_minutes": SHIP_AFTER_MINUTES,
                    "ship_every_minutes": SHIP_EVERY_MINUTES,
                }
            },
            {"run": "pipeline"},
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        scenario = build(args.skus, args.days, args.seed)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(json.dumps(scenario, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
