"""The demand step through `stocksync replay` and the real handlers: every buyer drawn is played and accounted for,
the accounting adds up, sales and shipments reach the product, and the catalog's behaviour shows in the outcome (a
threshold turns buyers away while the warehouse has units; a catalog edited above the warehouse over-sells).
Bad demand exits 2 naming the field before anything starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli import replay
from stocksync_dev.cli.demand import arrivals
from stocksync_dev.cli.main import main
from stocksync_dev.cli.scenario import DemandStep, parse_scenario

WINDOW = 60
SCENARIO: dict[str, Any] = {
    "settings": {
        "deduction_mode": "merchant",
        "buckets": {"tight": {"threshold": 6}, "open": {"threshold": 0}},
    },
    "skus": [
        {"retailer_id": "THRESH", "warehouse": 10, "bucket": "tight"},
        {"retailer_id": "RUN-OUT", "warehouse": 3, "bucket": "open"},
        {"retailer_id": "PLENTY", "warehouse": 40, "bucket": "open"},
        {"retailer_id": "EMPTY", "warehouse": 0, "bucket": "open"},
    ],
    "steps": [
        # Facebook/Instagram only, nothing ships: the threshold publishes 0 while units remain in the warehouse.
        {
            "demand": {
                "minutes": WINDOW,
                "seed": 11,
                "platform_share": 1.0,
                "profiles": [{"skus": ["THRESH"], "units_per_hour": 30.0}],
            }
        },
        # Someone sets EMPTY to 5 units in Commerce Manager: the platform sells what it shows, the warehouse has none.
        {"catalog_edit": {"EMPTY": {"units": 5}}},
        {
            "demand": {
                "minutes": WINDOW,
                "seed": 7,
                "platform_share": 0.5,
                "profiles": [
                    {"skus": ["RUN-OUT", "EMPTY"], "units_per_hour": 20.0},
                    {
                        "skus": ["PLENTY"],
                        "units_per_hour": 4.0,
                        "spikes": [{"at_minute": 20, "minutes": 10, "factor": 5}],
                    },
                ],
                "ship_after_minutes": 10,
            }
        },
        {"run": "pipeline"},
    ],
}
INITIAL = {sku["retailer_id"]: sku["warehouse"] for sku in SCENARIO["skus"]}


def write(tmp_path: Path, scenario: dict[str, Any]) -> str:
    path = tmp_path / "demand.json"
    path.write_text(json.dumps(scenario))
    return str(path)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One replay for the module's checks (a replay costs seconds; its report is read, never changed)."""
    import contextlib
    import io

    path = write(tmp_path_factory.mktemp("demand"), SCENARIO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["replay", path, "--json"])
    answer = json.loads(out.getvalue())
    answer["exit_code"] = code
    return answer


def test_the_replay_succeeds_and_every_drawn_buyer_is_accounted_for(report: dict[str, Any]) -> None:
    assert report["exit_code"] == 0, report["catalog_differs_from_a"]
    assert report["dead_letters"] == []
    demand = report["demand"]
    drawn = [step.demand for step in parse_scenario(SCENARIO).steps if isinstance(step, DemandStep)]
    assert demand["steps"] == 2
    assert demand["demand"] == sum(len(arrivals(spec)) for spec in drawn) > 0
    per_sku: dict[str, int] = {}
    for spec in drawn:
        for arrival in arrivals(spec):
            per_sku[arrival.retailer_id] = per_sku.get(arrival.retailer_id, 0) + 1
    assert {sku: figures["demand"] for sku, figures in demand["by_sku"].items()} == per_sku
    # Demand turned away by the platform is counted here, not among the scenario's refused orders.
    assert report["refused_orders"] == []


def test_the_accounting_adds_up_for_every_sku_and_in_total(report: dict[str, Any]) -> None:
    demand = report["demand"]
    for name, figures in [("total", demand), *demand["by_sku"].items()]:
        assert figures["demand"] == figures["sold"] + figures["turned_away"], name
        assert figures["sold"] == figures["sold_platform"] + figures["sold_web"], name
        assert figures["turned_away"] == figures["under_sold"] + figures["turned_away_correctly"], name
        assert figures["over_sold"] <= figures["sold"], name
    for field in ("demand", "sold_platform", "sold_web", "over_sold", "under_sold", "turned_away_correctly"):
        assert demand[field] == sum(figures[field] for figures in demand["by_sku"].values()), field
    for retailer_id, figures in demand["by_sku"].items():
        # Units sold while the warehouse still had one can never exceed what it held (no step restocks here).
        assert figures["sold"] - figures["over_sold"] <= INITIAL[retailer_id], retailer_id


