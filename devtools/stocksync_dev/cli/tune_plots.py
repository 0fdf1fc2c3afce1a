"""``stocksync tune --plot DIR``: the two pictures issue 15 asks for, as PNG files.

* ``stock_<SKU>.png``: published vs true stock of the hottest demand SKU over simulated hours, one panel per
  strategy (the replay's ``stock_trace``: sampled at each buyer and shipment, so a push that landed between two of
  them shows at the next one). Published is what a platform buyer could order; true is the warehouse's level less
  the units sold and not shipped, below 0 when units were sold that the warehouse lacks.
* ``frontier.png``: per deployment bucket of the demand's SKUs, each candidate the tuned search replayed as a point
  (over-sold units of that bucket's SKUs, under-sold units of them), the candidates no other beats on both joined
  (the frontier), and the recommended one marked.

matplotlib is an optional extra (``pip install -e './devtools[plot]'``): drawing PNG line plots by hand is not worth
it, and nothing else of the project needs it. The data series are plain functions, tested without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksync_dev.cli.scenario import Scenario

# stocksync-dev is installed from this repository, not from a package index (where the name could be anyone's).
INSTALL_HINT = "pip install -e './devtools[plot]' (the plot extra of stocksync-dev, from the repository's root)"


class PlotUnavailableError(RuntimeError):
    """``--plot`` without matplotlib installed."""


def require_matplotlib() -> Any:
    """matplotlib's pyplot on the file-only Agg backend; PlotUnavailableError naming the extra without it."""
    try:
        import matplotlib  # noqa: PLC0415 - an optional extra, imported only when --plot is given

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError:
        raise PlotUnavailableError(f"--plot needs matplotlib, an optional extra: {INSTALL_HINT}") from None
    return pyplot


# -- the data (pure) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockSeries:
    """One strategy's trace as step lines: hours since the replay's start, published and true units."""

    hours: list[float]
    published: list[int]
    true: list[int]


def stock_series(traces: Mapping[str, dict[str, Any] | None]) -> tuple[str | None, dict[str, StockSeries]]:
    """The traced SKU and each strategy's series (strategies without a trace left out). Every strategy replays the
    same scenario, so they trace the same SKU; a mix is refused (ValueError) rather than drawn as one."""
    skus = {trace["retailer_id"] for trace in traces.values() if trace}
    if len(skus) > 1:
        raise ValueError(f"the strategies traced different SKUs: {sorted(skus)}")
    series = {
        name: StockSeries(
            hours=[point[0] / 3600 for point in trace["points"]],
            published=[int(point[1]) for point in trace["points"]],
            true=[int(point[2]) for point in trace["points"]],
        )
        for name, trace in traces.items()
        if trace and trace["points"]
    }
    # A trace keeps a point only on change: every line runs on to the last instant any strategy traced.
    end = max((line.hours[-1] for line in series.values()), default=0.0)
    for line in series.values():
        if line.hours[-1] < end:
            line.hours.append(end)
            line.published.append(line.published[-1])
            line.true.append(line.true[-1])
    return (skus.pop() if skus else None), series


@dataclass(frozen=True)
class FrontierPoint:
    label: str
    oversold: int
    undersold: int
    recommended: bool
    on_frontier: bool


def bucket_of(scenario: Scenario, default_bucket: str) -> dict[str, str]:
    """Each SKU's bucket in the scenario (its own, else the scenario's default, else the deployment's)."""
    fallback = scenario.settings.default_bucket or default_bucket
    return {sku.retailer_id: sku.bucket or fallback for sku in scenario.skus}


def frontier_points(
    candidates: Sequence[tuple[str, Mapping[str, str], Mapping[str, Mapping[str, int]]]], recommended: int
) -> dict[str, list[FrontierPoint]]:
    """Per bucket, one point per candidate: ``candidates`` are (label, SKU -> bucket, the replay's demand
    ``by_sku``); ``recommended`` the index of the chosen one. A point is on the frontier when no other candidate
    over-sells and under-sells no more in that bucket, and less in one of the two."""
    totals: dict[str, list[tuple[int, int]]] = {}
    # Only buckets a buyer came to: the demand figures name the SKUs someone wanted.
    buckets = sorted(
        {sku_buckets[sku] for _label, sku_buckets, by_sku in candidates for sku in by_sku if sku in sku_buckets}
    )
    for bucket in buckets:
        totals[bucket] = []
        for _label, sku_buckets, by_sku in candidates:
            figures = [by_sku[sku] for sku, of in sku_buckets.items() if of == bucket and sku in by_sku]
            totals[bucket].append(
                (sum(int(f.get("over_sold", 0)) for f in figures), sum(int(f.get("under_sold", 0)) for f in figures))
            )
    points: dict[str, list[FrontierPoint]] = {}
    for bucket, pairs in totals.items():
        points[bucket] = [
            FrontierPoint(
                label=candidates[index][0],
                oversold=over,
                undersold=under,
                recommended=index == recommended,
                on_frontier=not any(
                    other_over <= over and other_under <= under and (other_over, other_under) != (over, under)
                    for other_over, other_under in pairs
                ),
            )
            for index, (over, under) in enumerate(pairs)
        ]
    return points


