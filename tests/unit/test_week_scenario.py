"""The "flash sale + steady week" scenario tune runs by default: the shipped file is what its generator builds."""

from __future__ import annotations

import json

import pytest

from stocksync_dev.cli import tune, week_scenario
from stocksync_dev.cli.replay import deployment_buckets
from stocksync_dev.cli.scenario import DemandStep, load_scenario, parse_scenario


def test_the_shipped_week_is_the_generator_s_output_and_tune_s_default() -> None:
    assert tune.DEFAULT_SCENARIO.name == "flash_sale_week.json"
    shipped = json.loads(tune.DEFAULT_SCENARIO.read_text())
    assert shipped == week_scenario.build(), (
        "regenerate it: python -m stocksync_dev.cli.week_scenario > events/scenarios/tune/flash_sale_week.json"
    )
    scenario = load_scenario(tune.DEFAULT_SCENARIO, deployment_buckets=deployment_buckets())
    (step,) = [step for step in scenario.steps if isinstance(step, DemandStep)]
    assert step.demand.minutes == 7 * 24 * 60
    assert len(scenario.skus) == 1000


def test_every_group_has_skus_that_can_sell_out() -> None:
    raw = week_scenario.build()
    scenario = parse_scenario(raw, deployment_buckets=deployment_buckets())
    levels = {sku.retailer_id: sku.warehouse for sku in scenario.skus}
    (step,) = [step for step in scenario.steps if isinstance(step, DemandStep)]
    hours = step.demand.minutes / 60
    buckets = {sku.retailer_id: sku.bucket for sku in scenario.skus}
    for profile in step.demand.profiles:
        spike_units = sum(profile.units_per_hour * (spike.factor - 1) * spike.minutes / 60 for spike in profile.spikes)
        expected = profile.units_per_hour * hours + spike_units
        if expected >= 2:
            short = [sku for sku in profile.skus if levels[sku] < expected]
            assert 0 < len(short) < len(profile.skus), profile.skus[0]
        else:  # the long tail: a unit or two each, so one or two buyers sell a SKU out
            assert {levels[sku] for sku in profile.skus} <= {1, 2}, profile.skus[0]
        assert len({buckets[sku] for sku in profile.skus}) == 1
    assert [len(profile.skus) for profile in step.demand.profiles] == [10, 90, 900]
    assert {buckets[profile.skus[0]] for profile in step.demand.profiles} == {"fast", "medium", "slow"}


def test_the_seed_makes_it_reproducible_and_a_smaller_one_keeps_its_shape() -> None:
    assert week_scenario.build(60, 2, seed=4) == week_scenario.build(60, 2, seed=4)
    assert week_scenario.build(60, 2, seed=4) != week_scenario.build(60, 2, seed=5)
    small = parse_scenario(week_scenario.build(30, 1), deployment_buckets=deployment_buckets())
    (step,) = [step for step in small.steps if isinstance(step, DemandStep)]
    assert step.demand.minutes == 24 * 60
    assert all(not profile.spikes for profile in step.demand.profiles)  # the sale is on the third evening


@pytest.mark.parametrize(("skus", "days"), [(2, 7), (1000, 0), (1000, 8)])
def test_sizes_it_cannot_build_are_refused(skus: int, days: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="week scenario"):
        week_scenario.build(skus, days)
    assert week_scenario.main(["--skus", str(skus), "--days", str(days)]) == 2
    assert "week scenario" in capsys.readouterr().err
