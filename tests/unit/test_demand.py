"""The demand step's buyers, drawn without the pipeline: reproducible per seed, at the rates written (within Poisson
tolerance over long windows), spikes multiply the rate, the channel split follows the share; bad input names its field.

The statistical checks use fixed seeds, so they are deterministic; their bounds are four standard deviations of the
Poisson or binomial count the scenario asks for, wide enough for any seed and narrow enough to catch a rate read
per minute instead of per hour, a spike ignored or a share inverted.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli.demand import DemandTally, arrivals, segments
from stocksync_dev.cli.scenario import DemandSpec, DemandStep, ScenarioError, parse_scenario


def spec(**fields: Any) -> DemandSpec:
    values: dict[str, Any] = {"minutes": 60, "seed": 7, "profiles": [{"skus": ["SKU-1"], "units_per_hour": 10.0}]}
    values.update(fields)
    return DemandSpec.model_validate(values)


def within(count: float, expected: float, spread: float) -> bool:
    return abs(count - expected) <= 4 * spread


def test_the_same_seed_draws_the_same_buyers_and_another_seed_others() -> None:
    profiles = [{"skus": ["SKU-1", "SKU-2"], "units_per_hour": 6.0}, {"skus": ["SKU-3"], "units_per_hour": 1.0}]
    first = arrivals(spec(minutes=600, profiles=profiles, platform_share=0.4))
    again = arrivals(spec(minutes=600, profiles=profiles, platform_share=0.4))
    other = arrivals(spec(minutes=600, profiles=profiles, platform_share=0.4, seed=8))
    assert first == again
    assert len(first) > 20
    assert [(a.seconds, a.retailer_id) for a in first] != [(a.seconds, a.retailer_id) for a in other]


def test_buyers_come_in_time_order_inside_the_window() -> None:
    found = arrivals(spec(minutes=120, profiles=[{"skus": ["A", "B", "C"], "units_per_hour": 30.0}]))
    moments = [arrival.seconds for arrival in found]
    assert moments == sorted(moments)
    assert all(0 < moment < 120 * 60 for moment in moments)
    assert {arrival.retailer_id for arrival in found} == {"A", "B", "C"}


@pytest.mark.parametrize(("units_per_hour", "hours"), [(10.0, 100), (0.5, 160), (120.0, 10)])
def test_each_sku_is_demanded_at_its_rate_over_a_long_window(units_per_hour: float, hours: int) -> None:
    found = arrivals(spec(minutes=hours * 60, profiles=[{"skus": ["X", "Y"], "units_per_hour": units_per_hour}]))
    expected = units_per_hour * hours
    per_sku = Counter(arrival.retailer_id for arrival in found)
    for sku in ("X", "Y"):
        assert within(per_sku[sku], expected, math.sqrt(expected)), (sku, per_sku[sku], expected)
    # Exponential gaps: their mean is the inverse of the rate (in seconds).
    x_moments = [arrival.seconds for arrival in found if arrival.retailer_id == "X"]
    x_gaps = [b - a for a, b in itertools.pairwise(x_moments)]
    mean = sum(x_gaps) / len(x_gaps)
    assert within(mean, 3600 / units_per_hour, 3600 / units_per_hour / math.sqrt(len(x_gaps)))


def test_a_rate_of_zero_demands_nothing() -> None:
    assert arrivals(spec(minutes=600, profiles=[{"skus": ["SKU-1"], "units_per_hour": 0.0}])) == []


def test_a_spike_multiplies_the_rate_inside_it_and_leaves_the_rest_alone() -> None:
    rate, factor = 30.0, 10.0
    profile = {"skus": ["HOT"], "units_per_hour": rate, "spikes": [{"at_minute": 600, "minutes": 60, "factor": factor}]}
    found = arrivals(spec(minutes=1200, profiles=[profile]))
    inside = sum(1 for arrival in found if 600 * 60 <= arrival.seconds < 660 * 60)
    outside = len(found) - inside
    assert within(inside, rate * factor, math.sqrt(rate * factor)), inside
    assert within(outside, rate * 19, math.sqrt(rate * 19)), outside
    calm = arrivals(spec(minutes=1200, profiles=[{**profile, "spikes": []}]))
    assert len(found) - len(calm) > rate * (factor - 1) / 2


def test_overlapping_spikes_multiply() -> None:
    profile = DemandSpec.model_validate(
        {
            "minutes": 60,
            "seed": 1,
            "profiles": [
                {
                    "skus": ["A"],
                    "units_per_hour": 6.0,
                    "spikes": [
                        {"at_minute": 10, "minutes": 20, "factor": 2},
                        {"at_minute": 20, "minutes": 20, "factor": 3},
                    ],
                }
            ],
        }
    ).profiles[0]
    per_second = 6.0 / 3600
    assert segments(profile, 3600) == [
        (0, 600, per_second),
        (600, 1200, per_second * 2),
        (1200, 1800, per_second * 6),
        (1800, 2400, per_second * 3),
        (2400, 3600, per_second),
    ]


@pytest.mark.parametrize("share", [0.0, 0.25, 0.8, 1.0])
def test_the_channels_split_by_the_platform_share(share: float) -> None:
    found = arrivals(spec(minutes=6000, platform_share=share, profiles=[{"skus": ["A", "B"], "units_per_hour": 10.0}]))
    platform = sum(1 for arrival in found if arrival.channel == "platform")
    assert within(platform, share * len(found), math.sqrt(len(found) * share * (1 - share))), (platform, len(found))
    if share in (0.0, 1.0):
        assert platform == share * len(found)


def test_the_share_moves_units_between_channels_without_moving_buyers_in_time() -> None:
    profiles = [{"skus": ["A", "B"], "units_per_hour": 10.0}]
    low = arrivals(spec(minutes=600, platform_share=0.1, profiles=profiles))
    high = arrivals(spec(minutes=600, platform_share=0.9, profiles=profiles))
    assert [(a.seconds, a.retailer_id) for a in low] == [(a.seconds, a.retailer_id) for a in high]
    assert [a.channel for a in low] != [a.channel for a in high]


def test_the_tally_keeps_demand_equal_to_sold_plus_turned_away() -> None:
    tally = DemandTally()
    assert tally.as_dict() is None  # no demand step: no figures
    tally.steps = 1
    tally.sold("A", "platform", 3)
    tally.sold("A", "web", 1)
    tally.sold("A", "platform", 0)  # the warehouse had nothing left for it
    tally.turned_away("A", "platform", 2)  # the catalog showed too little
    tally.turned_away("A", "web", 0)
    tally.turned_away("B", "platform", -1)  # already over-sold: nothing left either
    tally.shipped("A", 2, 1)
    figures = tally.as_dict()
    assert figures is not None
    assert figures["demand"] == figures["sold"] + figures["turned_away"] == 6
    assert figures["turned_away"] == figures["under_sold"] + figures["turned_away_correctly"]
    assert (figures["sold_platform"], figures["sold_web"], figures["over_sold"]) == (2, 1, 1)
    assert (figures["under_sold"], figures["turned_away_correctly"]) == (1, 2)
    assert figures["by_sku"]["B"]["turned_away_correctly"] == 1
    assert (figures["shipped"], figures["unfilled"]) == (2, 1)


SKUS = [{"retailer_id": f"SKU-{number}", "warehouse": 5} for number in range(1, 5)]
GOOD: dict[str, Any] = {
    "minutes": 120,
    "seed": 7,
    "platform_share": 0.4,
    "profiles": [
        {"skus": ["SKU-1", "SKU-2"], "units_per_hour": 3.0},
        {"skus": ["SKU-3"], "units_per_hour": 0.2},
        {"skus": ["SKU-4"], "units_per_hour": 1.0, "spikes": [{"at_minute": 30, "minutes": 10, "factor": 20}]},
    ],
    "ship_after_minutes": 60,
}


def demand_scenario(**changes: Any) -> dict[str, Any]:
    demand = {**GOOD, **changes}
    return {"skus": SKUS, "steps": [{"advance": 60}, {"demand": demand}, {"run": "pipeline"}]}


def test_the_documented_demand_step_is_accepted() -> None:
    step = parse_scenario(demand_scenario()).steps[1]
    assert isinstance(step, DemandStep)
    assert step.demand.profiles[2].spikes[0].factor == 20


def profile(**changes: Any) -> list[dict[str, Any]]:
    return [{**GOOD["profiles"][0], **changes}, *GOOD["profiles"][1:]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"minutes": 0}, "steps[1].demand.minutes"),
        ({"minutes": -5}, "steps[1].demand.minutes"),
        ({"minutes": 1.5}, "steps[1].demand.minutes"),
        ({"platform_share": 1.2}, "steps[1].demand.platform_share"),
        ({"platform_share": -0.1}, "steps[1].demand.platform_share"),
        ({"seed": "seven"}, "steps[1].demand.seed"),
        ({"ship_after_minutes": -1}, "steps[1].demand.ship_after_minutes"),
        ({"profiles": []}, "steps[1].demand.profiles"),
        ({"profiles": profile(units_per_hour=-1.0)}, "steps[1].demand.profiles[0].units_per_hour"),
        ({"profiles": profile(skus=["SKU-1", "NOPE"])}, "steps[1].demand.profiles[0].skus[1]"),
        ({"profiles": profile(skus=["SKU-1", "SKU-3"])}, "steps[1].demand.profiles[1].skus[0]"),
        (
            {"profiles": profile(spikes=[{"at_minute": 120, "minutes": 5, "factor": 2}])},
            "steps[1].demand.profiles[0].spikes[0].at_minute",
        ),
        (
            {"profiles": profile(spikes=[{"at_minute": 100, "minutes": 30, "factor": 2}])},
            "steps[1].demand.profiles[0].spikes[0].minutes",
        ),
        (
            {"profiles": profile(spikes=[{"at_minute": 10, "minutes": 5, "factor": -2}])},
            "steps[1].demand.profiles[0].spikes[0].factor",
        ),
        ({"profiles": profile(extra=1)}, "steps[1].demand.profiles[0].extra"),
        (
            {"minutes": 10080, "profiles": profile(skus=["SKU-1", "SKU-2"], units_per_hour=600.0)},
            "steps[1].demand.profiles",
        ),
    ],
)
def test_bad_demand_names_the_step_and_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(demand_scenario(**changes))
    assert raised.value.field == field, raised.value


def test_demand_is_not_a_step_inside_while_pushing() -> None:
    scenario = {"skus": SKUS, "steps": [{"while_pushing": [{"at": 1, "steps": [{"demand": GOOD}]}]}]}
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(scenario)
    assert raised.value.field == "steps[0].while_pushing[0].steps[0]"


def test_the_readme_example_of_a_demand_step_is_accepted() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(part for part in readme.split("```json\n") if part.startswith('{"demand"')).split("```")[0]
    step = parse_scenario({"skus": SKUS, "steps": [json.loads(block)]}).steps[0]
    assert isinstance(step, DemandStep) and step.demand.ship_every_minutes == 15
