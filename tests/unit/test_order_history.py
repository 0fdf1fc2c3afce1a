"""Order histories for ``stocksync tune HISTORY``: the formats read, velocity and spikes measured, buckets given by the
deployment's own rule, and every bad input refused naming the file, the row and the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stocksync.dal.codec import encode
from stocksync.logic import bucketing
from stocksync.models.settings import BucketSettings
from stocksync_dev.cli import order_history
from stocksync_dev.cli.demand import arrivals
from stocksync_dev.cli.main import main
from stocksync_dev.cli.order_history import (
    HistoryError,
    Sale,
    is_order_history,
    measure,
    read_history,
    read_stock,
    scenario_from_history,
    template_bucket_floors,
)
from stocksync_dev.cli.scenario import DemandStep
from stocksync_dev.local.template import load_template

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HEADER = "order_id,placed_at,retailer_id,quantity,channel\n"


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def sale(minute: float, sku: str = "A", quantity: int = 1, channel: Any = None) -> Sale:
    return Sale(f"o{minute}-{sku}", START + timedelta(minutes=minute), sku, quantity, channel)


# -- reading -------------------------------------------------------------------------------------------------


def test_a_csv_export_is_read_with_utc_times_and_channels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + "1,2026-11-27T09:15:00Z,HOT,2,facebook\n"
        + "2,2026-11-27T11:30:00+02:00,CALM,1,web\n"
        + "3,2026-11-27T09:20:00Z,HOT,1,\n",
    )
    sales = read_history(path)
    assert sales == [
        Sale("1", datetime(2026, 11, 27, 9, 15, tzinfo=UTC), "HOT", 2, "platform"),
        Sale("2", datetime(2026, 11, 27, 9, 30, tzinfo=UTC), "CALM", 1, "web"),
        Sale("3", datetime(2026, 11, 27, 9, 20, tzinfo=UTC), "HOT", 1, None),
    ]
    assert all(item.placed_at.tzinfo is UTC for item in sales)


def test_a_json_export_is_read_as_a_list_or_under_orders(tmp_path: Path) -> None:
    lines = [{"order_id": "1", "placed_at": "2026-11-27T09:15:00Z", "retailer_id": "HOT", "quantity": 3}]
    assert read_history(write(tmp_path, "a.json", lines)) == read_history(write(tmp_path, "b.json", {"orders": lines}))
    assert read_history(write(tmp_path, "a.json", lines))[0].quantity == 3


def ledger_item(order_id: str, placed_at: str, source: str, lines: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """A ledger row as dal/ledger_table.py's row_to_item stores it."""
    return {
        "order_id": order_id,
        "part": 0,
        "parts": 1,
        "source": source,
        "state": "CREATED",
        "synced": False,
        "sold_on_platform": source == "meta_commerce",
        "lines": {sku: {"ordered": o, "cancelled": c, "restocked": r} for sku, (o, c, r) in lines.items()},
        "placed_at": placed_at,
        "seen_at": placed_at,
        "revision": 1,
        "updated_at": placed_at,
    }


def test_a_ledger_export_is_read_typed_as_aws_dynamodb_scan_prints_it_or_plain(tmp_path: Path) -> None:
    items = [
        ledger_item("m1", "2026-11-27T09:15:00+00:00", "meta_commerce", {"HOT": (2, 1, 0), "CALM": (1, 0, 0)}),
        ledger_item("w1", "2026-11-27T10:00:00+00:00", "events", {"HOT": (1, 0, 0)}),
        {**ledger_item("n1", "2026-11-27T10:00:00+00:00", "warehouse", {}), "placed_at": None},
    ]
    typed = write(tmp_path, "scan.json", {"Items": [encode(item) for item in items], "Count": 3})
    plain = write(tmp_path, "plain.json", items)
    expected = [
        Sale("m1", datetime(2026, 11, 27, 9, 15, tzinfo=UTC), "CALM", 1, "platform"),
        Sale("m1", datetime(2026, 11, 27, 9, 15, tzinfo=UTC), "HOT", 2, "platform"),  # ordered: cancelled still wanted
        Sale("w1", datetime(2026, 11, 27, 10, 0, tzinfo=UTC), "HOT", 1, "web"),
    ]
    assert read_history(typed) == expected
    assert read_history(plain) == expected


