"""``stocksync tune``'s pure parts: what each strategy replays, the rule that picks the tuned settings under the
target, the search's bound, the deploy line in the template's names, and the JSON's shape (issue 15)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from stocksync_dev.cli import tune, tune_boundaries
from stocksync_dev.cli.main import main
from stocksync_dev.cli.scenario import Scenario, parse_scenario
from stocksync_dev.local.template import load_template

PARAMETERS = load_template()["Parameters"]
RAW: dict[str, Any] = {
    "settings": {
        "deduction_mode": "merchant",
        "buckets": {
            "fast": {"threshold": 2, "allocation_percent": 90, "min_units_per_hour": 1.5},
            "promo": {"threshold": 4},
        },
    },
    "skus": [
        {"retailer_id": "HOT", "warehouse": 5, "bucket": "fast"},
        {"retailer_id": "CALM", "warehouse": 9, "bucket": "medium", "allocation_fixed": 3},
        {"retailer_id": "PROMO", "warehouse": 4, "bucket": "promo"},
    ],
    "steps": [
        {
            "demand": {
                "minutes": 30,
                "seed": 1,
                "profiles": [{"skus": ["HOT", "CALM"], "units_per_hour": 2.0}],
            }
        }
    ],
}
BUCKETS = {"fast", "medium", "slow"}


def scenario(raw: dict[str, Any] = RAW) -> Scenario:
    return parse_scenario(raw, deployment_buckets=BUCKETS)


def outcome(sold: int, over: int, under: int, *, demand: int = 100, calls: int = 10) -> tune.Outcome:
    return tune.Outcome(demand, sold, over, under, calls, 5, {"p50": 1.0, "p95": 2.0, "p99": 3.0})


def by_name(strategies: list[tune.Strategy]) -> dict[str, tune.Strategy]:
    return {strategy.name: strategy for strategy in strategies}


def buckets_of(strategy: tune.Strategy) -> dict[str, dict[str, Any]]:
    return {
        name: override.model_dump(exclude_none=True)
        for name, override in (strategy.scenario.settings.buckets or {}).items()
    }


def test_the_template_defaults_are_read_from_the_template() -> None:
    defaults = tune.template_buckets()
    assert set(defaults) == BUCKETS
    assert defaults["fast"]["threshold"] == int(PARAMETERS["FastThreshold"]["Default"])
    assert defaults["slow"]["sweep_rate"] == PARAMETERS["SlowSweepRate"]["Default"]


def test_the_feeds_replay_the_scenario_as_written_with_their_rates() -> None:
    strategies = by_name(tune.strategies(scenario(), tune.template_buckets()))
    assert [name for name in tune.STRATEGIES if name != "tuned"] == list(strategies)
    assert strategies["daily_feed"].feed_rate == "rate(24 hours)"
    assert strategies["update_feed_12h"].feed_rate == "rate(12 hours)"
    assert strategies["daily_feed"].scenario == scenario()
    assert all(strategies[name].feed_rate is None for name in ("realtime", "realtime_thresholds"))


def test_realtime_has_every_threshold_at_zero_and_no_allocation_anywhere() -> None:
    realtime = by_name(tune.strategies(scenario(), tune.template_buckets()))["realtime"]
    buckets = buckets_of(realtime)
    assert set(buckets) == BUCKETS | {"promo"}
    assert {name: settings["threshold"] for name, settings in buckets.items()} == dict.fromkeys(buckets, 0)
    assert not any("allocation_percent" in settings or "allocation_fixed" in settings for settings in buckets.values())
    assert all(sku.allocation_fixed is None and sku.allocation_percent is None for sku in realtime.scenario.skus)
    # What else the scenario wrote stays: the same deployment, only thresholds and allocation differ.
    assert buckets["fast"]["min_units_per_hour"] == 1.5
    assert realtime.scenario.steps == scenario().steps
    assert realtime.scenario.settings.deduction_mode == "merchant"


def test_realtime_thresholds_takes_the_template_defaults_and_a_scenario_bucket_keeps_its_own() -> None:
    thresholds = buckets_of(by_name(tune.strategies(scenario(), tune.template_buckets()))["realtime_thresholds"])
    for bucket in BUCKETS:
        assert thresholds[bucket]["threshold"] == int(PARAMETERS[f"{bucket.capitalize()}Threshold"]["Default"])
    assert thresholds["promo"]["threshold"] == 4
    assert not any("allocation_percent" in settings for settings in thresholds.values())


def test_the_allocation_strategy_keeps_the_scenario_s_allocations() -> None:
    allocated = by_name(tune.strategies(scenario(), tune.template_buckets()))["realtime_thresholds_allocation"]
    buckets = buckets_of(allocated)
    assert buckets["fast"]["allocation_percent"] == 90
    assert buckets["fast"]["threshold"] == int(PARAMETERS["FastThreshold"]["Default"])
    assert {sku.retailer_id: sku.allocation_fixed for sku in allocated.scenario.skus}["CALM"] == 3


def test_without_allocations_the_allocation_strategy_gives_every_bucket_the_default_share() -> None:
    raw = {
        **RAW,
        "settings": {"buckets": {"fast": {"threshold": 2}}},
        "skus": [{k: v for k, v in sku.items() if k != "allocation_fixed"} for sku in RAW["skus"]][:2],
    }
    allocated = by_name(tune.strategies(scenario(raw), tune.template_buckets()))["realtime_thresholds_allocation"]
    shares = {name: settings["allocation_percent"] for name, settings in buckets_of(allocated).items()}
    assert shares == dict.fromkeys(BUCKETS, tune.DEFAULT_ALLOCATION_PERCENT)


def test_a_strategy_changes_nothing_else_of_the_scenario() -> None:
    raw = {**RAW, "platform": {"batch_processing_seconds": 8, "batch_apply_fraction": None}}
    for strategy in tune.strategies(scenario(raw), tune.template_buckets()):
        assert strategy.scenario.platform == scenario(raw).platform, strategy.name
        assert strategy.scenario.platform.batch_apply_fraction is None, strategy.name
        assert [sku.retailer_id for sku in strategy.scenario.skus] == ["HOT", "CALM", "PROMO"]


def test_the_search_covers_the_demand_s_deployment_buckets_only_the_busiest_first() -> None:
    # PROMO has no demand, and promo is no deployment bucket: no parameter could deploy what was found for it.
    assert tune.demand_buckets(scenario()) == ["fast", "medium"]
    assert tune.coordinates(["fast", "medium"]) == [
        ("fast", "threshold"),
        ("fast", "sweep_rate"),
        ("medium", "threshold"),
        ("medium", "sweep_rate"),
    ]


def test_a_step_is_one_unit_of_threshold_or_the_next_sweep_rate_either_way() -> None:
    assert tune.steps("threshold", 3) == [4, 2]
    assert tune.steps("threshold", 0) == [1]
    assert tune.steps("threshold", max(tune.THRESHOLDS)) == [max(tune.THRESHOLDS) - 1]
    assert tune.steps("sweep_rate", "rate(15 minutes)") == ["rate(5 minutes)", "rate(30 minutes)"]
    assert tune.steps("sweep_rate", tune.SWEEP_RATES[0]) == [tune.SWEEP_RATES[1]]
    # A rate off the scale steps to its neighbours on it, by interval.
    assert tune.steps("sweep_rate", "rate(10 minutes)") == ["rate(5 minutes)", "rate(15 minutes)"]
    assert tune.steps("sweep_rate", "rate(2 hours)") == ["rate(1 hour)", "rate(6 hours)"]


def test_the_rule_prefers_fewer_under_sold_units_only_within_the_target() -> None:
    within, beyond = outcome(1000, 5, 30), outcome(1000, 6, 0)
    assert within.meets(0.005) and not beyond.meets(0.005)
    assert tune.select([beyond, within], 0.005) == 1
    assert tune.select([outcome(1000, 0, 30), outcome(1000, 5, 10)], 0.005) == 1
    # A looser target lets the one that sells more win.
    assert tune.select([within, beyond], 0.01) == 1


def test_when_no_candidate_meets_the_target_the_least_over_selling_wins() -> None:
    assert tune.select([outcome(100, 9, 0), outcome(100, 3, 20), outcome(100, 5, 1)], 0.005) == 1


def test_ties_go_to_fewer_over_sold_units_then_fewer_calls_then_the_earlier_candidate() -> None:
    assert tune.select([outcome(1000, 4, 2), outcome(1000, 1, 2)], 0.005) == 1
    assert tune.select([outcome(1000, 1, 2, calls=9), outcome(1000, 1, 2, calls=3)], 0.005) == 1
    assert tune.select([outcome(1000, 1, 2), outcome(1000, 1, 2)], 0.005) == 0
    with pytest.raises(ValueError):
        tune.select([], 0.005)


def _buckets_of(candidate: Scenario) -> dict[str, dict[str, Any]]:
    return {name: override.model_dump(exclude_none=True) for name, override in candidate.settings.buckets.items()}


def recording(
    seen: list[dict[str, Any]], score: Callable[[dict[str, Any]], tune.Outcome]
) -> Callable[[Sequence[tuple[str, Scenario]]], list[tune.Outcome]]:
    """An evaluation that notes each candidate's bucket settings in ``seen`` and scores them with ``score``."""

    def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[tune.Outcome]:
        outcomes = []
        for _name, candidate in candidates:
            seen.append(_buckets_of(candidate))
            outcomes.append(score(seen[-1]))
        return outcomes

    return evaluate


