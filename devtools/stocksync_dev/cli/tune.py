"""``stocksync tune``: strategies side by side on the same buyers, and the deployment settings that sell best.

    stocksync tune                                      # the shipped events/scenarios/tune/flash_sale_week.json
    stocksync tune my_week.json --target 0.01 --json   # exactly one JSON object on stdout
    stocksync tune orders.csv --stock stock.csv        # an order history: velocity per SKU measured first
    stocksync tune --plot plots/ --samconfig samconfig.toml --config-env prod

Every strategy is a full replay of the scenario (``stocksync replay --in-process``) in a fresh local stack, with the
same demand step and seed, so the same buyers arrive at the same instants and only what each catalog let them buy
differs (issue 15):

``daily_feed``, ``update_feed_12h``
    No stocksync: a replace feed sets every product to what the warehouse can still sell, at the start and then
    every 24 h / 12 h of simulated time (replay_scenario's ``feed_rate``). Same buyers, same shipping.
``realtime``
    The scenario as written, every bucket's threshold 0 and no allocation (bucket or SKU).
``realtime_thresholds``
    The same with the thresholds template.yaml gives each deployment bucket (FastThreshold...; a bucket only the
    scenario declares keeps its own threshold).
``realtime_thresholds_allocation``
    The same plus the scenario's allocations, or, when it has none, ``allocation_percent`` 80 on every bucket (a
    fifth of the stock kept for the web shop): the template gives buckets none, so some default had to be chosen.
``tuned``
    A bounded coordinate search over the buckets the demand step's SKUs are in, from the better (by the rule below)
    of the template's defaults and the same with every threshold 0, the busiest bucket first: for each bucket its
    threshold, then its sweep rate, the values one step either side of the current one are replayed side by side
    (``--workers`` at a time) and the best of the three is kept; rounds
    repeat until a round changes nothing or ``--candidates`` replays were made. Every bucket's threshold and sweep
    rate get a turn before any gets a second (a budget spent on thresholds alone never tried a sweep rate). From an
    order history the bucket floors are coordinates too (cli/tune_boundaries.py: a scenario names its SKUs'
    buckets, a history's SKUs are bucketed by their measured velocity, so there the floors are a setting). The
    rule: the fewest under-sold units among candidates whose over-sold units are at most ``--target`` times the
    units sold; when none meets the target, the fewest over-sold units (the report says so).

An order history (a CSV or JSON export of orders, or an export of the product's ledger; cli/order_history.py says
the formats) is turned into such a scenario first: each SKU's velocity and spikes measured, its bucket the one the
deployment's rule gives that velocity. ``--plot DIR`` draws PNGs (cli/tune_plots.py, the ``plot`` extra);
``--samconfig PATH --config-env NAME`` merges the recommendation into that environment's ``parameter_overrides``
(cli/samconfig_writer.py).

Exit status: 0; 1 when a replay left a dead letter; 2 on bad input (a target outside (0, 1), a scenario that is not
there, invalid, or without a demand step, a history that is empty, unparseable, names SKUs --stock does not, or
whose demand cannot be simulated, --plot without matplotlib, a samconfig that cannot be edited safely): nothing has
run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stocksync_dev.cli.order_history import (
    DEFAULT_SEED,
    DEFAULT_SPIKE_FACTOR,
    HistoryError,
    Sale,
    is_order_history,
    measure,
    read_history,
    read_ledger_table,
    read_stock,
    scenario_from_history,
)
from stocksync_dev.cli.parameter_names import bucket_parameter, setting_parameter
from stocksync_dev.cli.replay import _logs_to_stderr, deployment_buckets, replay_scenario
from stocksync_dev.cli.samconfig_writer import SamconfigError, updated_text, write_parameter_overrides
from stocksync_dev.cli.scenario import DemandStep, Scenario, ScenarioError, load_scenario
from stocksync_dev.cli.schedules import interval_seconds
from stocksync_dev.cli.tune_boundaries import Velocities, floor_steps, rebucketed, searched_floors
from stocksync_dev.cli.tune_plots import PlotUnavailableError, plot_replays, require_matplotlib
from stocksync_dev.local.template import REPO_ROOT, load_template

COMMAND = "tune"
HELP = "compare catalog strategies on the same simulated buyers and recommend bucket settings"
DEFAULT_SCENARIO = REPO_ROOT / "events" / "scenarios" / "tune" / "flash_sale_week.json"
DEFAULT_TARGET = 0.005
DEFAULT_CANDIDATES = 10
MAX_WORKERS = 4
DEFAULT_WORKERS = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
THRESHOLDS = tuple(range(0, 9))
SWEEP_RATES = (
    "rate(2 minutes)",
    "rate(5 minutes)",
    "rate(15 minutes)",
    "rate(30 minutes)",
    "rate(1 hour)",
    "rate(6 hours)",
)
DEFAULT_ALLOCATION_PERCENT = 80
FEEDS = {"daily_feed": "rate(24 hours)", "update_feed_12h": "rate(12 hours)"}
STRATEGIES = (
    "daily_feed",
    "update_feed_12h",
    "realtime",
    "realtime_thresholds",
    "realtime_thresholds_allocation",
    "tuned",
)
ALLOCATION_KEYS = ("allocation_percent", "allocation_fixed")
BucketSettings = dict[str, dict[str, Any]]


class TuneInputError(ValueError):
    """Bad input to the command, naming it; exit 2 before anything runs."""


@dataclass(frozen=True)
class Strategy:
    """A scenario to replay, and the feed's rate when a feed, not the product, keeps the catalog."""

    name: str
    scenario: Scenario
    feed_rate: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What one replay sold and cost (the JSON's per-strategy object, plus the units wanted and dead letters)."""

    demand_units: int
    sold_units: int
    oversold_units: int
    undersold_units: int
    graph_calls: int
    dynamodb_requests: int | None
    staleness_s: dict[str, float | None]
    dead_letters: int = 0
    # For --plot: the replay's stock trace and demand per SKU (None unless asked for; never in the JSON).
    plot_data: dict[str, Any] | None = None

    def meets(self, target: float) -> bool:
        return self.oversold_units <= target * self.sold_units

    def as_dict(self) -> dict[str, Any]:
        return {
            "sold_units": self.sold_units,
            "oversold_units": self.oversold_units,
            "undersold_units": self.undersold_units,
            "graph_calls": self.graph_calls,
            "dynamodb_requests": self.dynamodb_requests,
            "staleness_s": self.staleness_s,
        }


# -- strategies as scenarios (pure) --------------------------------------------------------------------------


def template_buckets() -> BucketSettings:
    """Each deployment bucket's threshold and sweep rate as template.yaml's parameter defaults give them."""
    parameters = load_template()["Parameters"]
    return {
        bucket: {
            "threshold": int(parameters[str(bucket_parameter(bucket, "threshold"))]["Default"]),
            "sweep_rate": str(parameters[str(bucket_parameter(bucket, "sweep_rate"))]["Default"]),
        }
        for bucket in sorted(deployment_buckets())
    }


def _has_allocation(scenario: Scenario) -> bool:
    buckets = scenario.settings.buckets or {}
    return any(
        getattr(entry, key) is not None for entry in (*buckets.values(), *scenario.skus) for key in ALLOCATION_KEYS
    )


def with_buckets(scenario: Scenario, buckets: BucketSettings, *, keep_sku_allocation: bool = False) -> Scenario:
    """The scenario with these bucket overrides (replacing its own), its SKUs' allocations dropped unless kept:
    the scenario is validated again, so a strategy is always a scenario the replay accepts."""
    raw = scenario.model_dump(mode="json")  # None kept: a null batch_apply_fraction means "drawn", not the default
    raw["settings"]["buckets"] = buckets
    if not keep_sku_allocation:
        raw["skus"] = [{**sku, **dict.fromkeys(ALLOCATION_KEYS)} for sku in raw["skus"]]
    return type(scenario).model_validate({**raw, "steps": scenario.steps, "expect": None})


def _scenario_buckets(scenario: Scenario, *, keep_allocation: bool) -> BucketSettings:
    """Every deployment bucket and every bucket the scenario declares, with what the scenario sets on them."""
    buckets: BucketSettings = {bucket: {} for bucket in sorted(deployment_buckets())}
    for bucket, override in (scenario.settings.buckets or {}).items():
        buckets[bucket] = {
            key: value
            for key, value in override.model_dump(exclude_none=True).items()
            if keep_allocation or key not in ALLOCATION_KEYS
        }
    return buckets


def _template_sweep(defaults: BucketSettings, bucket: str) -> dict[str, Any]:
    rate = defaults.get(bucket, {}).get("sweep_rate")
    return {} if rate is None else {"sweep_rate": rate}


def strategies(scenario: Scenario, defaults: BucketSettings) -> list[Strategy]:
    """The fixed strategies (the module's docstring says what each is); ``tuned`` is searched, not listed here."""
    # Sweep rates spelled out (the scenario's own, else the template's): the same rates as when left out, and the
    # search's two starts are then the very scenarios realtime_thresholds and realtime replayed (Replayer does not
    # replay them).
    swept = {
        bucket: {**_template_sweep(defaults, bucket), **settings}
        for bucket, settings in _scenario_buckets(scenario, keep_allocation=False).items()
    }
    realtime = {bucket: {**settings, "threshold": 0} for bucket, settings in swept.items()}
    thresholds = {
        bucket: {**settings, "threshold": defaults.get(bucket, {}).get("threshold", settings.get("threshold", 0))}
        for bucket, settings in swept.items()
    }
    if _has_allocation(scenario):
        allocated = {
            bucket: {**_template_sweep(defaults, bucket), **settings, "threshold": thresholds[bucket]["threshold"]}
            for bucket, settings in _scenario_buckets(scenario, keep_allocation=True).items()
        }
    else:
        allocated = {
            bucket: {**settings, "allocation_percent": DEFAULT_ALLOCATION_PERCENT}
            for bucket, settings in thresholds.items()
        }
    return [
        *(Strategy(name, scenario, rate) for name, rate in FEEDS.items()),
        Strategy("realtime", with_buckets(scenario, realtime)),
        Strategy("realtime_thresholds", with_buckets(scenario, thresholds)),
        Strategy(
            "realtime_thresholds_allocation",
            with_buckets(scenario, allocated, keep_sku_allocation=_has_allocation(scenario)),
        ),
    ]


def demand_buckets(scenario: Scenario) -> list[str]:
    """The deployment buckets the demand steps' SKUs are in (the ones whose settings change what buyers find), the
    busiest first: the units their profiles expect, spikes aside."""
    bucket_of = {
        sku.retailer_id: sku.bucket or scenario.settings.default_bucket or _template_default_bucket()
        for sku in scenario.skus
    }
    expected: dict[str, float] = {}
    for step in scenario.steps:
        if isinstance(step, DemandStep):
            for profile in step.demand.profiles:
                for retailer_id in profile.skus:
                    bucket = bucket_of[retailer_id]
                    expected[bucket] = expected.get(bucket, 0.0) + profile.units_per_hour * step.demand.minutes
    known = deployment_buckets()
    return sorted((bucket for bucket in expected if bucket in known), key=lambda bucket: (-expected[bucket], bucket))


def _template_default_bucket() -> str:
    return str(load_template()["Parameters"]["DefaultBucket"]["Default"])


def steps(name: str, current: Any) -> list[Any]:
    """The values one step either side of ``current`` on the setting's scale (up first): thresholds by one unit,
    sweep rates along SWEEP_RATES by interval. A current value off the scale (a rate the list does not hold) steps
    to its nearest neighbours on it."""
    if name == "threshold":
        return [value for value in (current + 1, current - 1) if value in THRESHOLDS]
    scale = sorted({*SWEEP_RATES, current}, key=interval_seconds)
    at = scale.index(current)
    return [scale[index] for index in (at - 1, at + 1) if 0 <= index < len(scale) and scale[index] != current]


def coordinates(buckets: Sequence[str]) -> list[tuple[str, str]]:
    """The search's coordinates in the order each round visits them: a bucket's threshold, then its sweep rate."""
    return [(bucket, name) for bucket in buckets for name in ("threshold", "sweep_rate")]


# -- the selection rule and the recommendation (pure) --------------------------------------------------------


def rank(outcome: Outcome, target: float) -> tuple[int, int, int, int]:
    """Smaller is better: meeting the target first, then the fewest under-sold units (the fewest over-sold, then
    Graph calls, break ties); among candidates that all miss it, the fewest over-sold units."""
    if outcome.meets(target):
        return (0, outcome.undersold_units, outcome.oversold_units, outcome.graph_calls)
    return (1, outcome.oversold_units, outcome.undersold_units, outcome.graph_calls)


def select(outcomes: Sequence[Outcome], target: float) -> int:
    """The index of the outcome the rule prefers (the earlier one on a tie)."""
    if not outcomes:
        raise ValueError("no candidates to select from")
    return min(range(len(outcomes)), key=lambda index: (rank(outcomes[index], target), index))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def deploy_parameters(scenario: Scenario, floors: dict[str, float] | None = None) -> dict[str, str]:
    """The template parameters that deploy what the scenario replayed: its deployment-wide settings, then each
    deployment bucket's settings that have a parameter (allocation has none; a bucket only the scenario declares
    has none either)."""
    parameters: dict[str, str] = {}
    settings = scenario.settings
    for name in ("deduction_mode", "field", "catalog_reads_per_hour", "default_bucket"):
        value = getattr(settings, name)
        if value is None or (name == "default_bucket" and value not in deployment_buckets()):
            continue
        parameter = setting_parameter(name)
        if parameter is not None:
            parameters[parameter] = _value(value)
    for bucket, override in sorted((settings.buckets or {}).items()):
        if bucket not in deployment_buckets():
            continue
        for key, value in override.model_dump(exclude_none=True).items():
            parameter = bucket_parameter(bucket, key)
            if parameter is not None:
                parameters[parameter] = _value(value)
    for bucket, floor in sorted((floors or {}).items()):
        parameter = bucket_parameter(bucket, "min_units_per_hour")
        if parameter is not None:
            # Decimal, never 1e-06: the template's MinUnitsPerHour pattern allows up to six decimals.
            parameters[str(parameter)] = f"{floor:.6f}".rstrip("0").rstrip(".")
    return parameters


def deploy_line(parameters: dict[str, str]) -> str:
    """``sam deploy --parameter-overrides Key=Value ...`` (a value with spaces or parentheses in double quotes,
    as README's Deploying section writes ``FastSweepRate="rate(2 minutes)"``)."""
    pairs = [
        f'{name}="{value}"' if not re.fullmatch(r"[A-Za-z0-9_.:/,-]+", value) else f"{name}={value}"
        for name, value in parameters.items()
    ]
    return "sam deploy --parameter-overrides " + " ".join(pairs)


def outcome_of(report: dict[str, Any], *, feed: bool) -> Outcome:
    """A replay report's figures: demand from its demand section; Graph calls from the simulator's count (with a
    feed: one upload per feed applied, the initial one included); DynamoDB requests from the replay's count (None
    with a feed: no deployment); staleness from the latencies of the pushes the steps caused, the initial publish
    left out (with a feed: change -> next feed)."""
    demand = report.get("demand")
    if not demand:
        raise ValueError("the replay report has no demand section")
    latency = (
        report["feed"]["change_to_catalog_seconds"] if feed else report.get("change_to_confirm_seconds_from_first_step")
    )
    return Outcome(
        demand_units=int(demand["demand"]),
        sold_units=int(demand["sold"]),
        oversold_units=int(demand["over_sold"]),
        undersold_units=int(demand["under_sold"]),
        graph_calls=int(report["feed"]["feeds"]) if feed else sum(report["graph_calls"].values()),
        dynamodb_requests=None if feed else int(report.get("dynamodb_requests") or 0),
        staleness_s={name: (latency or {}).get(name) for name in ("p50", "p95", "p99")},
        dead_letters=len(report.get("dead_letters") or []),
    )


def result_json(outcomes: dict[str, Outcome], recommended: dict[str, str], candidates_tried: int) -> dict[str, Any]:
    """The ``--json`` object. Every strategy played the same buyers, so their units wanted must agree: a
    comparison where they do not is refused (ValueError) rather than printed."""
    wanted = {outcome.demand_units for outcome in outcomes.values()}
    if len(wanted) != 1:
        raise ValueError(f"the strategies did not play the same demand: units wanted {sorted(wanted)}")
    missing = [name for name in STRATEGIES if name not in outcomes]
    if missing:
        raise ValueError(f"strategies missing: {missing}")
    return {
        "demand_units": wanted.pop(),
        "strategies": {name: outcomes[name].as_dict() for name in STRATEGIES},
        "recommended": recommended,
        "candidates_tried": candidates_tried,
    }


# -- running it -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """The tuned strategy: the chosen scenario, its outcome, how many candidates were replayed, and whether the
    chosen one meets the target."""

    scenario: Scenario
    outcome: Outcome
    tried: int
    meets_target: bool
    floors: dict[str, float] | None = None  # the bucket floors chosen, when they were searched (a history)


Evaluate = Callable[[Sequence[tuple[str, Scenario]]], list[Outcome]]


def search(
    scenario: Scenario,
    defaults: BucketSettings,
    target: float,
    budget: int,
    evaluate: Evaluate,
    *,
    velocities: Velocities | None = None,
) -> Search:
    """Coordinate search over the demand's buckets from the better of the template's defaults and no thresholds
    (module docstring), at most ``budget`` replays. ``evaluate`` replays candidates (named for progress lines),
    possibly side by side, and returns their outcomes in order. With ``velocities`` (a history's SKUs) the bucket
    floors are searched too, each round after the thresholds and sweep rates (tune_boundaries)."""
    base = _scenario_buckets(scenario, keep_allocation=False)
    for bucket, settings in defaults.items():
        base[bucket] = {**base.get(bucket, {}), **settings}
    searched = demand_buckets(scenario)
    floors = template_floors() if velocities is not None else {}
    tried: dict[str, Outcome] = {}

    def key(buckets: BucketSettings, floors: dict[str, float]) -> str:
        return json.dumps([buckets, floors], sort_keys=True)

    def candidate_scenario(buckets: BucketSettings, floors: dict[str, float]) -> Scenario:
        bucketed = rebucketed(scenario, velocities, floors) if velocities is not None else scenario
        return with_buckets(bucketed, buckets)

    def replay(candidates: list[Candidate]) -> list[Outcome]:
        named = [
            (f"candidate {len(tried) + number + 1}: {_describe(searched, *candidate)}", candidate_scenario(*candidate))
            for number, candidate in enumerate(candidates)
        ]
        outcomes = evaluate(named)
        for candidate, outcome in zip(candidates, outcomes, strict=True):
            tried[key(*candidate)] = outcome
        return outcomes

    # Two starting points, replayed side by side: the template's defaults, and the same with every threshold 0 (the
    # ``realtime`` strategy, already replayed when tune runs: the Replayer does not make it again). A search from the
    # defaults alone recommended a threshold that turned buyers away when no threshold sold more and over-sold
    # nothing; the tuned strategy is never worse by the rule than the better of the two.
    starts: list[Candidate] = [(base, floors)]
    unthresholded = {bucket: {**settings, "threshold": 0} for bucket, settings in base.items()}
    if unthresholded != base:
        starts.append((unthresholded, floors))
    start_outcomes = replay(starts[:budget])
    chosen = select(start_outcomes, target)
    best, best_outcome = starts[chosen], start_outcomes[chosen]
    visits = coordinates(searched) + [(bucket, "floor") for bucket in searched_floors(floors)]
    changed = True
    while changed and len(tried) < budget:
        changed = False
        for coordinate in visits:
            candidates = [
                candidate
                for candidate in _neighbours(best, coordinate, meets=best_outcome.meets(target))
                if key(*candidate) not in tried
            ]
            candidates = candidates[: budget - len(tried)]
            if not candidates:
                continue
            outcomes = replay(candidates)
            chosen = select([best_outcome, *outcomes], target)
            if chosen:
                best, best_outcome, changed = candidates[chosen - 1], outcomes[chosen - 1], True
            if len(tried) >= budget:
                break
    return Search(
        candidate_scenario(*best), best_outcome, len(tried), best_outcome.meets(target), best[1] if floors else None
    )


Candidate = tuple[BucketSettings, dict[str, float]]  # bucket settings, and bucket floors when they are searched


def _neighbours(best: Candidate, coordinate: tuple[str, str], *, meets: bool) -> list[Candidate]:
    """The candidates one step from ``best`` along one coordinate (a bucket's setting, or its floor). A threshold
    steps down first while ``best`` meets the target (it may sell more), up first while it does not (it may
    over-sell less): with a budget of one more replay, that is the step worth making."""
    buckets, floors = best
    bucket, name = coordinate
    if name == "floor":
        return [(buckets, {**floors, bucket: value}) for value in floor_steps(floors, bucket)]
    if name == "threshold" and meets:
        return [
            ({**buckets, bucket: {**buckets[bucket], name: value}}, floors)
            for value in sorted(steps(name, buckets[bucket][name]))
        ]
    return [
        ({**buckets, bucket: {**buckets[bucket], name: value}}, floors) for value in steps(name, buckets[bucket][name])
    ]


def _describe(searched: Sequence[str], buckets: BucketSettings, floors: dict[str, float]) -> str:
    shown = [
        f"{bucket} threshold {buckets[bucket]['threshold']} sweep {buckets[bucket]['sweep_rate']}"
        for bucket in searched
    ]
    shown += [f"{bucket} from {floor:g}/h" for bucket, floor in floors.items() if floor > 0]
    return ", ".join(shown)


def template_floors() -> dict[str, float]:
    """Each deployment bucket's ``<B>MinUnitsPerHour`` default."""
    parameters = load_template()["Parameters"]
    return {
        bucket: float(parameters[str(bucket_parameter(bucket, "min_units_per_hour"))]["Default"])
        for bucket in sorted(deployment_buckets())
    }


def replay_outcome(candidate: Scenario, feed_rate: str | None, *, plot: bool = False) -> Outcome:
    """One strategy or candidate replayed in a fresh local stack (in this process), as its outcome; with ``plot``,
    carrying what --plot draws of it."""
    report = replay_scenario(candidate, in_process=True, feed_rate=feed_rate)
    outcome = outcome_of(report, feed=feed_rate is not None)
    if plot:
        outcome = replace(outcome, plot_data={"trace": report.get("stock_trace"), "demand": report.get("demand")})
    return outcome


class ReplayFailedError(RuntimeError):
    """A replay in a worker process failed: its exception's class, message and traceback, as text (an exception of
    the product's may not survive the trip back between processes)."""


def _replay_in_worker(candidate: Scenario, feed_rate: str | None, plot: bool) -> Outcome:
    """replay_outcome in a worker process, logging as tune's own process does: warnings only, on stderr."""
    try:
        with _logs_to_stderr(verbose=False):
            return replay_outcome(candidate, feed_rate, plot=plot)
    except Exception as error:
        raise ReplayFailedError("".join(traceback.format_exception(error))) from None


class Replayer:
    """Replays side by side: ``workers`` child processes (each replay in a fresh local stack, so they share
    nothing), or this process alone with one worker. Two strategies are independent replays; on 2 cores, two at a
    time halve a tune's wall time (README, "Tuning")."""

    def __init__(self, workers: int, *, plot: bool = False) -> None:
        self._workers = workers
        self._plot = plot
        self._pool: ProcessPoolExecutor | None = None
        self._done: dict[tuple[str, str | None], Outcome] = {}

    def __enter__(self) -> Replayer:
        if self._workers > 1:
            # One replay per worker process: a week's replay leaves a few hundred MB the next one in that process
            # never gets back (3.2 GB resident after three), and a fresh process shares no cached client either.
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def outcomes(self, replays: Sequence[tuple[Scenario, str | None]]) -> list[Outcome]:
        """Each replay's outcome, in order. A replay already made (the search's two starts are the
        ``realtime_thresholds`` and ``realtime`` strategies when the scenario sets no bucket of its own) is not made
        again: the same scenario and seed give the same buyers and the same outcome."""
        keys = [(candidate.model_dump_json(), feed_rate) for candidate, feed_rate in replays]
        todo = {key: replay for key, replay in zip(keys, replays, strict=True) if key not in self._done}
        if self._pool is None:
            for key, (candidate, feed_rate) in todo.items():
                self._done[key] = replay_outcome(candidate, feed_rate, plot=self._plot)
        else:
            futures = {
                key: self._pool.submit(_replay_in_worker, candidate, feed_rate, self._plot)
                for key, (candidate, feed_rate) in todo.items()
            }
            self._done.update({key: future.result() for key, future in futures.items()})
        return [self._done[key] for key in keys]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        COMMAND, help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "file",
        type=Path,
        nargs="?",
        default=DEFAULT_SCENARIO,
        help="a scenario with a demand step, or an order history (.csv, or .json without steps) (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument(
        "--target",
        type=float,
        default=DEFAULT_TARGET,
        help="over-sold units allowed per unit sold, a fraction in (0, 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=DEFAULT_CANDIDATES,
        help="replays the tuned search may make, at least 1 (default: %(default)s)",
    )
    history = parser.add_argument_group("an order history")
    history.add_argument(
        "--stock",
        type=Path,
        help="starting warehouse levels, CSV retailer_id,warehouse or JSON {SKU: units}; SKUs of the history it "
        "does not name are refused (default: each SKU starts with the units it sold over the history)",
    )
    history.add_argument(
        "--ledger-table",
        metavar="NAME",
        help="read the history from a deployed ledger (the stack's orders table) with a Scan, instead of a file "
        "(boto3's usual configuration; AWS_ENDPOINT_URL for a local stack)",
    )
    history.add_argument(
        "--spike-factor",
        type=float,
        default=DEFAULT_SPIKE_FACTOR,
        help="an hour with more than this times a SKU's rate in the other hours is a spike (default: %(default)s)",
    )
    history.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="the simulated buyers' seed (default: %(default)s)"
    )
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots there (the plot extra)")
    parser.add_argument(
        "--samconfig", type=Path, metavar="PATH", help="merge the recommendation into this samconfig.toml"
    )
    parser.add_argument(
        "--config-env", metavar="NAME", help="the samconfig environment ([NAME.deploy.parameters]), with --samconfig"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="replays run side by side, each in a process of its own (default: the machine's cores, at most "
        f"{MAX_WORKERS}: %(default)s)",
    )
    parser.set_defaults(run=run)
    return parser


def _checked_input(args: argparse.Namespace) -> tuple[Scenario, dict[str, Any] | None, Velocities | None]:
    """The scenario to tune on, and when it came from a history what the history said and the SKUs' measured
    velocities (its bucket floors are then searched too); TuneInputError otherwise."""
    _checked_outputs(args)
    if not 0 < args.target < 1:
        raise TuneInputError(f"--target: a fraction in (0, 1), got {args.target:g}")
    if args.candidates < 1:
        raise TuneInputError(f"--candidates: at least 1, got {args.candidates}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise TuneInputError(f"--workers: 1 to {MAX_WORKERS}, got {args.workers}")
    if args.ledger_table is not None and args.file != DEFAULT_SCENARIO:
        raise TuneInputError(f"--ledger-table: the history comes from the table; drop {args.file}")
    if args.ledger_table is None and not args.file.is_file():
        raise TuneInputError(f"{args.file}: no such file")
    from_history = args.ledger_table is not None or is_order_history(args.file)
    if args.stock is not None and not from_history:
        raise TuneInputError(f"--stock: only with an order history; {args.file} is a scenario (set its warehouse)")
    if from_history:
        source = str(args.file) if args.ledger_table is None else f"--ledger-table {args.ledger_table}"
        try:
            sales = read_history(args.file) if args.ledger_table is None else _ledger_sales(args.ledger_table)
            measured = measure(sales, spike_factor=args.spike_factor)
            stock = read_stock(args.stock) if args.stock is not None else None
            scenario = scenario_from_history(
                measured,
                stock=stock,
                seed=args.seed,
                source=source,
                deployment_buckets=deployment_buckets(),
            )
        except HistoryError as error:
            raise TuneInputError(str(error)) from None
        velocities = Velocities({rid: sku.units_per_hour for rid, sku in measured.skus.items()})
        return scenario, measured.summary(), velocities
    try:
        scenario = load_scenario(args.file, deployment_buckets=deployment_buckets())
    except ScenarioError as error:
        raise TuneInputError(f"invalid scenario {args.file}: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TuneInputError(f"{args.file}: cannot be read ({error})") from None
    if not any(isinstance(step, DemandStep) for step in scenario.steps):
        raise TuneInputError(
            f"{args.file}: no demand step; tune compares strategies on a demand step's buyers (README, The scenario "
            "format)"
        )
    return scenario, None, None


def _ledger_sales(table: str) -> list[Sale]:
    try:
        return read_ledger_table(boto3.client("dynamodb"), table)
    except (BotoCoreError, ClientError) as error:
        raise TuneInputError(f"--ledger-table {table}: cannot be read ({error})") from None


def _checked_outputs(args: argparse.Namespace) -> None:
    """--plot and --samconfig fail before the replays, not after minutes of them."""
    if args.plot is not None:
        try:
            require_matplotlib()
        except PlotUnavailableError as error:
            raise TuneInputError(str(error)) from None
        if args.plot.exists() and not args.plot.is_dir():
            raise TuneInputError(f"--plot {args.plot}: not a folder")
    if (args.samconfig is None) != (args.config_env is None):
        raise TuneInputError("--samconfig and --config-env go together")
    if args.samconfig is not None:
        try:
            text = args.samconfig.read_text() if args.samconfig.exists() else ""
            updated_text(text, args.config_env, {}, where=f"--samconfig {args.samconfig}")
        except (OSError, UnicodeDecodeError) as error:
            raise TuneInputError(f"--samconfig {args.samconfig}: cannot be read ({error})") from None
        except SamconfigError as error:
            raise TuneInputError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    try:
        scenario, history, velocities = _checked_input(args)
    except TuneInputError as error:
        print(error, file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() and not args.json
    if progress and history is not None:
        print(f"history: {json.dumps(history, sort_keys=True)}; replaying it per strategy", file=sys.stderr)
    replayed: list[tuple[str, Scenario, dict[str, Any]]] = []  # for --plot: each replay's trace and demand per SKU

    def report(name: str, candidate: Scenario, outcome: Outcome) -> None:
        if outcome.plot_data is not None:
            replayed.append((name, candidate, outcome.plot_data))
        if progress:
            print(
                f"{name}: sold {outcome.sold_units}, over-sold {outcome.oversold_units}, under-sold "
                f"{outcome.undersold_units}, Graph calls {outcome.graph_calls}",
                file=sys.stderr,
            )

    try:
        outcomes, tuned = _replay_strategies(args, scenario, report, velocities)
    except ReplayFailedError as error:
        print(f"tune: a replay failed in a worker process:\n{error}", file=sys.stderr)
        return 1
    outcomes["tuned"] = tuned.outcome
    recommended = deploy_parameters(tuned.scenario, tuned.floors)
    try:
        result = result_json(outcomes, recommended, tuned.tried)
    except ValueError as error:
        print(f"tune: {error}", file=sys.stderr)
        return 1
    if history is not None:
        result["history"] = history
    if not tuned.meets_target:
        print(
            f"no candidate kept over-selling within {args.target:g} of units sold; tuned is the least over-selling",
            file=sys.stderr,
        )
    dead = {name: outcome.dead_letters for name, outcome in outcomes.items() if outcome.dead_letters}
    if dead:
        print(f"dead letters left by: {dead}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True) if args.json else render(result, args.target, tuned.meets_target))
    code = _write_extras(args, replayed, tuned.scenario, recommended)
    return code or (1 if dead else 0)


def _replay_strategies(
    args: argparse.Namespace,
    scenario: Scenario,
    report: Callable[[str, Scenario, Outcome], None],
    velocities: Velocities | None,
) -> tuple[dict[str, Outcome], Search]:
    """The fixed strategies side by side, then the tuned search; ``report`` hears of each replay as it ends."""
    defaults = template_buckets()
    with _logs_to_stderr(verbose=False), Replayer(args.workers, plot=args.plot is not None) as replayer:
        fixed = strategies(scenario, defaults)
        found = replayer.outcomes([(strategy.scenario, strategy.feed_rate) for strategy in fixed])
        outcomes = {strategy.name: outcome for strategy, outcome in zip(fixed, found, strict=True)}
        for strategy in fixed:
            report(strategy.name, strategy.scenario, outcomes[strategy.name])

        def evaluate(candidates: Sequence[tuple[str, Scenario]]) -> list[Outcome]:
            results = replayer.outcomes([(candidate, None) for _name, candidate in candidates])
            for (name, candidate), outcome in zip(candidates, results, strict=True):
                report(name, candidate, outcome)
            return results

        return outcomes, search(scenario, defaults, args.target, args.candidates, evaluate, velocities=velocities)


def _write_extras(
    args: argparse.Namespace,
    replayed: list[tuple[str, Scenario, dict[str, Any]]],
    chosen: Scenario,
    recommended: dict[str, str],
) -> int:
    """--plot and --samconfig after the table (checked before the replays; 2 if one fails now all the same)."""
    if args.plot is not None:
        for path in plot_replays(args.plot, replayed, chosen, STRATEGIES, _template_default_bucket()):
            print(f"wrote {path}", file=sys.stderr)
    if args.samconfig is not None:
        try:
            written = write_parameter_overrides(args.samconfig, args.config_env, recommended)
        except SamconfigError as error:
            print(error, file=sys.stderr)
            return 2
        print(
            f"wrote {len(written)} parameter overrides to {args.samconfig} [{args.config_env}.deploy.parameters]",
            file=sys.stderr,
        )
    return 0


def render(result: dict[str, Any], target: float, meets_target: bool) -> str:
    """The table, the rule and the deploy line."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    def count(value: int | None) -> str:
        return "-" if value is None else str(value)

    lines = [
        f"{'strategy':<31} {'sold':>5} {'over':>5} {'under':>5} {'Graph':>6} {'DynamoDB':>9} "
        f"{'delay p50':>9} {'p95':>6} {'p99':>6}"
    ]
    for name, row in result["strategies"].items():
        staleness = row["staleness_s"]
        lines.append(
            f"{name:<31} {row['sold_units']:>5} {row['oversold_units']:>5} {row['undersold_units']:>5} "
            f"{row['graph_calls']:>6} {count(row['dynamodb_requests']):>9} {seconds(staleness['p50']):>9} "
            f"{seconds(staleness['p95']):>6} {seconds(staleness['p99']):>6}"
        )
    history = result.get("history")
    if history:
        buckets = ", ".join(f"{bucket} {count}" for bucket, count in history["skus_by_bucket"].items())
        lines += [
            "",
            f"measured from the history: {history['units']} units of {history['skus']} SKUs over {history['hours']} h "
            f"from {history['start']} (SKUs per bucket: {buckets}; {history['spikes']} spike hours)",
        ]
    lines += [
        "",
        f"units wanted: {result['demand_units']}; over = over-sold, under = under-sold units; delay = value changed "
        "-> in the catalog, simulated s (a feed: -> the next feed); DynamoDB requests from the first step on (a feed: "
        "no deployment)",
        f"tuned: {result['candidates_tried']} candidates replayed; the fewest under-sold units with over-sold at most "
        f"{target:g} of sold" + ("" if meets_target else " (none met it: the least over-sold instead)"),
        deploy_line(result["recommended"]),
    ]
    return "\n".join(lines)
