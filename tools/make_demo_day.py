"""Writes events/scenarios/demo_day.json: a realistic shop day for `make demo` (deterministic: a fixed seed).

    .venv/bin/python tools/make_demo_day.py

300 SKUs across the fast, medium and slow buckets; a morning of steady orders on Facebook/Instagram; a flash sale
on three fast sellers that the thresholds and the platform's own refusals keep from over-selling; buyer and seller
cancellations (with and without restock); the warehouse syncing orders and reporting new levels; one discontinued
SKU; and one throttling episode of the Graph API in the middle of the afternoon poll.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "events" / "scenarios" / "demo_day.json"
FLASH = ["FAST-000", "FAST-001", "FAST-002"]
DISCONTINUED = "SLOW-199"


def _skus(rng: random.Random) -> list[dict[str, Any]]:
    skus: list[dict[str, Any]] = []
    for index in range(40):
        skus.append({"retailer_id": f"FAST-{index:03d}", "warehouse": rng.randint(15, 60), "bucket": "fast"})
    for index in range(60):
        skus.append({"retailer_id": f"MED-{index:03d}", "warehouse": rng.randint(5, 40), "bucket": "medium"})
    for index in range(200):
        sku: dict[str, Any] = {"retailer_id": f"SLOW-{index:03d}", "warehouse": rng.randint(0, 25), "bucket": "slow"}
        if index % 10 == 0:
            sku["allocation_percent"] = 50  # shared with a marketplace: half the stock for Facebook/Instagram
        skus.append(sku)
    for sku in skus:
        if sku["retailer_id"] in FLASH:
            sku["warehouse"] = 12
    return skus


class Day:
    """Appends steps; order ids are numbered in the order they are placed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.steps: list[dict[str, Any]] = []
        self.orders = 0

    def order(self, items: list[tuple[str, int]], state: str = "FB_PROCESSING") -> str:
        self.orders += 1
        order_id = f"fb-{self.orders:04d}"
        lines = [{"retailer_id": sku, "quantity": units} for sku, units in items]
        self.steps.append({"order": {"id": order_id, "state": state, "items": lines}})
        return order_id

    def buyers(self, count: int) -> list[str]:
        """Steady buying on Facebook/Instagram, mostly fast sellers, a minute or so apart."""
        placed = []
        for _ in range(count):
            bucket = self.rng.choices(["FAST", "MED", "SLOW"], weights=[6, 3, 1])[0]
            sku = f"{bucket}-{self.rng.randrange({'FAST': 40, 'MED': 60, 'SLOW': 200}[bucket]):03d}"
            if sku not in FLASH:
                placed.append(self.order([(sku, self.rng.randint(1, 2))]))
                self.steps.append({"advance": self.rng.randint(20, 90)})
        return placed

    def move(self, order_ids: list[str], state: str) -> None:
        self.steps.extend({"order": {"id": order_id, "state": state}} for order_id in order_ids)

    def add(self, *steps: dict[str, Any]) -> None:
        self.steps.extend(steps)


def build() -> dict[str, Any]:
    rng = random.Random(20261123)
    skus = _skus(rng)
    day = Day(rng)
    morning = day.buyers(60)
    day.add({"run": "pipeline"})
    day.move(morning[:40], "CREATED")
    day.add({"advance": 600}, {"run": "pipeline"})

    # The flash sale: buyers rush three fast sellers with 12 units each; the fast threshold and the platform's own
    # refusal at 0 stop it from over-selling.
    for round_ in range(7):
        for flash in FLASH:
            day.order([(flash, 2)])
        day.add({"advance": 15})
        if round_ == 3:
            day.add({"run": "pipeline"})
    day.add({"run": "pipeline"})

    # Cancellations: a buyer changes their mind, the seller cancels with restock and without.
    day.add(
        {"cancel": {"id": morning[45], "by": "buyer"}},
        {"cancel": {"id": morning[46], "by": "seller", "restock_items": True}},
        {"cancel": {"id": morning[47], "by": "seller", "restock_items": False}},
        {"advance": 900},
    )
    # The warehouse takes the created orders, then reports the levels that reflect them; a SKU is retired.
    day.add(
        {"synced": morning[:40]},
        {"warehouse": {sku["retailer_id"]: max(0, sku["warehouse"] - 1) for sku in skus[:30]}},
        {"discontinue": [DISCONTINUED]},
        {"run": "pipeline"},
    )
    # Afternoon: more orders; the Graph API throttles the poll after two calls; the next poll resumes.
    afternoon = day.buyers(40)
    day.add(
        {"throttle": {"after_calls": 2, "code": 80004, "regain_minutes": 5, "endpoint": "commerce_orders"}},
        {"run": "pipeline"},
        {"advance": 360},
        {"run": "pipeline"},
    )
    day.move(afternoon[:10], "CREATED")
    day.add({"advance": 1800}, {"run": "sweep", "bucket": "slow"}, {"run": "pipeline"})
    return {
        "description": (__doc__ or "").split("\n\n")[2].replace("\n", " "),
        "catalog_id": "1001",
        "settings": {"deduction_mode": "merchant", "field": "quantity_to_sell_on_facebook"},
        "skus": skus,
        "steps": day.steps,
        # The flash sale sells the three fast sellers' 12 units each; the platform refuses the orders beyond them.
        "expect": {
            "catalog": {
                DISCONTINUED: {"units": 0, "visibility": "staging"},
                **{sku: {"units": 0, "visibility": "published"} for sku in FLASH},
            },
            "refused_orders": ["fb-0076", "fb-0077", "fb-0078", "fb-0094"],
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")