def test_a_ledger_row_without_placed_at_is_timed_when_the_product_saw_it(tmp_path: Path) -> None:
    item = {
        **ledger_item("w1", "", "events", {"A": (1, 0, 0)}),
        "placed_at": None,
        "seen_at": "2026-11-27T10:05:00+00:00",
    }
    assert read_history(write(tmp_path, "l.json", [item]))[0].placed_at == datetime(2026, 11, 27, 10, 5, tzinfo=UTC)


def test_a_history_is_told_from_a_scenario(tmp_path: Path) -> None:
    assert is_order_history(write(tmp_path, "h.csv", HEADER))
    assert is_order_history(write(tmp_path, "h.json", []))
    assert is_order_history(write(tmp_path, "l.json", {"Items": []}))
    assert not is_order_history(write(tmp_path, "s.json", {"skus": [], "steps": []}))


@pytest.mark.parametrize(
    ("name", "content", "named"),
    [
        ("h.csv", HEADER, "the order history is empty"),
        ("h.csv", "", "the order history is empty"),
        ("h.json", " \n", "the order history is empty"),
        ("h.json", [], "the order history is empty"),
        ("h.json", {"Items": []}, "the order history is empty"),
        ("h.csv", "order_id,retailer_id,quantity\n1,A,1\n", "no column placed_at"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,2,web\n2,yesterday,A,1,web\n", "row 3.placed_at: 'yesterday'"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00,A,1,web\n", "row 2.placed_at: '2026-11-27T09:15:00' has no UTC"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,two,web\n", "row 2.quantity: 'two' is not a whole number"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,-3,web\n", "row 2.quantity: -3 units"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,0,web\n", "row 2.quantity: 0 units"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,1.5,web\n", "row 2.quantity: '1.5'"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,,1,web\n", "row 2.retailer_id: missing"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,1,fax\n", "row 2.channel: unknown channel 'fax'"),
        ("h.csv", HEADER + "1,2026-11-27T09:15:00Z,A,1,web,extra\n", "row 2: more fields"),
        (
            "h.json",
            [{"order_id": "1", "placed_at": "2026-11-27T09:15:00Z", "retailer_id": "A", "quantity": True}],
            "[0].quantity",
        ),
        (
            "h.json",
            {"Items": [{"order_id": {"S": "1"}, "lines": {"M": {}}, "part": {"N": "0"}}, {"lines": {"M": {}}}]},
            "Items[1].order_id",
        ),
        ("h.json", [{**ledger_item("m1", "", "events", {"A": (1, 0, 0)}), "seen_at": None}], "[0].seen_at: missing"),
        ("h.json", [ledger_item("m1", "2026-11-27T09:15:00Z", "events", {"A": (-1, 0, 0)})], "[0].lines.A.ordered: -1"),
        ("h.json", "{oops", "not valid JSON"),
        ("h.json", {"rows": []}, "expected a list of order lines"),
    ],
)
def test_bad_histories_are_refused_naming_the_file_row_and_field(
    tmp_path: Path, name: str, content: Any, named: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(HistoryError) as caught:
        read_history(path)
    assert str(path) in str(caught.value)
    assert named in str(caught.value)


def test_stock_lists_are_read_and_bad_ones_refused(tmp_path: Path) -> None:
    assert read_stock(write(tmp_path, "s.csv", "retailer_id,warehouse\nA,5\nB,0\n")) == {"A": 5, "B": 0}
    assert read_stock(write(tmp_path, "s.json", {"A": 5})) == {"A": 5}
    for content, named in [
        ("retailer_id,warehouse\nA,-1\n", "row 2.warehouse: -1"),
        ("retailer_id,warehouse\nA,lots\n", "row 2.warehouse: 'lots'"),
        ("retailer_id,warehouse\nA,1\nA,2\n", "A is listed twice"),
        ("sku,units\nA,1\n", "must name retailer_id and warehouse"),
    ]:
        with pytest.raises(HistoryError, match=named):
            read_stock(write(tmp_path, "bad.csv", content))


# -- measuring -----------------------------------------------------------------------------------------------


def test_velocity_is_units_per_hour_over_the_history_s_whole_hours() -> None:
    # 09:10 to 11:50: three whole hours (09, 10, 11).
    measured = measure([sale(10, quantity=2), sale(100), sale(170, "B", 3)], spike_factor=5)
    assert measured.start == START
    assert measured.hours == 3
    assert measured.skus["A"].units == 3
    assert measured.skus["A"].units_per_hour == pytest.approx(1.0)
    assert measured.skus["B"].units_per_hour == pytest.approx(1.0)
    assert measured.skus["A"].spikes == ()
    assert measured.platform_share is None  # no channel named


def test_an_hour_far_above_the_mean_is_a_spike_and_the_base_rate_is_the_other_hours() -> None:
    calm = [sale(hour * 60 + 5) for hour in range(10)]  # 1 unit every hour for 10 hours
    rush = [sale(4 * 60 + 10 + minute) for minute in range(30)]  # 30 more in hour 4
    measured = measure(calm + rush, spike_factor=5)
    sku = measured.skus["A"]
    assert sku.units_per_hour == pytest.approx(4.0)  # 40 units / 10 hours: 31 in hour 4 > 5 x 1 in the others
    assert [(spike.hour, spike.units) for spike in sku.spikes] == [(4, 31)]
    assert sku.base_units_per_hour == pytest.approx(1.0)  # the other 9 hours, 1 unit each
    assert sku.spikes[0].factor == pytest.approx(31.0)
    # A higher factor finds none.
    assert measure(calm + rush, spike_factor=31).skus["A"].spikes == ()


def test_a_spike_is_measured_against_the_other_hours_not_a_mean_it_raises() -> None:
    # 2 units an hour for 6 hours, 30 in hour 2: the mean over all (about 6.7) times 5 is above 30, the other
    # hours' rate (2) times 5 is not.
    sales = [sale(hour * 60 + minute) for hour in range(6) if hour != 2 for minute in (5, 35)]
    sales += [sale(120 + minute) for minute in range(30)]
    spikes = measure(sales, spike_factor=5).skus["A"].spikes
    assert [(spike.hour, spike.units) for spike in spikes] == [(2, 30)]
    assert spikes[0].factor == pytest.approx(15.0)


def test_a_history_of_one_hour_has_no_spikes() -> None:
    assert measure([sale(minute) for minute in range(40)]).skus["A"].spikes == ()


def test_a_few_units_in_one_hour_of_a_slow_sku_are_not_a_spike() -> None:
    measured = measure([sale(5), sale(6), sale(9 * 60 + 5, "B")], spike_factor=5)
    assert measured.skus["A"].spikes == ()  # 2 units in an hour, above 5 x 0.2/h but below MIN_SPIKE_UNITS


def test_a_sku_that_sold_only_in_its_spike_keeps_its_mean_as_its_base_rate() -> None:
    measured = measure([sale(5 + minute) for minute in range(20)] + [sale(9 * 60 + 5, "B")], spike_factor=5)
    sku = measured.skus["A"]
    assert [spike.hour for spike in sku.spikes] == [0]
    assert sku.base_units_per_hour == sku.units_per_hour == pytest.approx(2.0)


def test_the_platform_share_is_measured_in_units() -> None:
    measured = measure([sale(1, quantity=3, channel="platform"), sale(2, channel="web"), sale(3)])
    assert measured.platform_share == pytest.approx(0.75)


def test_buckets_come_from_the_deployment_s_rule_with_the_template_s_floors(monkeypatch: pytest.MonkeyPatch) -> None:
    parameters = load_template()["Parameters"]
    buckets, hysteresis = template_bucket_floors()
    assert buckets["fast"].min_units_per_hour == float(parameters["FastMinUnitsPerHour"]["Default"])
    assert hysteresis == float(parameters["BucketHysteresis"]["Default"])
    # 3 units/h: fast (floor 2); 0.5: medium (0.2); 0.1: slow.
    sales = [sale(minute) for minute in range(0, 600, 20)] + [sale(1, "M"), sale(2, "M"), sale(3, "M")]
    sales += [sale(5, "M"), sale(6, "M"), sale(7, "S")]
    measured = measure(sales)
    assert measured.hours == 10
    assert {sku: velocity.bucket for sku, velocity in measured.skus.items()} == {
        "A": "fast",
        "M": "medium",
        "S": "slow",
    }
    # The rule is the product's, not a copy: changing it changes the buckets.
    calls: list[tuple[Any, ...]] = []

    def spy(current: Any, velocity: float, given: Any, *, hysteresis: float) -> str:
        calls.append((current, velocity))
        return "slow"

    monkeypatch.setattr(order_history, "assign_bucket", spy)
    assert {velocity.bucket for velocity in measure(sales).skus.values()} == {"slow"}
    assert (None, pytest.approx(3.0)) in calls
    assert order_history.assign_bucket is not bucketing.assign_bucket


def test_given_floors_override_the_template_s() -> None:
    floors = {"hot": BucketSettings(min_units_per_hour=100), "cold": BucketSettings()}
    measured = measure([sale(1)], buckets=floors, hysteresis=0.2)
    assert measured.skus["A"].bucket == "cold"


def test_a_spike_factor_of_1_or_less_is_refused() -> None:
    with pytest.raises(HistoryError, match="--spike-factor"):
        measure([sale(1)], spike_factor=1)
    with pytest.raises(HistoryError, match="--spike-factor"):
        measure([sale(1)], spike_factor=float("nan"))


# -- the scenario --------------------------------------------------------------------------------------------


def test_the_scenario_replays_the_measured_demand_with_its_buckets_and_levels() -> None:
    calm = [sale(hour * 60 + 5, channel="web") for hour in range(4)]
    rush = [sale(2 * 60 + 10 + minute, channel="platform") for minute in range(20)]
    measured = measure([*calm, *rush, sale(30, "B", channel="web")], spike_factor=3)
    scenario = scenario_from_history(measured, seed=7)
    skus = {sku.retailer_id: sku for sku in scenario.skus}
    assert {sku: (entry.warehouse, entry.bucket) for sku, entry in skus.items()} == {
        "A": (24, "fast"),  # default level: the units it sold
        "B": (1, "medium"),
    }
    demand = scenario.steps[0]
    assert isinstance(demand, DemandStep)
    assert demand.demand.minutes == 4 * 60
    assert demand.demand.seed == 7
    assert demand.demand.platform_share == pytest.approx(20 / 25)
    profile = next(profile for profile in demand.demand.profiles if profile.skus == ["A"])
    assert profile.units_per_hour == pytest.approx(1.0)
    assert [(spike.at_minute, spike.minutes) for spike in profile.spikes] == [(120.0, 60.0)]
    assert profile.spikes[0].factor == pytest.approx(21.0)
    # The buyers drawn from it come to about what the history sold (a seeded draw, not a timed check).
    drawn = [arrival for arrival in arrivals(demand.demand) if arrival.retailer_id == "A"]
    assert 10 <= len(drawn) <= 45


def test_a_stock_list_sets_the_levels_adds_skus_and_refuses_unknown_ones() -> None:
    measured = measure([sale(1), sale(2, "B")])
    scenario = scenario_from_history(measured, stock={"A": 9, "B": 0, "C": 4})
    assert {sku.retailer_id: (sku.warehouse, sku.bucket) for sku in scenario.skus} == {
        "A": (9, "medium"),
        "B": (0, "medium"),
        "C": (4, None),  # no demand: the deployment's default bucket
    }
    with pytest.raises(HistoryError, match=r"orders.csv: unknown SKUs \(not in the --stock list\): B"):
        scenario_from_history(measured, stock={"A": 9}, source="orders.csv")


def test_a_history_that_cannot_be_simulated_is_refused_naming_it() -> None:
    week = measure([sale(0), sale(8 * 24 * 60)])
    with pytest.raises(HistoryError, match=r"orders\.csv: spans 193 hours"):
        scenario_from_history(week, source="orders.csv")
    too_fast = measure([sale(minute / 10, quantity=1) for minute in range(590)] + [sale(59, quantity=400)])
    with pytest.raises(HistoryError, match=r"orders.csv: its demand cannot be simulated: steps\[0\].demand"):
        scenario_from_history(too_fast, source="orders.csv")


# -- through the command -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "arguments", "named"),
    [
        ({"h.csv": HEADER}, [], "the order history is empty"),
        ({"h.csv": HEADER + "1,2026-11-27T09:15:00Z,A,x,web\n"}, [], "row 2.quantity"),
        (
            {"h.csv": HEADER + "1,2026-11-27T09:15:00Z,A,1,web\n", "s.csv": "retailer_id,warehouse\nB,1\n"},
            ["--stock", "STOCK"],
            "unknown SKUs",
        ),
        (
            {"h.csv": HEADER + "1,2026-11-27T09:15:00Z,A,1,web\n", "s.csv": "retailer_id,warehouse\nA,-2\n"},
            ["--stock", "STOCK"],
            "row 2.warehouse",
        ),
        ({"h.csv": HEADER + "1,2026-11-27T09:15:00Z,A,1,web\n"}, ["--spike-factor", "-2"], "--spike-factor"),
        ({"h.csv": HEADER + "1,2026-11-27T09:15:00Z,A,1,web\n2,2026-12-05T09:15:00Z,A,1,web\n"}, [], "spans 193 hours"),
    ],
)
def test_tune_exits_2_on_a_bad_history_naming_it_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], arguments: list[str], named: str
) -> None:
    paths = {name: write(tmp_path, name, content) for name, content in files.items()}
    extra = [str(paths["s.csv"]) if argument == "STOCK" else argument for argument in arguments]
    assert main(["tune", str(paths["h.csv"]), "--json", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert named in captured.err


def test_tune_refuses_a_stock_list_with_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, "s.json", {"skus": [{"retailer_id": "A", "warehouse": 1}], "steps": []})
    stock = write(tmp_path, "stock.csv", "retailer_id,warehouse\nA,1\n")
    assert main(["tune", str(scenario), "--stock", str(stock)]) == 2
    assert "--stock: only with an order history" in capsys.readouterr().err


def test_tune_refuses_negative_or_unparseable_rates_in_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {
        "skus": [{"retailer_id": "A", "warehouse": 1}],
        "steps": [{"demand": {"minutes": 10, "seed": 1, "profiles": [{"skus": ["A"], "units_per_hour": -1.0}]}}],
    }
    path = write(tmp_path, "neg.json", base)
    assert main(["tune", str(path)]) == 2
    assert "steps[0].demand.profiles[0].units_per_hour" in capsys.readouterr().err
    base["steps"][0]["demand"]["profiles"][0]["units_per_hour"] = "fast"
    path = write(tmp_path, "text.json", base)
    assert main(["tune", str(path)]) == 2
    assert "steps[0].demand.profiles[0].units_per_hour" in capsys.readouterr().err
    base["steps"][0]["demand"]["profiles"][0]["units_per_hour"] = 1.0
    base["settings"] = {"buckets": {"fast": {"sweep_rate": "every 5 minutes"}}}
    path = write(tmp_path, "sweep.json", base)
    assert main(["tune", str(path)]) == 2
    assert "settings.buckets.fast.sweep_rate" in capsys.readouterr().err


def test_the_shipped_sample_history_measures_its_flash_sale() -> None:
    folder = Path(__file__).resolve().parents[2] / "events" / "histories"
    measured = measure(read_history(folder / "flash_sale_orders.csv"))
    assert measured.hours == 6
    red = measured.skus["SCARF-RED"]
    assert (red.bucket, [spike.hour for spike in red.spikes]) == ("fast", [2])  # the 10:00 flash sale
    scenario = scenario_from_history(measured, stock=read_stock(folder / "flash_sale_stock.csv"))
    assert {sku.retailer_id for sku in scenario.skus} == {*measured.skus, "MUG-03"}  # MUG-03 sold nothing