def test_the_search_stays_within_its_budget_and_keeps_what_the_rule_prefers() -> None:
    seen: list[dict[str, Any]] = []

    def score(buckets: dict[str, Any]) -> tune.Outcome:
        # Under-selling grows with the fast threshold; threshold 0 over-sells beyond any target.
        threshold = buckets["fast"]["threshold"]
        return outcome(1000, 50 if threshold == 0 else 0, 10 * threshold)

    evaluate = recording(seen, score)

    found = tune.search(scenario(), tune.template_buckets(), 0.005, 5, evaluate)
    assert found.tried == len(seen) == 5
    assert found.meets_target
    default = int(PARAMETERS["FastThreshold"]["Default"])
    assert seen[0]["fast"]["threshold"] == default
    assert seen[0]["fast"]["sweep_rate"] == PARAMETERS["FastSweepRate"]["Default"]
    # The second start, no threshold anywhere, over-sells here: the search goes on from the defaults.
    assert {settings["threshold"] for settings in seen[1].values()} == {0}
    # The defaults meet the target: the threshold steps down first (it may sell more).
    assert [buckets["fast"]["threshold"] for buckets in seen[2:4]] == [default - 1, default + 1]
    assert found.scenario.settings.buckets["fast"].threshold == default - 1
    assert found.outcome.undersold_units == 10 * (default - 1)
    assert len({repr(buckets) for buckets in seen}) == len(seen), "a candidate was replayed twice"


