"""``stocksync replay``: sample events and scenario files through the real handlers, end to end, without Docker.

    stocksync replay events/scenarios/demo_day.json            # a scenario (report on stdout)
    stocksync replay events/scenarios/demo_day.json --json     # exactly one JSON object on stdout
    stocksync replay events/order_events_sqs_batch.json --function order_events   # like `sam local invoke -e`

``--function`` refuses (one line, exit 2, nothing run) an unknown function, a sample of events/ meant for another
function, and an event of a kind template.yaml never invokes the function with (README, "Sample events").

By default the command starts its own moto server (with template.yaml deployed into it) and the Commerce Platform
simulator, and stops them when done. With ``--function``, ``--stack-name`` (and ``--profile``/``--region``) run the
event against a deployed stack with that function's own settings, read from the stack; ``--endpoint-url`` points at
an AWS endpoint or LocalStack instead (the settings then come from the environment, or from ``--stack-name`` there),
and ``--graph-base-url`` at a real Graph API; the same handlers run either way. A scenario needs the
simulator (it places buyer orders on the platform), so scenarios always run against it.

In a scenario, the pipeline runs as a deployment runs it: every message is delivered to its function as it becomes
due, and poll_orders fires on its schedule (PollRate in template.yaml) at a fixed phase of the simulated clock,
between deliveries; a ``run: pipeline`` ends when every queue is empty and a poll that read the whole listing began
after the scenario's last change on the platform. Then the catalog must show every SKU's A: a replay checks it
after every ``run: pipeline`` (and ``while_pushing``), and reports each SKU where it does not.

Exit status: 0 success; 1 when a dead letter remains, when after a ``run: pipeline`` the catalog did not show A
for a SKU nobody edited outside stocksync since the last audit, or when the end state misses the scenario's ``expect``
block (stderr says how, one line each); 2 when the scenario is invalid (nothing has run).
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import re
import shlex
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from botocore.client import BaseClient

from stocksync import clock
from stocksync.dal import aws
from stocksync.integrations.graph_api import clear_graph_client_cache
from stocksync.logic.latency import summarize
from stocksync.models.settings import get_settings
from stocksync.observability import logger
from stocksync_dev.cli import sample_seeds, samples
from stocksync_dev.cli.demand import Arrival, DemandTally, arrivals
from stocksync_dev.cli.inspect_settings import NOW_VARIABLE
from stocksync_dev.cli.pipeline import (
    MAX_ROUNDS,
    HandlerContext,
    LocalPipeline,
    PipelineStuckError,
    load_function,
    scheduler_input,
)
from stocksync_dev.cli.progress import SILENT, Progress
from stocksync_dev.cli.replay_report import (
    build_report,
    differences_from_a,
    failed_checks,
    loop_figures,
    render_report,
    unmet_expectations,
)
from stocksync_dev.cli.scenario import (
    AdvanceStep,
    CancelStep,
    CatalogEditStep,
    DemandStep,
    DiscontinueStep,
    OrderStep,
    PushMoment,
    RunStep,
    Scenario,
    ScenarioError,
    ShopOrderStep,
    SyncedStep,
    ThrottleStep,
    WarehouseStep,
    WhilePushingStep,
    load_scenario,
)
from stocksync_dev.cli.schedules import Ticks
from stocksync_dev.cli.stack_settings import (
    DEFAULT_FUNCTION,
    SettingsError,
    add_stack_arguments,
    deployment,
    function_logical_id,
)
from stocksync_dev.cli.stock_trace import StockTrace, hottest_sku
from stocksync_dev.local.aws import BUS_SOURCES, LocalAws
from stocksync_dev.local.template import load_template
from stocksync_dev.simulator import CommercePlatformSimulator, OrderRefused

POLL_FUNCTION = "poll_orders"
AUDIT_FUNCTION = "audit_catalog"
QUANTITY_FIELD = "quantity_to_sell_on_facebook"  # the simulator sets its one stock number through either name
# Polls one run may wait for before giving up on one that reads the whole listing (a day at rate(5 minutes)): a
# source that throttles for longer, or that the platform removed, would otherwise keep a replay polling forever.
MAX_POLLS_PER_RUN = 288
# Simulated time one invocation takes (a short Lambda run and its delivery): a deployment's clock never stands still
# between a poll, the recompute it causes and a read of the catalog (LocalPipeline says why that matters).
INVOCATION_SECONDS = 0.1
COMMAND = "replay"
HELP = "run a scenario file, or one sample event through one handler, locally and end to end"
TOKEN, APP_SECRET = "replay-token", "replay-app-secret"
KEEP_ENV_FILE = ".stocksync-local.env"
# Long enough that one pass over a dead-letter queue never meets its own messages again.
_HIDE_SECONDS = 600
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_TRACE_DISABLED": "1"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        COMMAND, help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="a scenario file, or a sample event with --function")
    parser.add_argument("--function", help="invoke this function (folder under functions/) with the event file")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--endpoint-url", help="AWS endpoint of a deployed stack (default: embedded moto server)")
    parser.add_argument("--graph-base-url", help="Graph API base URL (default: the embedded simulator)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="hand this process's AWS calls to moto without a socket each (faster for large scenarios; by default "
        "every call takes a real HTTP hop, the path a deployed function's calls take)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after a scenario, keep the local stack (moto and the simulator) running until Ctrl-C and write its "
        "environment to --env-file, so `stocksync status`, `explain`, `audit` and `reconcile` can look at it",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(KEEP_ENV_FILE),
        help="where --keep writes the kept stack's environment (default: %(default)s; removed when the stack stops)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the handlers' info logs and EMF metrics (warnings show anyway)",
    )
    add_stack_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    if getattr(args, "keep", False) and args.function:
        print("--keep keeps the stack of a scenario; with --function there is none to keep", file=sys.stderr)
        return 2
    stdout = sys.stdout  # the report's stream: the run itself writes to stderr (_logs_to_stderr)
    with _logs_to_stderr(verbose=args.verbose):
        code, output = _invoke_one(args) if args.function else _replay_file(args, stdout)
    if output is not None:
        print(output)
    return code


@contextmanager
def _logs_to_stderr(*, verbose: bool) -> Iterator[None]:
    """stdout carries the report (one JSON object with --json); the handlers' logs go to stderr: warnings always
    (over-selling, throttling), info logs and EMF metrics only with --verbose. Everything is put back afterwards
    (the CLI may run inside a longer process)."""
    handler = logger.registered_handler
    stream = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    level = logger.log_level
    saved = {name: os.environ.get(name) for name in QUIET}
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    os.environ.update({} if verbose else QUIET)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        logger.setLevel(level)
        if stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _replay_file(args: argparse.Namespace, stdout: TextIO = sys.stdout) -> tuple[int, str | None]:
    try:
        scenario = load_scenario(args.file, deployment_buckets=deployment_buckets())
    except ScenarioError as error:
        print(f"invalid scenario {args.file}: {error}", file=sys.stderr)
        return 2, None
    if args.endpoint_url or args.graph_base_url or args.stack_name:
        print(
            "a scenario places buyer orders on the platform, so it runs against the embedded simulator and moto; "
            "use --function to replay one event against a real endpoint",
            file=sys.stderr,
        )
        return 2, None
    progress = Progress()
    if not getattr(args, "keep", False):
        try:
            report = replay_scenario(scenario, in_process=getattr(args, "in_process", False), progress=progress)
        finally:
            progress.done()
        return _outcome(report, scenario, as_json=args.json)
    outcome: list[tuple[int, str]] = []

    def keep(local: LocalAws, sim: CommercePlatformSimulator, report: dict[str, Any]) -> None:
        progress.done()
        code, text = _outcome(report, scenario, as_json=args.json)
        outcome.append((code, text))
        print(text, file=stdout, flush=True)
        write_env_file(args.env_file, local, sim)
        try:
            print(
                f"the local stack keeps running until Ctrl-C; in another shell, from this folder:\n"
                f"  (. {args.env_file} && .venv/bin/stocksync status)\n"
                f"  (. {args.env_file} && .venv/bin/stocksync explain RETAILER_ID)",
                file=sys.stderr,
                flush=True,
            )
            serve_until_interrupted()
        finally:
            args.env_file.unlink(missing_ok=True)

    try:
        replay_scenario(scenario, in_process=getattr(args, "in_process", False), keep=keep, progress=progress)
    finally:
        progress.done()
    return outcome[0][0], None


def _outcome(report: dict[str, Any], scenario: Scenario, *, as_json: bool) -> tuple[int, str]:
    broken = failed_checks(report)
    # The scenario's own promise: its expect block, one line per way the end state misses it.
    report["expect_unmet"] = unmet_expectations(report, scenario.expect)
    for line in report["expect_unmet"]:
        print(f"expect not met: {line}", file=sys.stderr)
    for difference in broken:
        print(
            f"{difference['step']}: after the run the catalog shows {difference['retailer_id']} at "
            f"{difference['catalog']} ({difference['catalog_visibility']}), A is {difference['A']} "
            f"({difference['A_visibility']})",
            file=sys.stderr,
        )
    return (1 if report["dead_letters"] or broken or report["expect_unmet"] else 0), (
        json.dumps(report, sort_keys=True) if as_json else render_report(report)
    )


def write_env_file(path: Path, local: LocalAws, sim: CommercePlatformSimulator) -> None:
    """The kept stack's environment as shell ``export`` lines: what its functions get (with the scenario's settings,
    as the replay set them), what points boto3 at moto (fake credentials, never a real account's), and
    ``STOCKSYNC_NOW``, the replay's simulated time, which the kept stack's records are stamped with
    (stocksync_dev.cli.inspect_settings)."""
    names = sorted(set(local.function_environment()) | {"STOCKSYNC_GRAPH_BASE_URL"})
    lines = [f"export {name}={shlex.quote(os.environ[name])}" for name in names if name in os.environ]
    lines.append(f"export {NOW_VARIABLE}={shlex.quote(sim.now().isoformat())}")
    path.write_text("# written by `stocksync replay --keep`; valid while that replay runs\n" + "\n".join(lines) + "\n")


def serve_until_interrupted() -> None:
    """Block until Ctrl-C or SIGTERM (tests replace this)."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _invoke_one(args: argparse.Namespace) -> tuple[int, str | None]:
    try:
        event = json.loads(args.file.read_text())
    except json.JSONDecodeError as error:
        print(f"{args.file}: not valid JSON ({error.msg} at line {error.lineno})", file=sys.stderr)
        return 2, None
    try:
        sample = samples.check(args.file, event, args.function)
    except samples.SampleMismatch as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2, None
    if sample is not None and sample.note:
        print(f"{args.file.name} ({args.function}): {sample.note}", file=sys.stderr)
    if args.endpoint_url or args.profile or args.region or args.stack_name:
        return _invoke_deployed(args, event)
    with local_stack(graph_base_url=args.graph_base_url) as (local, sim, pipeline):
        event = sample_seeds.seed(args.function, event, local, sim, pipeline)  # what earlier stages would have made
        result = pipeline.invoke(args.function, event)
        dead = _dead_letters(local)
    return (1 if dead else 0), json.dumps({"result": result, "dead_letters": dead}, default=str, sort_keys=True)


def _invoke_deployed(args: argparse.Namespace, event: Any) -> tuple[int, str | None]:
    """One event through one handler of this process against a deployed stack: the function's own settings from
    the stack (``--stack-name``), or from the environment."""
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    if args.graph_base_url:
        os.environ["STOCKSYNC_GRAPH_BASE_URL"] = args.graph_base_url
    try:
        function = function_logical_id(args.function) if args.stack_name else DEFAULT_FUNCTION
        with deployment(args, function=function):
            if args.graph_base_url:  # over the stack's value too
                os.environ["STOCKSYNC_GRAPH_BASE_URL"] = args.graph_base_url
            _reset_process_caches()
            result = load_function(args.function).lambda_handler(event, HandlerContext(args.function))
    except SettingsError as error:
        print(f"stocksync {COMMAND}: {error}", file=sys.stderr)
        return 2, None
    return 0, json.dumps(result, default=str, sort_keys=True)


def _reset_process_caches() -> None:
    get_settings.cache_clear()
    aws.reset_clients()
    clear_graph_client_cache()


@contextmanager
def local_stack(
    *,
    overrides: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    graph_base_url: str | None = None,
    catalog_id: str = "1001",
    in_process: bool = False,
) -> Iterator[tuple[LocalAws, CommercePlatformSimulator, LocalPipeline]]:
    """moto server with the template deployed + the simulator, the process environment pointed at both.

    ``in_process``: this process's boto3 calls reach moto without a socket each (LocalAws says how), for large
    scenarios (``--in-process``, bench/replay_bench.py); by default they go over HTTP to the server on 127.0.0.1, the
    same path as a deployed function's calls to AWS, as the tests and ``make demo`` run."""
    saved = dict(os.environ)
    parameter_overrides = {"CatalogId": catalog_id, **(parameters or {})}
    # A stack name of its own: moto's state is per process, and a test session may hold another stack already.
    stack_name = f"stocksync-replay-{uuid.uuid4().hex[:8]}"
    with (
        LocalAws(parameter_overrides=parameter_overrides, stack_name=stack_name, in_process=in_process) as local,
        CommercePlatformSimulator(catalog_id=catalog_id, access_token=TOKEN, app_secret=APP_SECRET) as sim,
    ):
        environment = local.function_environment(
            {"STOCKSYNC_GRAPH_BASE_URL": graph_base_url or sim.url, **(overrides or {})}
        )
        os.environ.update(environment)
        local.put_graph_credentials(TOKEN, APP_SECRET)
        local.put_webhook_secrets()  # what the webhook samples in events/ are signed with
        _reset_process_caches()
        clock.use(sim.now)
        try:
            yield local, sim, LocalPipeline(local, advance_clock=sim.advance, invocation_seconds=INVOCATION_SECONDS)
        finally:
            clock.use(None)
            os.environ.clear()
            os.environ.update(saved)
            _reset_process_caches()


def deployment_buckets() -> set[str]:
    """The bucket names template.yaml gives every function (STOCKSYNC_BUCKETS), read before anything is deployed."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    value = variables["STOCKSYNC_BUCKETS"]
    text = value.get("Fn::Sub", "") if isinstance(value, dict) else str(value)
    return set(re.findall(r'"([a-z][a-z0-9_-]*)":\s*\{', text if isinstance(text, str) else text[0]))


def _parameters(scenario: Scenario) -> dict[str, str]:
    """Template parameter overrides for the scenario's deployment-wide settings (as `sam deploy` would set them)."""
    parameters: dict[str, str] = {}
    if scenario.settings.deduction_mode:
        parameters["DeductionMode"] = scenario.settings.deduction_mode
    if scenario.settings.field:
        parameters["CatalogField"] = scenario.settings.field
    if scenario.settings.catalog_reads_per_hour is not None:
        parameters["CatalogReadsPerHour"] = str(scenario.settings.catalog_reads_per_hour)
    return parameters


def _buckets(scenario: Scenario, defaults: str) -> str:
    buckets: dict[str, dict[str, Any]] = json.loads(defaults)
    for name, override in (scenario.settings.buckets or {}).items():
        merged = {**buckets.get(name, {}), **override.model_dump(exclude_none=True)}
        if override.allocation_percent is not None:
            merged.pop("allocation_fixed", None)
        if override.allocation_fixed is not None:
            merged.pop("allocation_percent", None)
        buckets[name] = merged
    return json.dumps(buckets, sort_keys=True)


class RequestCounter:
    """Counts this process's boto3 requests per service while ``counting``: the cost figure the report has no
    other source for (DynamoDB requests). Every handler runs in this process, so their calls are all seen; the
    replay pauses it around its own reads (the checks after a run), which a deployment would not make."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.counting = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        counting, self.counting = self.counting, False
        try:
            yield
        finally:
            self.counting = counting


@contextmanager
def counted_requests() -> Iterator[RequestCounter]:
    """A RequestCounter fed by every ``BaseClient._make_api_call`` of the duration (whatever session made the
    client: the product makes its own), put back afterwards."""
    counter = RequestCounter()
    original = BaseClient._make_api_call

    def counting_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if counter.counting:
            counter.requests[client.meta.service_model.service_name] += 1
        return original(client, operation_name, api_params)

    BaseClient._make_api_call = counting_call  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def replay_scenario(
    scenario: Scenario,
    *,
    in_process: bool = False,
    feed_rate: str | None = None,
    keep: Callable[[LocalAws, CommercePlatformSimulator, dict[str, Any]], None] | None = None,
    progress: Progress = SILENT,
) -> dict[str, Any]:
    """Play the scenario in a fresh local stack and report on it.

    ``feed_rate`` (a schedule expression the replay can fire, ``rate(24 hours)``): instead of the product, a replace
    feed sets the catalog (``stocksync tune``'s baselines). Nothing is put on the bus and no function runs: at the
    start and on every tick of the rate, each product's catalog value becomes what the warehouse can still sell (its
    level less the units sold and not yet shipped, never below 0), the best value a feed exported at that instant can
    carry. Buyers, demand and shipping are played exactly as with the product, so the demand figures compare.

    ``keep``: called with the stack, the simulator and the report before the stack stops, the process still pointed
    at both (``stocksync replay --keep``); the dead letters the report lists are then left in their queues.
    ``progress`` shows where the replay is (on a terminal: ``make demo``).
    """
    progress.update("deploying template.yaml into moto, starting the Commerce Platform simulator")
    stack = local_stack(parameters=_parameters(scenario), catalog_id=scenario.catalog_id, in_process=in_process)
    with (
        stack as (local, sim, pipeline),
        loop_figures() as figures,
        counted_requests() as requests,
    ):
        if scenario.settings.buckets or scenario.settings.default_bucket:
            os.environ["STOCKSYNC_BUCKETS"] = _buckets(scenario, os.environ["STOCKSYNC_BUCKETS"])
            if scenario.settings.default_bucket:
                os.environ["STOCKSYNC_DEFAULT_BUCKET"] = scenario.settings.default_bucket
            _reset_process_caches()
        if scenario.settings.deduction_mode:
            # The platform deducts as the deployment assumes it does: the two modes are two platforms.
            sim.deduction_mode = scenario.settings.deduction_mode
        sim.batch_processing_delay = timedelta(seconds=scenario.platform.batch_processing_seconds)
        sim.batch_apply_fraction = scenario.platform.batch_apply_fraction
        player = ScenarioPlayer(local, sim, pipeline, scenario, feed_rate=feed_rate, requests=requests)
        progress.update(f"publishing the initial catalog ({len(scenario.skus)} SKUs)")
        player.publish_initial_state()
        figures.start(sim)
        counted_since = sim.now()
        requests.counting = True
        for index, step in enumerate(scenario.steps):
            progress.update(
                f"step {index + 1} of {len(scenario.steps)} ({_step_kind(step)}), {sim.now():%H:%M} simulated"
            )
            player.play(step, f"steps[{index}]")
        requests.counting = False
        progress.update("reading the catalog and the SKU table for the report")
        report = build_report(
            local,
            sim,
            player.refused_orders,
            _dead_letters(local, leave=keep is not None),
            loop=figures.as_dict(sim),
            catalog_differs_from_a=player.catalog_differs_from_a,
            races=player.races,
            scheduled_sweeps=player.scheduled_sweeps,
            demand=player.demand.as_dict(),
            counted_since=counted_since,
        )
        # From the first step on, as catalog_loop: what the deployment's functions asked of DynamoDB (0 with a feed).
        report["dynamodb_requests"] = requests.requests["dynamodb"]
        # The hottest demand SKU's published vs true stock over the demand steps (tune --plot draws it).
        report["stock_trace"] = player.trace.as_dict()
        if feed_rate is not None:
            report["feed"] = player.feed_figures()
        if keep is not None:
            keep(local, sim, report)
        return report


def _step_kind(step: Any) -> str:
    """``order``, ``run`` ...: the step's key in the scenario file (its model's first field)."""
    return next(iter(type(step).model_fields), "step")


class ScenarioPlayer:
    """Plays steps: buyers act on the platform (simulator), the merchant's systems on the bus, time on the clock.

    The pipeline runs as deployed: messages are delivered as they become due, and poll_orders fires every
    PollRate (template.yaml) at the phase of the first poll, between deliveries. Steps between two runs stand for
    time in which the deployment is not watched: ``advance`` moves the clock and nothing runs, so the polls that
    would have fired meanwhile are skipped, and a run starts with the deliveries, not with a catch-up poll.

    A bucket whose ``sweep_rate`` the scenario sets is swept on that schedule the same way (from the replay's start,
    ticks inside ``advance`` skipped): what ``<B>SweepRate`` does in a deployment, so a scenario can try a rate. The
    sweeps interleave with deliveries and polls but never keep a run going on their own: a run ends when it is quiet,
    as before. Buckets without one are swept only by ``run: sweep``, as before this was added, so the results of
    scenarios that never set a rate (and the template's own schedules, which fire only through ``run: sweep``) stay
    what they were.
    """

    def __init__(
        self,
        local: LocalAws,
        sim: CommercePlatformSimulator,
        pipeline: LocalPipeline,
        scenario: Scenario,
        *,
        feed_rate: str | None = None,
        requests: RequestCounter | None = None,
    ) -> None:
        self._local = local
        self._sim = sim
        self._pipeline = pipeline
        self._scenario = scenario
        self._events = local.client("events")
        self._bus = local.outputs["EventBusName"]
        self.refused_orders: list[str] = []
        self._warehouse_steps = 0  # the sequence of the last warehouse levels sent
        self._poll_every = timedelta(seconds=pipeline.interval_of(POLL_FUNCTION))
        self._first_poll_at: datetime | None = None  # the schedule's phase
        self._next_poll_at: datetime | None = None
        self._platform_changes = 0  # orders placed, moved or cancelled on the platform by steps so far
        self._changes_seen = 0  # of those, the ones a poll that read the whole listing began after
        self._polls_this_run = 0
        self._source_disabled = False
        self.edited_since_audit: set[str] = set()  # SKUs edited outside stocksync that no finished audit has read
        self.catalog_differs_from_a: list[dict[str, Any]] = []
        self.races: list[dict[str, Any]] = []
        # The schedules a scenario's sweep_rate sets, created with the replay's stack (a rate's phase counts from it).
        origin = sim.now()
        self._sweep_ticks = {
            bucket: Ticks(override.sweep_rate, origin)
            for bucket, override in sorted((scenario.settings.buckets or {}).items())
            if override.sweep_rate is not None
        }
        self._next_sweep_at = {bucket: ticks.after(origin) for bucket, ticks in self._sweep_ticks.items()}
        # For each of those buckets, the scheduled time of every sweep it fired (the report's scheduled_sweeps).
        self.scheduled_sweeps: dict[str, list[datetime]] = {bucket: [] for bucket in self._sweep_ticks}
        # The warehouse as the replay knows it (the levels its steps sent), and the units demand steps sold that it
        # has not shipped yet: the true stock a demand step sells against and judges the channels' sales by.
        self._levels = {sku.retailer_id: sku.warehouse for sku in scenario.skus}
        self._unshipped: Counter[str] = Counter()
        self.demand = DemandTally()
        self.trace = StockTrace(hottest_sku(scenario), origin)
        self._requests = requests or RequestCounter()
        # Feed mode (replay_scenario says what it is): the feed's schedule, the feeds applied, and for every change
        # of what the warehouse can sell, the seconds until the feed that carries it (its staleness).
        self._feed_ticks = None if feed_rate is None else Ticks(feed_rate, origin)
        self._next_feed_at = None if self._feed_ticks is None else self._feed_ticks.after(origin)
        self._feeds_applied = 0
        self._feed_delays: list[float] = []

    def publish_initial_state(self) -> None:
        """The catalog starts in sync: products exist, SKU settings and levels are in, the pipeline has published.
        The first poll (the poller's watermark, and the phase of its schedule) comes after the first drain. With a
        feed, the products exist and the first feed has set them; no deployment has anything to be told."""
        if self._feed_ticks is not None:
            for sku in self._scenario.skus:
                self._sim.add_product(sku.retailer_id, quantity=0, name=sku.retailer_id, price="10.00 USD")
            self._apply_feed()
            return
        for sku in self._scenario.skus:
            self._sim.add_product(
                sku.retailer_id,
                quantity=sku.catalog if sku.catalog is not None else sku.warehouse,
                name=sku.retailer_id,
                price="10.00 USD",
            )
        settings = [
            {
                "retailer_id": sku.retailer_id,
                "as_of": self._sim.now().isoformat(),
                **{
                    name: value
                    for name, value in (
                        ("bucket", sku.bucket),
                        ("allocation_percent", sku.allocation_percent),
                        ("allocation_fixed", sku.allocation_fixed),
                    )
                    if value is not None
                },
            }
            for sku in self._scenario.skus
        ]
        self._put("SKU Settings Changed", [entry for entry in settings if len(entry) > 2])
        self._warehouse({sku.retailer_id: sku.warehouse for sku in self._scenario.skus})
        self._operate()
        self._poll()
        self._operate()

    def play(self, step: Any, where: str = "step") -> None:
        """One step; ``where`` (``steps[3]``) names it in the checks and races the report lists."""
        if isinstance(step, OrderStep | CancelStep | CatalogEditStep):
            self._on_platform(step)
        elif isinstance(step, ShopOrderStep | SyncedStep | WarehouseStep | DiscontinueStep):
            self._on_bus(step)
        elif isinstance(step, RunStep | WhilePushingStep):
            self._run(step, where)
        elif isinstance(step, DemandStep):
            self._demand(step)
        elif isinstance(step, AdvanceStep):
            self._pipeline.fast_forward(step.advance)
        elif isinstance(step, ThrottleStep):
            spec = step.throttle
            self._sim.throttle_after(
                spec.after_calls, code=spec.code, regain_minutes=spec.regain_minutes, endpoint=spec.endpoint
            )

    def _on_platform(self, step: OrderStep | CancelStep | CatalogEditStep) -> None:
        """Buyers, the platform and people in Commerce Manager act on the simulator."""
        if isinstance(step, OrderStep):
            self._order(step)
        elif isinstance(step, CancelStep):
            cancel = step.cancel
            items = [(item.retailer_id, item.quantity) for item in cancel.items] if cancel.items is not None else None
            with suppress(ValueError, LookupError):  # an order the platform refused has nothing to cancel
                self._sim.cancel_order(cancel.id, items, by=cancel.by, restock_items=cancel.restock_items)
                self._platform_changes += 1
        else:
            for retailer_id, edit in step.catalog_edit.items():
                fields: dict[str, Any] = {} if edit.units is None else {QUANTITY_FIELD: edit.units}
                if edit.visibility is not None:
                    fields["visibility"] = edit.visibility
                self._sim.edit_product(retailer_id, **fields)
                self.edited_since_audit.add(retailer_id)

    def _on_bus(self, step: ShopOrderStep | SyncedStep | WarehouseStep | DiscontinueStep) -> None:
        """The merchant's systems put events on the bus."""
        now = self._sim.now().isoformat()
        if isinstance(step, ShopOrderStep):
            order = step.shop_order
            detail = {
                "order_id": order.id,
                "state": order.state,
                "channel": order.channel,
                "items": [{"retailer_id": item.retailer_id, "quantity": item.quantity} for item in order.items],
                "placed_at": now,
                "occurred_at": now,
            }
            self._put("Order Changed", [detail])
        elif isinstance(step, SyncedStep):
            self._put("Warehouse Orders Synced", [{"order_ids": step.synced, "as_of": now}])
        elif isinstance(step, WarehouseStep):
            self._warehouse(step.warehouse)
            self._stock_changed()
        else:
            self._put(
                "SKU Settings Changed",
                [{"retailer_id": sku, "as_of": now, "discontinued": True} for sku in step.discontinue],
            )

    def _run(self, step: RunStep | WhilePushingStep, where: str) -> None:
        if self._feed_ticks is not None:
            # No deployment runs with a feed: nothing to run and no A to check; buyers and the merchant still act.
            for moment in step.while_pushing if isinstance(step, WhilePushingStep) else []:
                for nested in moment.steps:
                    self.play(nested, where)
            return
        if isinstance(step, WhilePushingStep):
            self._while_pushing(step, where)
            self._check_catalog(where)
        elif step.run == "pipeline":
            self._run_pipeline()
            self._check_catalog(where)
        elif step.run == "audit":
            self._audit()
            self._operate()
        else:
            assert step.bucket is not None
            self._pipeline.sweep(step.bucket)
            self._operate()

    # -- the deployment, running ----------------------------------------------------------------------------

    def _run_pipeline(self, stop: Callable[[], bool] | None = None) -> bool:
        """Until every queue is empty and a poll that read the whole listing began after the last platform change
        (waiting for the poll's next tick when the queues are empty first); or until ``stop`` holds."""
        self._polls_this_run = 0
        return self._operate(settle=True, stop=stop)

    def _operate(
        self, *, settle: bool = False, stop: Callable[[], bool] | None = None, until: datetime | None = None
    ) -> bool:
        """Deliver what is due, fire the poll on its ticks, and move the clock over the waits.

        Ends when ``stop`` holds after an invocation (True), at ``until``, or when nothing is left to deliver and,
        with ``settle`` or ``stop``, no platform change waits for a poll (False). Without ``settle`` it is a
        plain drain during which polls still fire on their ticks, as they would in a deployment.
        """
        if self._feed_ticks is not None:
            self._feed_until(until)
            return False
        self._align_polls()
        self._align_sweeps()
        for _ in range(MAX_ROUNDS):
            if stop is not None and stop():
                return True
            now = self._sim.now()
            if until is not None and now >= until:
                return False
            if self._next_poll_at is not None and now >= self._next_poll_at:
                self._poll()
                continue
            due = [bucket for bucket, tick in self._next_sweep_at.items() if now >= tick]
            if due:
                self._scheduled_sweep(min(due, key=lambda bucket: (self._next_sweep_at[bucket], bucket)))
                continue
            if self._pipeline.deliver_next():
                continue
            wait = self._pipeline.next_wait()
            for_poll = (settle or stop is not None) and self._changes_unseen()
            if wait is None and until is None and not for_poll:
                return False
            moments = [moment for moment in (until, self._next_poll_at) if moment is not None]
            if wait is not None:
                moments.append(now + timedelta(seconds=wait))
            if not moments:
                return False  # a change waits for a poll, but no poll has run yet to set the schedule's phase
            moments.extend(self._next_sweep_at.values())  # a wake-up while the run goes on, never a reason to go on
            self._pipeline.fast_forward(max(0.0, (min(moments) - now).total_seconds()))
        raise PipelineStuckError(f"the pipeline did not settle in {MAX_ROUNDS} rounds")

    # -- a replace feed instead of the deployment (feed mode) -------------------------------------------------

    def _feed_until(self, until: datetime | None) -> None:
        """Move the clock to ``until`` (nothing to do without one), applying each feed whose tick comes first."""
        if until is None or self._feed_ticks is None or self._next_feed_at is None:
            return
        while self._next_feed_at <= until:
            self._pipeline.fast_forward(max(0.0, (self._next_feed_at - self._sim.now()).total_seconds()))
            self._apply_feed()
            self._next_feed_at = self._feed_ticks.after(self._next_feed_at)
        self._pipeline.fast_forward(max(0.0, (until - self._sim.now()).total_seconds()))

    def _apply_feed(self) -> None:
        """A replace feed: every product's value := what the warehouse can sell now (an upload overwrites the
        platform's count, as an items_batch does)."""
        for sku in self._scenario.skus:
            self._sim.edit_product(sku.retailer_id, **{QUANTITY_FIELD: max(0, self._sellable(sku.retailer_id))})
        self._feeds_applied += 1

    def _sellable(self, retailer_id: str) -> int:
        return self._levels[retailer_id] - self._unshipped[retailer_id]

    def _stock_changed(self) -> None:
        """With a feed, a change of what the warehouse can sell reaches the catalog at the next feed."""
        if self._feed_ticks is not None:
            now = self._sim.now()
            self._feed_delays.append((self._feed_ticks.after(now) - now).total_seconds())

    def feed_figures(self) -> dict[str, Any]:
        """Feeds applied (the initial one included) and change -> catalog seconds, as change_to_confirm_seconds."""
        latency = summarize(self._feed_delays)
        return {"feeds": self._feeds_applied, "change_to_catalog_seconds": latency.as_dict() if latency else None}

    def _changes_unseen(self) -> bool:
        """A platform change no complete listing has covered yet, and a poll may still cover it."""
        return (
            self._changes_seen < self._platform_changes
            and not self._source_disabled
            and self._polls_this_run < MAX_POLLS_PER_RUN
        )

    def _align_polls(self) -> None:
        """The next tick at or after now: the ticks that fell inside ``advance`` steps are skipped (nothing runs
        in them), as a run starts where the scenario's clock is."""
        if self._first_poll_at is None or self._next_poll_at is None:
            return
        now = self._sim.now()
        if self._next_poll_at < now:
            ticks = -((self._first_poll_at - now) // self._poll_every)  # ceil((now - first) / every)
            self._next_poll_at = self._first_poll_at + ticks * self._poll_every

    def _align_sweeps(self) -> None:
        """Each rate-scheduled bucket's next tick at or after now: as for the poll, ticks inside ``advance`` steps
        are skipped, not caught up."""
        now = self._sim.now()
        for bucket, tick in self._next_sweep_at.items():
            if tick < now:
                self._next_sweep_at[bucket] = self._sweep_ticks[bucket].at_or_after(now)

    def _scheduled_sweep(self, bucket: str) -> None:
        """The bucket's sweep as its schedule fires it; its next tick is the first after this one (or after the
        sweep's end, should a sweep outlast its rate: one invocation at a time, as the sweep's lease allows)."""
        scheduled = self._next_sweep_at[bucket]
        self.scheduled_sweeps[bucket].append(scheduled)
        self._pipeline.sweep(bucket)
        self._next_sweep_at[bucket] = self._sweep_ticks[bucket].after(max(scheduled, self._sim.now()))

    def _poll(self) -> None:
        """poll_orders as its schedule fires it; the next tick is the first one after this one (or after the poll's
        end, should a poll outlast PollRate)."""
        changes = self._platform_changes
        started = self._sim.now()
        result = self._pipeline.run_schedule(POLL_FUNCTION) or {}
        if self._first_poll_at is None:
            self._first_poll_at = started
        ticks = (max(started, self._sim.now()) - self._first_poll_at) // self._poll_every + 1
        self._next_poll_at = self._first_poll_at + ticks * self._poll_every
        self._polls_this_run += 1
        if result.get("completed"):
            self._changes_seen = changes
        if result.get("disabled"):
            self._source_disabled = True

    def _audit(self) -> None:
        """audit_catalog with the input its schedule passes (the scheduler's context attributes filled in)."""
        schedule = self._pipeline.schedule_of(AUDIT_FUNCTION)
        result = self._pipeline.invoke(schedule.function, scheduler_input(schedule.payload, self._sim.now()))
        if isinstance(result, dict) and result.get("finished"):
            self.edited_since_audit.clear()

    def _while_pushing(self, step: WhilePushingStep, where: str) -> None:
        """Run the pipeline until the simulator accepts an items_batch call; then each moment's steps at its point
        of that batch's processing (the clock and the pipeline move to it, delivering what falls due before it);
        then the pipeline runs on as ``run: pipeline`` does."""
        known = len(self._sim.batches())
        pushed = self._run_pipeline(stop=lambda: len(self._sim.batches()) > known)
        race: dict[str, Any] = {"step": where, "batch": None, "moments": []}
        timeline: dict[str, Any] | None = None
        if pushed:
            handle = list(self._sim.batches())[known]
            timeline = self._sim.batches()[handle]
            race["batch"] = handle
        else:
            print(
                f"{where}: the pipeline settled without an items_batch call; the while_pushing steps ran after it",
                file=sys.stderr,
            )
        ran_at: list[datetime] = []
        for moment in step.while_pushing:
            if timeline is not None:
                self._operate(until=_point(moment, timeline))
            ran_at.append(self._sim.now())
            for nested in moment.steps:
                self.play(nested, where)
        self._run_pipeline()
        if timeline is not None:
            final = self._sim.batches()[race["batch"]]
            sent, applied = final["accepted_at"], final["applied_at"]
            race["applied_seconds_after_call"] = (applied - sent).total_seconds()
            race["finished_seconds_after_call"] = (final["ready_at"] - sent).total_seconds()
            race["moments"] = [
                {
                    "at": moment.at,
                    "seconds_after_call": (moment_at - sent).total_seconds(),
                    "relative": "before the batch was applied" if moment_at < applied else "after it was applied",
                }
                for moment, moment_at in zip(step.while_pushing, ran_at, strict=True)
            ]
        self.races.append(race)

    def _check_catalog(self, where: str) -> None:
        """After a run: every SKU's catalog shows its A, unless someone edited it outside stocksync since the last
        audit, or the run's polls never read every order (a source throttled past MAX_POLLS_PER_RUN, removed)."""
        unread = self._changes_seen < self._platform_changes
        with self._requests.paused():
            differences = differences_from_a(self._local, self._sim)
        for difference in differences:
            why = None
            if difference["retailer_id"] in self.edited_since_audit:
                why = "edited outside stocksync since the last audit"
            elif unread:
                why = "the last poll did not read every order"
            self.catalog_differs_from_a.append({"step": where, **difference, "why": why})

    def _order(self, step: OrderStep) -> None:
        order = step.order
        if order.items is None:
            if order.id not in self.refused_orders:
                self._sim.move_order(order.id, order.state.value)
                self._platform_changes += 1
            return
        try:
            self._sim.place_order(
                order.id, [(item.retailer_id, item.quantity) for item in order.items], state=order.state.value
            )
        except OrderRefused:
            self.refused_orders.append(order.id)
        else:
            self._platform_changes += 1

    def _demand(self, step: DemandStep) -> None:
        """Buyers arrive at their instants while the deployment runs: before each arrival or shipment the pipeline
        delivers what falls due up to that instant and polls and sweeps fire on their ticks (as in a run), so what a
        buyer finds is what the deployment had published by then. The step lasts the window, and on until the last
        unit sold in it has shipped (when the warehouse ships)."""
        spec = step.demand
        self.demand.steps += 1
        start = self._sim.now()
        prefix = f"demand{self.demand.steps}"
        # (instant, 0 shipment / 1 arrival, number, what): shipments first at one instant, then in the order drawn.
        agenda: list[tuple[datetime, int, int, Any]] = [
            (start + timedelta(seconds=arrival.seconds), 1, number, arrival)
            for number, arrival in enumerate(arrivals(spec))
        ]
        heapq.heapify(agenda)
        waves: dict[datetime, list[tuple[str, str]]] = {}
        while agenda:
            instant, kind, number, what = heapq.heappop(agenda)
            self._operate(until=instant)
            self._trace()
            if kind == 0:
                self._ship(waves.pop(instant))
                self._trace()
                continue
            sold_id = self._buyer(what, f"{prefix}-{number:05d}")
            self._trace()
            if sold_id is None or spec.ship_after_minutes is None:
                continue
            # The warehouse ships in waves (every ship_every_minutes from the window's start): the first wave at or
            # after the unit is due, one level per SKU and one sync notice per wave.
            due = self._sim.now() + timedelta(minutes=spec.ship_after_minutes)
            every = timedelta(minutes=spec.ship_every_minutes)
            wave = start + -(-(due - start) // every) * every  # ceil, in whole waves from the start
            if wave not in waves:
                waves[wave] = []
                heapq.heappush(agenda, (wave, 0, 0, None))
            waves[wave].append((sold_id, what.retailer_id))
        self._operate(until=start + timedelta(minutes=spec.minutes))
        self._trace()

    def _trace(self) -> None:
        """A point of the traced SKU when it changed: true stock below 0 is units sold that the warehouse lacks."""
        self.trace.record(self._sim.now(), self._sim.available, self._sellable)

    def _buyer(self, arrival: Arrival, order_id: str) -> str | None:
        """One buyer wanting one unit: the platform sells what its catalog shows, the web shop what the warehouse
        has that nobody bought. The order's id when sold, None when turned away (counted either way)."""
        retailer_id = arrival.retailer_id
        true_stock = self._levels[retailer_id] - self._unshipped[retailer_id]
        if arrival.channel == "platform":
            order_id = f"{order_id}-fb"
            try:
                self._sim.place_order(order_id, [(retailer_id, 1)], state="CREATED")
            except OrderRefused:
                self.demand.turned_away(retailer_id, "platform", true_stock)
                return None
            self._platform_changes += 1
        elif true_stock <= 0:
            self.demand.turned_away(retailer_id, "web", true_stock)
            return None
        else:
            order_id = f"{order_id}-web"
            self._on_bus(
                ShopOrderStep.model_validate(
                    {
                        "shop_order": {
                            "id": order_id,
                            "state": "placed",
                            "items": [{"retailer_id": retailer_id, "quantity": 1}],
                        }
                    }
                )
            )
        self.demand.sold(retailer_id, arrival.channel, true_stock)
        self._unshipped[retailer_id] += 1
        self._stock_changed()
        return order_id

    def _ship(self, orders: list[tuple[str, str]]) -> None:
        """A wave of shipments: the warehouse's new levels (a unit it does not have, over-sold, is not shipped and
        the level stays at 0), then the notice that it has accounted for these orders, as a warehouse sends both."""
        units = Counter(retailer_id for _order_id, retailer_id in orders)
        levels: dict[str, int] = {}
        for retailer_id, count in sorted(units.items()):
            level = self._levels[retailer_id]
            filled = min(level, count)
            levels[retailer_id] = level - filled
            self._unshipped[retailer_id] -= count
            self.demand.shipped(retailer_id, filled, count - filled)
        self._warehouse(levels)
        ids, now = [order_id for order_id, _ in orders], self._sim.now().isoformat()
        # A notice names at most 1,000 orders (the bus schema's limit).
        self._put(
            "Warehouse Orders Synced",
            [{"order_ids": ids[at : at + 1000], "as_of": now} for at in range(0, len(ids), 1000)],
        )

    def _warehouse(self, levels: dict[str, int]) -> None:
        """Levels stamped strictly later than the previous step's: the simulated time and a per-replay ``sequence``.

        Steps happen in order, but two of them without an ``advance`` between share the simulated time, and their
        events reach the warehouse queue together, in an order SQS does not promise. The sequence (which the SKU
        table compares when ``as_of`` is equal) makes ``warehouse 10, then 8, then 6`` end with 6 whatever the
        delivery order, as a warehouse that numbers its counts would.
        """
        self._warehouse_steps += 1
        self._levels.update(levels)
        if self._feed_ticks is not None:
            return  # no deployment listens; a level a shipment sends does not change what can be sold

        now = self._sim.now().isoformat()
        entries = [
            {"retailer_id": sku, "level": level, "as_of": now, "sequence": self._warehouse_steps}
            for sku, level in levels.items()
        ]
        self._put(
            "Warehouse Stock Levels",
            [{"levels": entries[start : start + 500]} for start in range(0, len(entries), 500)],
        )

    def _put(self, detail_type: str, details: list[dict[str, Any]]) -> None:
        if self._feed_ticks is not None:
            return  # a feed replaces the deployment: nobody listens on its bus
        for start in range(0, len(details), 10):
            answer = self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus,
                        "Source": BUS_SOURCES[detail_type],  # the source the bus rule accepts for it
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                    }
                    for detail in details[start : start + 10]
                ]
            )
            if answer.get("FailedEntryCount"):
                raise RuntimeError(f"the bus refused {detail_type} events: {answer['Entries']}")


def _point(moment: PushMoment, timeline: dict[str, Any]) -> datetime:
    """Where a moment falls in a batch's processing, from the batch's own instants (scenario.point_seconds says
    the same from the settings): halfway to the application, halfway from it to the end, or seconds after the call."""
    sent, applied, ready = timeline["accepted_at"], timeline["apply_at"], timeline["ready_at"]
    if moment.at == "before_apply":
        return sent + (applied - sent) / 2
    if moment.at == "after_apply":
        return applied + (ready - applied) / 2
    return sent + timedelta(seconds=float(moment.at))


def _dead_letters(local: LocalAws, *, leave: bool = False) -> list[dict[str, Any]]:
    """Every message left in a dead-letter queue of the stack (the reasoned one and each queue's redrive DLQ),
    taken out of it; ``leave``: made visible again afterwards instead, for a stack that stays (``--keep``)."""
    sqs = local.client("sqs")
    letters = []
    received: list[tuple[str, str]] = []
    for logical_id, (kind, url) in sorted(local.resources.items()):
        if kind != "AWS::SQS::Queue" or not logical_id.endswith("DeadLetterQueue"):
            continue
        while True:
            answer = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=_HIDE_SECONDS
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                attributes = {
                    name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()
                }
                try:
                    body: Any = json.loads(message["Body"])
                except json.JSONDecodeError:
                    body = message["Body"]
                reason = attributes.get("reason") or "failed repeatedly (redriven after maxReceiveCount)"
                letters.append({"queue": logical_id, "reason": reason, "body": body})
                if leave:
                    received.append((url, message["ReceiptHandle"]))
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for url, handle in received:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return letters
