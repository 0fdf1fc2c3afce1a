"""``tune --plot``: the data behind the two pictures, the PNGs themselves (the plot extra is installed by
`make setup`), the hottest SKU the replay traces, and a clear exit 2 naming the extra when matplotlib is missing."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stocksync_dev.cli.main import main
from stocksync_dev.cli.scenario import parse_scenario
from stocksync_dev.cli.stock_trace import StockTrace, hottest_sku
from stocksync_dev.cli.tune_plots import (
    INSTALL_HINT,
    PlotUnavailableError,
    bucket_of,
    frontier_points,
    require_matplotlib,
    stock_series,
    write_plots,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIO = {
    "settings": {"default_bucket": "medium"},
    "skus": [
        {"retailer_id": "HOT", "warehouse": 5, "bucket": "fast"},
        {"retailer_id": "CALM", "warehouse": 8},
        {"retailer_id": "IDLE", "warehouse": 8, "bucket": "slow"},
    ],
    "steps": [
        {
            "demand": {
                "minutes": 60,
                "seed": 1,
                "profiles": [
                    {"skus": ["CALM"], "units_per_hour": 3.0},
                    {"skus": ["HOT"], "units_per_hour": 1.0, "spikes": [{"at_minute": 0, "minutes": 10, "factor": 30}]},
                ],
            }
        }
    ],
}


def test_the_hottest_sku_counts_its_spikes() -> None:
    scenario = parse_scenario(SCENARIO)
    assert hottest_sku(scenario) == "HOT"  # 1/h + 10 min x 29: about 5.8 units against CALM's 3
    assert hottest_sku(parse_scenario({**SCENARIO, "steps": [{"run": "pipeline"}]})) is None


def test_the_trace_keeps_a_point_only_when_a_value_changed() -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    values = {"published": 5, "true": 5}
    trace = StockTrace("HOT", origin)
    for seconds, published, true in [(0, 5, 5), (10, 5, 5), (20, 5, 4), (30, 3, 4), (40, 3, 4)]:
        values.update(published=published, true=true)
        trace.record(origin + timedelta(seconds=seconds), lambda _sku: values["published"], lambda _sku: values["true"])
    assert trace.as_dict() == {"retailer_id": "HOT", "points": [[0.0, 5, 5], [20.0, 5, 4], [30.0, 3, 4]]}
    assert StockTrace(None, origin).as_dict() is None

    def gone(retailer_id: str) -> int:
        raise KeyError(retailer_id)

    trace.record(origin + timedelta(seconds=50), gone, lambda _sku: 4)
    assert trace.points[-1] == (50.0, 0, 4)


def test_stock_series_are_hours_and_units_per_strategy() -> None:
    traces = {
        "realtime": {"retailer_id": "HOT", "points": [[0, 5, 5], [1800, 2, 1]]},
        "daily_feed": {"retailer_id": "HOT", "points": [[0, 5, 5], [3600, 5, -1]]},
        "empty": None,
    }
    sku, series = stock_series(traces)
    assert sku == "HOT"
    assert list(series) == ["realtime", "daily_feed"]
    assert series["realtime"].hours == [0.0, 0.5, 1.0]  # run on to the last instant traced
    assert series["realtime"].true == [5, 1, 1]
    assert series["daily_feed"].hours == [0.0, 1.0]
    assert series["daily_feed"].true == [5, -1]
    with pytest.raises(ValueError, match="different SKUs"):
        stock_series({"a": {"retailer_id": "A", "points": []}, "b": {"retailer_id": "B", "points": []}})


def test_the_frontier_is_per_bucket_with_the_recommended_point_marked() -> None:
    buckets = bucket_of(parse_scenario(SCENARIO), "medium")
    assert buckets == {"HOT": "fast", "CALM": "medium", "IDLE": "slow"}
    candidates = [
        ("candidate 1", buckets, {"HOT": {"over_sold": 2, "under_sold": 0}, "CALM": {"over_sold": 0, "under_sold": 1}}),
        ("candidate 2", buckets, {"HOT": {"over_sold": 0, "under_sold": 3}, "CALM": {"over_sold": 0, "under_sold": 1}}),
        ("candidate 3", buckets, {"HOT": {"over_sold": 1, "under_sold": 3}, "CALM": {"over_sold": 1, "under_sold": 1}}),
    ]
    points = frontier_points(candidates, recommended=1)
    assert set(points) == {"fast", "medium"}  # IDLE had no buyer
    fast = points["fast"]
    assert [(p.oversold, p.undersold) for p in fast] == [(2, 0), (0, 3), (1, 3)]
    assert [p.on_frontier for p in fast] == [True, True, False]  # (1, 3) is beaten by (0, 3)
    assert [p.recommended for p in fast] == [False, True, False]
    assert [p.on_frontier for p in points["medium"]] == [True, True, False]


def test_the_pngs_are_written(tmp_path: Path) -> None:
    traces = {
        "realtime": {"retailer_id": "HOT", "points": [[0, 5, 5], [1800, 2, 1]]},
        "tuned": {"retailer_id": "HOT", "points": [[0, 5, 5], [900, 0, 0]]},
    }
    buckets = {"HOT": "fast"}
    frontier = frontier_points(
        [("c1", buckets, {"HOT": {"over_sold": 1, "under_sold": 0}}), ("c2", buckets, {"HOT": {"over_sold": 0}})], 1
    )
    written = write_plots(tmp_path / "plots", traces, frontier)
    assert [path.name for path in written] == ["stock_HOT.png", "frontier.png"]
    for path in written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert path.stat().st_size > 5000  # drawn, not an empty canvas


def test_without_matplotlib_plot_exits_2_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it now raises ImportError
    with pytest.raises(PlotUnavailableError, match=r"devtools\[plot\]"):
        require_matplotlib()
    assert main(["tune", "--plot", str(tmp_path / "plots"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert INSTALL_HINT in captured.err
    assert not (tmp_path / "plots").exists()


def test_tune_s_replays_are_split_into_strategy_panels_and_candidate_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from stocksync_dev.cli import tune_plots

    base = parse_scenario(SCENARIO)
    other = parse_scenario({**SCENARIO, "settings": {"default_bucket": "slow"}})
    trace = {"retailer_id": "HOT", "points": [[0, 5, 5]]}
    demand = {"by_sku": {"HOT": {"over_sold": 1, "under_sold": 0}, "CALM": {"over_sold": 0, "under_sold": 2}}}
    replayed = [
        ("realtime", base, {"trace": {**trace, "points": [[0, 1, 1]]}, "demand": demand}),
        ("candidate 1: fast threshold 3", base, {"trace": trace, "demand": demand}),
        ("candidate 2: fast threshold 0", other, {"trace": {**trace, "points": [[0, 2, 2]]}, "demand": demand}),
    ]
    drawn: dict[str, object] = {}
    monkeypatch.setattr(tune_plots, "write_plots", lambda folder, traces, frontier: drawn.update(t=traces, f=frontier))
    tune_plots.plot_replays(Path("unused"), replayed, other, ("realtime", "tuned"), "medium")
    assert drawn["t"] == {"realtime": {**trace, "points": [[0, 1, 1]]}, "tuned": {**trace, "points": [[0, 2, 2]]}}
    frontier = drawn["f"]
    assert isinstance(frontier, dict)
    assert [(p.label, p.recommended) for p in frontier["fast"]] == [("candidate 1", False), ("candidate 2", True)]
    # CALM has no bucket of its own: the scenario's default (medium, then slow for candidate 2) places it.
    assert set(frontier) == {"fast", "medium", "slow"}