def test_every_bucket_s_threshold_and_sweep_rate_get_a_turn_before_any_gets_a_second() -> None:
    """A budget of one round: each coordinate's neighbours once, sweep rates included (the old search spent 12
    replays on thresholds before trying a sweep rate)."""
    seen: list[dict[str, Any]] = []

    def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[tune.Outcome]:
        seen.extend(_buckets_of(candidate) for _name, candidate in candidates)
        return [outcome(1000, 0, 5) for _ in candidates]  # nothing is ever better: one round, then stop

    found = tune.search(scenario(), tune.template_buckets(), 0.005, 100, evaluate)
    base = seen[0]
    changed = [
        (bucket, name)
        for buckets in seen[2:]  # after the two starts
        for bucket in ("fast", "medium")
        for name in ("threshold", "sweep_rate")
        if buckets[bucket][name] != base[bucket][name]
    ]
    assert changed == sorted(changed, key=tune.coordinates(["fast", "medium"]).index)
    assert {name for _bucket, name in changed} == {"threshold", "sweep_rate"}
    assert {bucket for bucket, _name in changed} == {"fast", "medium"}
    assert (
        found.tried
        == len(seen)
        == 2 + sum(len(tune.steps(name, base[bucket][name])) for bucket, name in tune.coordinates(["fast", "medium"]))
    )
    assert found.scenario.settings.buckets["fast"].threshold == base["fast"]["threshold"]  # the first of equals


def test_workers_are_refused_outside_their_range(capsys: pytest.CaptureFixture[str]) -> None:
    for workers in ("0", str(tune.MAX_WORKERS + 1)):
        assert main(["tune", "--workers", workers]) == 2
        assert "--workers" in capsys.readouterr().err