# -- drawing -------------------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_plots(
    folder: Path,
    traces: Mapping[str, dict[str, Any] | None],
    frontier: Mapping[str, list[FrontierPoint]],
) -> list[Path]:
    """Both PNGs into ``folder`` (created); the paths written."""
    pyplot = require_matplotlib()
    from matplotlib import ticker  # noqa: PLC0415 - the optional extra, present once require_matplotlib returned

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sku, series = stock_series(traces)
    if sku is not None and series:
        figure, axes = pyplot.subplots(len(series), 1, sharex=True, figsize=(9, 2.0 * len(series) + 0.8), squeeze=False)
        for axis, (name, line) in zip(axes[:, 0], series.items(), strict=True):
            axis.step(line.hours, line.published, where="post", label="published (platform buyers can order)")
            axis.step(line.hours, line.true, where="post", label="true (warehouse less unshipped)", linestyle="--")
            axis.axhline(0, color="grey", linewidth=0.5)
            axis.set_title(name, fontsize=9, loc="left")
            axis.set_ylabel("units")
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("simulated hours")
        figure.suptitle(f"{sku}: published vs true stock per strategy")
        figure.tight_layout()
        path = folder / f"stock_{_safe(sku)}.png"
        figure.savefig(path, dpi=100)
        pyplot.close(figure)
        written.append(path)
    if frontier:
        figure, axes = pyplot.subplots(1, len(frontier), figsize=(4.5 * len(frontier), 4), squeeze=False)
        for axis, (bucket, points) in zip(axes[0], frontier.items(), strict=True):
            axis.scatter([p.oversold for p in points], [p.undersold for p in points], label="candidates", alpha=0.6)
            edge = sorted((p.oversold, p.undersold) for p in points if p.on_frontier)
            if edge:
                axis.plot([x for x, _ in edge], [y for _, y in edge], linestyle=":", label="frontier")
            for point in points:
                if point.recommended:
                    axis.scatter(
                        [point.oversold], [point.undersold], marker="*", s=250, color="red", label="recommended"
                    )
            # Units are whole: keep a collapsed range (every candidate at 0) from showing fractional ticks.
            axis.set_xlim(-0.5, max(p.oversold for p in points) + 1)
            axis.set_ylim(-0.5, max(p.undersold for p in points) + 1)
            axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            axis.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            axis.set_title(f"bucket {bucket}")
            axis.set_xlabel("over-sold units")
            axis.set_ylabel("under-sold units")
            axis.legend(fontsize=7)
        figure.suptitle("tuned search: over-sold vs under-sold per bucket")
        figure.tight_layout()
        path = folder / "frontier.png"
        figure.savefig(path, dpi=100)
        pyplot.close(figure)
        written.append(path)
    return written


def plot_replays(
    folder: Path,
    replayed: Sequence[tuple[str, Scenario, Mapping[str, Any]]],
    chosen: Scenario,
    strategies: Sequence[str],
    default_bucket: str,
) -> list[Path]:
    """tune's replays drawn: ``replayed`` is every replay in order as (name, scenario, {"trace": the report's
    stock_trace, "demand": its demand figures}), the fixed strategies by their names, the rest the tuned search's
    candidates; ``chosen`` the candidate it recommends (the ``tuned`` panel and the starred point)."""
    traces = {name: figures["trace"] for name, _scenario, figures in replayed if name in strategies}
    candidates = [(name, scenario, figures) for name, scenario, figures in replayed if name not in strategies]
    chosen_index = next((index for index, (_n, scenario, _f) in enumerate(candidates) if scenario == chosen), 0)
    if candidates:
        traces["tuned"] = candidates[chosen_index][2]["trace"]
    frontier = frontier_points(
        [
            (name.split(":")[0], bucket_of(scenario, default_bucket), (figures["demand"] or {}).get("by_sku", {}))
            for name, scenario, figures in candidates
        ],
        chosen_index,
    )
    return write_plots(folder, traces, frontier)


__all__ = [
    "INSTALL_HINT",
    "FrontierPoint",
    "PlotUnavailableError",
    "StockSeries",
    "bucket_of",
    "frontier_points",
    "plot_replays",
    "require_matplotlib",
    "stock_series",
    "write_plots",
]