def test_a_sku_with_nothing_in_the_warehouse_is_only_over_sold_or_turned_away_correctly(
    report: dict[str, Any],
) -> None:
    empty = report["demand"]["by_sku"]["EMPTY"]
    assert empty["under_sold"] == 0
    assert empty["sold_web"] == 0  # the web shop sells what the warehouse has
    assert empty["over_sold"] == empty["sold"] == empty["sold_platform"]
    assert empty["over_sold"] >= 1  # the edited catalog showed units the warehouse never had
    assert empty["shipped"] == 0 and empty["unfilled"] == empty["sold"]


def test_a_sku_that_runs_out_turns_buyers_away(report: dict[str, Any]) -> None:
    run_out = report["demand"]["by_sku"]["RUN-OUT"]
    assert run_out["demand"] > INITIAL["RUN-OUT"]  # the seed asks for more than the warehouse holds
    assert run_out["turned_away"] >= run_out["demand"] - INITIAL["RUN-OUT"] - run_out["over_sold"]
    assert run_out["turned_away"] > 0


def test_a_threshold_turns_platform_buyers_away_while_the_warehouse_has_units(report: dict[str, Any]) -> None:
    thresh = report["demand"]["by_sku"]["THRESH"]
    assert thresh["sold_web"] == 0 and thresh["turned_away_web"] == 0  # platform_share 1.0
    assert 0 < thresh["sold_platform"] < INITIAL["THRESH"]
    assert thresh["under_sold"] > 0 and thresh["turned_away_correctly"] == 0 and thresh["over_sold"] == 0
    assert report["catalog"]["THRESH"]["units"] == 0  # A is at or under the threshold: the catalog shows 0
    # Nothing ships in that step: the orders stay pending on the product's books (CREATED on the platform).
    assert report["skus"]["THRESH"]["C"] == thresh["sold_platform"]
    assert report["skus"]["THRESH"]["I"] == INITIAL["THRESH"]


def test_the_stock_trace_follows_the_hottest_sku_and_shows_the_threshold_hiding_units(report: dict[str, Any]) -> None:
    trace = report["stock_trace"]
    assert trace["retailer_id"] == "THRESH"  # 30 units an hour, the most expected
    points = trace["points"]
    trues = [true for _seconds, _published, true in points]
    assert [seconds for seconds, _p, _t in points] == sorted(seconds for seconds, _p, _t in points)
    # Nothing of THRESH ships: its true stock only falls, from the warehouse's 10 by each unit sold.
    assert trues[0] == INITIAL["THRESH"]
    assert trues == sorted(trues, reverse=True)
    assert trues[-1] == INITIAL["THRESH"] - report["demand"]["by_sku"]["THRESH"]["sold"]
    # The threshold at work, as the plot shows it: platform buyers see 0 while the warehouse still has units.
    assert any(published == 0 and true > 0 for _seconds, published, true in points)


def test_shipments_lower_the_warehouse_level_and_settle_the_orders(report: dict[str, Any]) -> None:
    for retailer_id in ("RUN-OUT", "PLENTY", "EMPTY"):
        figures, sku = report["demand"]["by_sku"][retailer_id], report["skus"][retailer_id]
        assert figures["shipped"] + figures["unfilled"] == figures["sold"], retailer_id
        assert sku["I"] == INITIAL[retailer_id] - figures["shipped"], retailer_id
        assert (sku["P"], sku["C"]) == (0, 0), retailer_id
    assert report["demand"]["by_sku"]["PLENTY"]["shipped"] > 0


@pytest.fixture
def nothing_may_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the replay started although the scenario is invalid")

    monkeypatch.setattr(replay, "local_stack", refuse)


def with_demand(**changes: Any) -> dict[str, Any]:
    demand = {**SCENARIO["steps"][2]["demand"], **changes}
    return {**SCENARIO, "steps": [SCENARIO["steps"][0], SCENARIO["steps"][1], {"demand": demand}]}


def first_profile(**changes: Any) -> list[dict[str, Any]]:
    profiles = SCENARIO["steps"][2]["demand"]["profiles"]
    return [{**profiles[0], **changes}, *profiles[1:]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"minutes": 0}, "steps[2].demand.minutes"),
        ({"minutes": -30}, "steps[2].demand.minutes"),
        ({"platform_share": 1.5}, "steps[2].demand.platform_share"),
        ({"profiles": first_profile(units_per_hour=-2.0)}, "steps[2].demand.profiles[0].units_per_hour"),
        ({"profiles": first_profile(skus=["RUN-OUT", "GHOST"])}, "steps[2].demand.profiles[0].skus[1]"),
        (
            {"profiles": first_profile(spikes=[{"at_minute": 55, "minutes": 10, "factor": 3}])},
            "steps[2].demand.profiles[0].spikes[0].minutes",
        ),
    ],
)
def test_bad_demand_exits_2_naming_the_field_before_anything_runs(
    changes: dict[str, Any], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_may_start: None
) -> None:
    assert main(["replay", write(tmp_path, with_demand(**changes))]) == 2
    captured = capsys.readouterr()
    assert field + ":" in captured.err
    assert captured.out == ""