def test_the_deploy_line_names_the_template_s_parameters_and_quotes_rates() -> None:
    tuned = tune.with_buckets(
        scenario(), {"fast": {"threshold": 0, "sweep_rate": "rate(5 minutes)", "allocation_percent": 90}, "promo": {}}
    )
    parameters = tune.deploy_parameters(tuned)
    assert parameters == {"DeductionMode": "merchant", "FastSweepRate": "rate(5 minutes)", "FastThreshold": "0"}
    assert all(name in PARAMETERS for name in parameters)
    assert tune.deploy_line(parameters) == (
        'sam deploy --parameter-overrides DeductionMode=merchant FastThreshold=0 FastSweepRate="rate(5 minutes)"'
    )


def test_a_report_becomes_an_outcome_with_a_feed_or_the_product() -> None:
    demand = {"demand": 40, "sold": 30, "over_sold": 2, "under_sold": 3}
    product = {
        "demand": demand,
        "graph_calls": {"items_batch": 4, "commerce_orders": 6},
        "dynamodb_requests": 77,
        # The whole replay's figure weighs the initial publish in; tune reads the one from the first step on.
        "change_to_confirm_seconds": {"count": 9, "p50": 70.0, "p95": 70.0, "p99": 70.0, "max": 70.0},
        "change_to_confirm_seconds_from_first_step": {"count": 3, "p50": 20.0, "p95": 30.0, "p99": 31.0, "max": 31.0},
        "dead_letters": [],
    }
    assert tune.outcome_of(product, feed=False) == tune.Outcome(
        40, 30, 2, 3, 10, 77, {"p50": 20.0, "p95": 30.0, "p99": 31.0}
    )
    feed = {**product, "feed": {"feeds": 2, "change_to_catalog_seconds": None}}
    assert tune.outcome_of(feed, feed=True) == tune.Outcome(40, 30, 2, 3, 2, None, dict.fromkeys(("p50", "p95", "p99")))
    with pytest.raises(ValueError, match="no demand"):
        tune.outcome_of({**product, "demand": None}, feed=False)


def test_the_json_has_every_strategy_and_refuses_strategies_that_played_different_buyers() -> None:
    outcomes = {name: outcome(80, 0, 1) for name in tune.STRATEGIES}
    result = tune.result_json(outcomes, {"FastThreshold": "0"}, 3)
    assert set(result) == {"demand_units", "strategies", "recommended", "candidates_tried"}
    assert result["demand_units"] == 100 and result["candidates_tried"] == 3
    assert list(result["strategies"]) == list(tune.STRATEGIES)
    assert set(result["strategies"]["tuned"]) == {
        "sold_units",
        "oversold_units",
        "undersold_units",
        "graph_calls",
        "dynamodb_requests",
        "staleness_s",
    }
    with pytest.raises(ValueError, match="same demand"):
        tune.result_json({**outcomes, "realtime": outcome(80, 0, 1, demand=99)}, {}, 3)
    with pytest.raises(ValueError, match="missing"):
        tune.result_json({name: outcomes[name] for name in tune.STRATEGIES[:-1]}, {}, 3)
    assert "FastThreshold=0" in tune.render(result, 0.005, meets_target=True)


def test_the_search_starts_from_realtime_thresholds_and_a_replay_already_made_is_not_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = scenario({**RAW, "settings": {}, "skus": RAW["skus"][:2]})  # no bucket of its own
    fixed = {strategy.name: strategy for strategy in tune.strategies(plain, tune.template_buckets())}
    made: list[str] = []

    def replay_outcome(candidate: Scenario, feed_rate: str | None, *, plot: bool = False) -> tune.Outcome:
        made.append(candidate.model_dump_json())
        return outcome(100, 0, 1)

    monkeypatch.setattr(tune, "replay_outcome", replay_outcome)
    with tune.Replayer(1) as replayer:
        replayer.outcomes([(fixed["realtime_thresholds"].scenario, None)])
        first: list[Scenario] = []

        def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[tune.Outcome]:
            first.extend(candidate for _name, candidate in candidates[:1] if not first)
            return replayer.outcomes([(candidate, None) for _name, candidate in candidates])

        replayer.outcomes([(fixed["realtime"].scenario, None)])
        tune.search(plain, tune.template_buckets(), 0.005, 4, evaluate)
    assert first[0] == fixed["realtime_thresholds"].scenario
    # realtime_thresholds and realtime (the two starts, each made once), then the first step's two neighbours
    assert len(made) == len(set(made)) == 4


