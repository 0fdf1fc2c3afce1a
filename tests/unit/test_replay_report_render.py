"""The replay report tells the demo's story (issue 17): allocation and threshold per SKU, over-sold SKUs marked and
counted with the units at risk, and a scenario's ``expect`` block compared line by line."""

from __future__ import annotations

from typing import Any

from stocksync_dev.cli.replay_report import render_report, unmet_expectations


def report(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "catalog": {
            "FAST-000": {"units": 0, "visibility": "published"},
            "SKU-2": {"units": 5, "visibility": "published"},
        },
        "skus": {
            "FAST-000": {
                "I": 11, "P": 12, "C": 0, "K": 0, "allocated": 11, "threshold": 2, "A": 0,
                "bucket": "fast", "confirmed": True, "over_sold_by": 1,
            },
            "SKU-2": {
                "I": 10, "P": 0, "C": 0, "K": 0, "allocated": 5, "threshold": 0, "A": 5,
                "bucket": "slow", "confirmed": True, "over_sold_by": 0,
            },
        },
        "over_sold": {"FAST-000": 1},
        "units_at_risk": 1,
        "refused_orders": ["fb-1"],
        "graph_calls": {},
        "dead_letters": [],
        "demand": None,
    }  # fmt: skip
    return {**base, **changes}


def test_the_table_shows_allocation_and_threshold_and_marks_the_over_sold_sku() -> None:
    lines = render_report(report()).splitlines()
    assert lines[0].split()[:9] == ["SKU", "bucket", "I", "P", "C", "alloc", "thr", "A", "catalog"]
    fast = next(line for line in lines if line.startswith("FAST-000"))
    assert fast.split()[:8] == ["FAST-000", "fast", "11", "12", "0", "11", "2", "0"]
    assert fast.endswith("OVER-SOLD by 1")
    sku2 = next(line for line in lines if line.startswith("SKU-2"))
    assert sku2.split()[5:8] == ["5", "0", "5"] and "OVER-SOLD" not in sku2  # I=10, alloc 5: A=5 explained
    assert "over-sold now: 1 SKUs, 1 units owed beyond the warehouse level (units at risk): FAST-000 by 1" in lines


def test_nothing_over_sold_is_said_too() -> None:
    quiet = report(over_sold={}, units_at_risk=0)
    assert "over-sold now: none" in render_report(quiet).splitlines()


def test_an_expect_block_is_compared_line_by_line() -> None:
    expect = {
        "catalog": {"FAST-000": {"units": 0, "visibility": "published"}, "SKU-2": {"units": 7}, "SKU-9": {"units": 1}},
        "refused_orders": ["fb-1"],
        "over_sold": {},
        "overselling": {},
    }
    unmet = unmet_expectations(report(), expect)
    assert unmet == [
        "expect.catalog.SKU-2: wanted 7, got 5 published",
        "expect.catalog.SKU-9: wanted 1, not in the catalog",
        "expect.over_sold: wanted {}, got {'FAST-000': 1}",
        "expect.overselling: not something replay checks (catalog, refused_orders, demand, over_sold)",
    ]
    assert unmet_expectations(report(), {"catalog": {"FAST-000": {"units": 0}}, "over_sold": {"FAST-000": 1}}) == []
    assert unmet_expectations(report(), None) == []
    rendered = render_report({**report(), "expect_unmet": unmet}).splitlines()
    assert "expect: NOT met (4)" in rendered and "  expect.catalog.SKU-2: wanted 7, got 5 published" in rendered
    assert render_report({**report(), "expect_unmet": []}).splitlines()[-1] == "expect: met"
