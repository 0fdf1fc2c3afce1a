"""``stocksync replay``: sample events and scenario files through the real handlers, end to end, without Docker.

    stocksync replay events/scenarios/demo_day.json            # a scenario (report on stdout)
    stocksync replay events/scenarios/demo_day.json --json     # exactly one JSON object on stdout
    stocksync replay events/order_events_sqs_batch.json --function order_events   # like `sam local invoke -e`

By default the command starts its own moto server (with template.yaml deployed into it) and the Commerce Platform
simulator, and stops them when done. ``--endpoint-url`` (and ``--profile``) point it at an AWS account or LocalStack
instead, and ``--graph-base-url`` at a real Graph API; the same handlers run either way. A scenario needs the
simulator (it places buyer orders on the platform), so scenarios always run against it.

Exit status: 0 success, 1 when a dead letter remains, 2 when the scenario is invalid (nothing has run then).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from pathlib import Path
from typing import Any

from stocksync import clock
from stocksync.cli.pipeline import HandlerContext, LocalPipeline, load_function
from stocksync.cli.replay_report import build_report, render_report
from stocksync.cli.scenario import (
    AdvanceStep,
    CancelStep,
    DiscontinueStep,
    OrderStep,
    RunStep,
    Scenario,
    ScenarioError,
    SyncedStep,
    ThrottleStep,
    WarehouseStep,
    load_scenario,
)
from stocksync.dal import aws
from stocksync.integrations.graph_api import clear_graph_client_cache
from stocksync.local.aws import LocalAws
from stocksync.local.template import load_template
from stocksync.models.settings import get_settings
from stocksync.observability import logger
from stocksync.simulator import CommercePlatformSimulator, OrderRefused

COMMAND = "replay"
HELP = "run a scenario file, or one sample event through one handler, locally and end to end"
TOKEN, APP_SECRET = "replay-token", "replay-app-secret"
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1", "POWERTOOLS_TRACE_DISABLED": "1"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        COMMAND, help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="a scenario file, or a sample event with --function")
    parser.add_argument("--function", help="invoke this function (folder under functions/) with the event file")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--endpoint-url", help="AWS endpoint of a deployed stack (default: embedded moto server)")
    parser.add_argument("--profile", help="AWS profile for --endpoint-url or a real account")
    parser.add_argument("--graph-base-url", help="Graph API base URL (default: the embedded simulator)")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the handlers' info logs and EMF metrics (warnings show anyway)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    with _logs_to_stderr(verbose=args.verbose):
        code, output = _invoke_one(args) if args.function else _replay_file(args)
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


def _replay_file(args: argparse.Namespace) -> tuple[int, str | None]:
    try:
        scenario = load_scenario(args.file, deployment_buckets=deployment_buckets())
    except ScenarioError as error:
        print(f"invalid scenario {args.file}: {error}", file=sys.stderr)
        return 2, None
    if args.endpoint_url or args.graph_base_url:
        print(
            "a scenario places buyer orders on the platform, so it runs against the embedded simulator and moto; "
            "use --function to replay one event against a real endpoint",
            file=sys.stderr,
        )
        return 2, None
    report = replay_scenario(scenario)
    return (1 if report["dead_letters"] else 0), (
        json.dumps(report, sort_keys=True) if args.json else render_report(report)
    )


def _invoke_one(args: argparse.Namespace) -> tuple[int, str | None]:
    try:
        event = json.loads(args.file.read_text())
    except json.JSONDecodeError as error:
        print(f"{args.file}: not valid JSON ({error.msg} at line {error.lineno})", file=sys.stderr)
        return 2, None
    if args.endpoint_url or args.profile:
        if args.endpoint_url:
            os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        if args.profile:
            os.environ["AWS_PROFILE"] = args.profile
        if args.graph_base_url:
            os.environ["STOCKSYNC_GRAPH_BASE_URL"] = args.graph_base_url
        _reset_process_caches()
        result = load_function(args.function).lambda_handler(event, HandlerContext(args.function))
        return 0, json.dumps(result, default=str, sort_keys=True)
    with local_stack(graph_base_url=args.graph_base_url) as (local, _sim, pipeline):
        result = pipeline.invoke(args.function, event)
        dead = _dead_letters(local)
    return (1 if dead else 0), json.dumps({"result": result, "dead_letters": dead}, default=str, sort_keys=True)


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
) -> Iterator[tuple[LocalAws, CommercePlatformSimulator, LocalPipeline]]:
    """moto server with the template deployed + the simulator, the process environment pointed at both."""
    saved = dict(os.environ)
    parameter_overrides = {"CatalogId": catalog_id, **(parameters or {})}
    # A stack name of its own: moto's state is per process, and a test session may hold another stack already.
    stack_name = f"stocksync-replay-{uuid.uuid4().hex[:8]}"
    with (
        LocalAws(parameter_overrides=parameter_overrides, stack_name=stack_name) as local,
        CommercePlatformSimulator(catalog_id=catalog_id, access_token=TOKEN, app_secret=APP_SECRET) as sim,
    ):
        environment = local.function_environment(
            {"STOCKSYNC_GRAPH_BASE_URL": graph_base_url or sim.url, **(overrides or {})}
        )
        os.environ.update(environment)
        local.put_graph_credentials(TOKEN, APP_SECRET)
        _reset_process_caches()
        clock.use(sim.now)
        try:
            yield local, sim, LocalPipeline(local, advance_clock=sim.advance)
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


def replay_scenario(scenario: Scenario) -> dict[str, Any]:
    with local_stack(parameters=_parameters(scenario), catalog_id=scenario.catalog_id) as (local, sim, pipeline):
        if scenario.settings.buckets or scenario.settings.default_bucket:
            os.environ["STOCKSYNC_BUCKETS"] = _buckets(scenario, os.environ["STOCKSYNC_BUCKETS"])
            if scenario.settings.default_bucket:
                os.environ["STOCKSYNC_DEFAULT_BUCKET"] = scenario.settings.default_bucket
            _reset_process_caches()
        player = ScenarioPlayer(local, sim, pipeline, scenario)
        player.publish_initial_state()
        for step in scenario.steps:
            player.play(step)
        return build_report(local, sim, player.refused_orders, _dead_letters(local))


class ScenarioPlayer:
    """Plays steps: buyers act on the platform (simulator), the merchant's systems on the bus, time on the clock."""

    def __init__(
        self, local: LocalAws, sim: CommercePlatformSimulator, pipeline: LocalPipeline, scenario: Scenario
    ) -> None:
        self._local = local
        self._sim = sim
        self._pipeline = pipeline
        self._scenario = scenario
        self._events = local.client("events")
        self._bus = local.outputs["EventBusName"]
        self.refused_orders: list[str] = []
        self._warehouse_steps = 0  # the sequence of the last warehouse levels sent

    def publish_initial_state(self) -> None:
        """The catalog starts in sync: products exist, SKU settings and levels are in, the pipeline has published."""
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
        self._pipeline.drain()
        self._pipeline.run_schedule("poll_orders")
        self._pipeline.drain()

    def play(self, step: Any) -> None:
        if isinstance(step, OrderStep):
            self._order(step)
        elif isinstance(step, CancelStep):
            cancel = step.cancel
            items = [(item.retailer_id, item.quantity) for item in cancel.items] if cancel.items is not None else None
            with suppress(ValueError, LookupError):  # an order the platform refused has nothing to cancel
                self._sim.cancel_order(cancel.id, items, by=cancel.by, restock_items=cancel.restock_items)
        elif isinstance(step, SyncedStep):
            self._put("Warehouse Orders Synced", [{"order_ids": step.synced, "as_of": self._sim.now().isoformat()}])
        elif isinstance(step, WarehouseStep):
            self._warehouse(step.warehouse)
        elif isinstance(step, DiscontinueStep):
            now = self._sim.now().isoformat()
            self._put(
                "SKU Settings Changed",
                [{"retailer_id": sku, "as_of": now, "discontinued": True} for sku in step.discontinue],
            )
        elif isinstance(step, AdvanceStep):
            self._pipeline.fast_forward(step.advance)
        elif isinstance(step, ThrottleStep):
            spec = step.throttle
            self._sim.throttle_after(
                spec.after_calls, code=spec.code, regain_minutes=spec.regain_minutes, endpoint=spec.endpoint
            )
        elif isinstance(step, RunStep):
            if step.run == "pipeline":
                self._pipeline.drain()
                self._pipeline.run_schedule("poll_orders")
            else:
                assert step.bucket is not None
                self._pipeline.sweep(step.bucket)
            self._pipeline.drain()

    def _order(self, step: OrderStep) -> None:
        order = step.order
        if order.items is None:
            if order.id not in self.refused_orders:
                self._sim.move_order(order.id, order.state.value)
            return
        try:
            self._sim.place_order(
                order.id, [(item.retailer_id, item.quantity) for item in order.items], state=order.state.value
            )
        except OrderRefused:
            self.refused_orders.append(order.id)

    def _warehouse(self, levels: dict[str, int]) -> None:
        """Levels stamped strictly later than the previous step's: the simulated time and a per-replay ``sequence``.

        Steps happen in order, but two of them without an ``advance`` between share the simulated time, and their
        events reach the warehouse queue together, in an order SQS does not promise. The sequence (which the SKU
        table compares when ``as_of`` is equal) makes ``warehouse 10, then 8, then 6`` end with 6 whatever the
        delivery order, as a warehouse that numbers its counts would.
        """
        self._warehouse_steps += 1
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
        for start in range(0, len(details), 10):
            answer = self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus,
                        "Source": "stocksync.replay",
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                    }
                    for detail in details[start : start + 10]
                ]
            )
            if answer.get("FailedEntryCount"):
                raise RuntimeError(f"the bus refused {detail_type} events: {answer['Entries']}")


def _dead_letters(local: LocalAws) -> list[dict[str, Any]]:
    """Every message left in a dead-letter queue of the stack (the reasoned one and each queue's redrive DLQ)."""
    sqs = local.client("sqs")
    letters = []
    for logical_id, (kind, url) in sorted(local.resources.items()):
        if kind != "AWS::SQS::Queue" or not logical_id.endswith("DeadLetterQueue"):
            continue
        while True:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
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
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return letters