def test_the_search_goes_on_from_no_threshold_when_that_sells_more_within_the_target() -> None:
    """The shipped week's case: no threshold over-sells nothing and turns nobody away, the defaults turn buyers
    away. The tuned strategy is never worse by the rule than the better start, and steps on from it."""
    seen: list[dict[str, Any]] = []
    evaluate = recording(
        seen, lambda buckets: outcome(1000, 0, 10 * buckets["fast"]["threshold"], calls=100 - len(seen))
    )

    found = tune.search(scenario(), tune.template_buckets(), 0.005, 4, evaluate)
    assert found.outcome.undersold_units == 0
    assert {override.threshold for override in found.scenario.settings.buckets.values()} == {0}
    # From 0 the threshold can only step up; the next coordinate (the fast sweep rate) is then tried from 0 too.
    assert [buckets["fast"]["threshold"] for buckets in seen[2:]] == [1, 0]
    assert found.tried == 4


def test_a_history_s_bucket_floors_are_searched_and_recommended_with_the_template_s_names() -> None:
    """With measured velocities the search also moves each floor (x2, /2), re-bucketing the SKUs: here a lower
    fast floor puts CALM (1.2 units/h) in the fast bucket, which this evaluation rewards."""
    velocities = tune_boundaries.Velocities({"HOT": 3.0, "CALM": 1.2})
    floors = tune.template_floors()
    assert tune_boundaries.bucket_for(1.2, floors) == "medium"
    plain = scenario({**RAW, "settings": {}, "skus": RAW["skus"][:2]})
    seen: list[dict[str, str]] = []

    def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[tune.Outcome]:
        results = []
        for _name, candidate in candidates:
            placed = {sku.retailer_id: str(sku.bucket) for sku in candidate.skus}
            seen.append(placed)
            results.append(outcome(100, 0, 0 if placed["CALM"] == "fast" else 5))
        return results

    found = tune.search(plain, tune.template_buckets(), 0.005, 30, evaluate, velocities=velocities)
    assert found.floors is not None and found.floors["fast"] == floors["fast"] / 2
    assert {sku.retailer_id: sku.bucket for sku in found.scenario.skus}["CALM"] == "fast"
    parameters = tune.deploy_parameters(found.scenario, found.floors)
    assert parameters["FastMinUnitsPerHour"] == f"{floors['fast'] / 2:g}"
    assert all(name in PARAMETERS for name in parameters)
    assert seen[0] == {"HOT": "fast", "CALM": "medium"}  # the template's floors first


def test_floor_steps_keep_the_floors_in_order_and_in_the_template_s_format() -> None:
    floors = {"fast": 2.0, "medium": 0.2, "slow": 0.0}
    assert tune_boundaries.searched_floors(floors) == ["fast", "medium"]
    assert tune_boundaries.floor_steps(floors, "fast") == [4.0, 1.0]
    assert tune_boundaries.floor_steps(floors, "medium") == [0.4, 0.1]
    assert tune_boundaries.floor_steps({"fast": 0.3, "medium": 0.2, "slow": 0.0}, "medium") == [0.1]
    assert tune.deploy_parameters(scenario(), {"fast": 0.000001})["FastMinUnitsPerHour"] == "0.000001"


def test_a_threshold_steps_up_first_while_the_best_misses_the_target() -> None:
    seen: list[int] = []

    def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[tune.Outcome]:
        seen.extend(_buckets_of(candidate)["fast"]["threshold"] for _name, candidate in candidates)
        return [outcome(1000, 50, 0) for _ in candidates]  # over-sells beyond any target, whatever the threshold

    tune.search(scenario(), tune.template_buckets(), 0.005, 3, evaluate)
    default = int(PARAMETERS["FastThreshold"]["Default"])
    assert seen == [default, 0, default + 1]
