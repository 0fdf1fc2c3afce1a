"""``stocksync status [--json]``: the deployment's health at a glance, read-only.

What it reads: the order poll's cursor (last complete listing, throttling, a disabled source) in the control table;
every queue of the stack (depths, dead-letter counts, the age of the oldest message where CloudWatch has it:
stocksync_dev.cli.stack_queues); the three call budgets of the catalog (items_batch, catalog reads, status
checks) as the pacer keeps them; every SKU of every bucket through the bucket index, evaluated with recompute's own
formula (over-sold: owed units beyond I, the warehouse level; at zero: published 0); and what the last catalog
audit found.

It never writes: no message is received, no budget is spent, no record changes. It runs against a deployed stack
(``--stack-name``, with ``--profile``/``--region``: recompute's settings, read from the stack) or the stack the
functions' environment variables name (stocksync_dev.cli.inspect_settings), a local one kept by
``stocksync replay --keep`` included.

Exit status: 0 when it could read everything, 1 when an AWS call failed (one line names it), 2 when the settings
are incomplete (every missing one is named).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stocksync.dal import aws
from stocksync.dal.audit_positions import AuditResults
from stocksync.dal.budget import DynamoCallBudget
from stocksync.dal.control_table import ControlTable
from stocksync.dal.sku_table import SkuTable
from stocksync.errors import ConfigurationError
from stocksync.logic.batch_budget import epoch_ms
from stocksync.logic.explanation import StockHealth
from stocksync.models.settings import Settings
from stocksync.models.sku import from_ms
from stocksync_dev.cli.inspect_settings import FUNCTION, describe_aws_error, reference_now
from stocksync_dev.cli.stack_queues import QueueDepth, queue_depths
from stocksync_dev.cli.stack_settings import add_stack_arguments, run_in_deployment

COMMAND = "status"
HELP = "show the deployment's health at a glance: polls, queues, dead letters, call budgets, over-sold SKUs, drift"
# The polled order source (poll_orders' SOURCE): the only one with a cursor; the events source has none.
POLLED_SOURCE = "meta_commerce"
_PAGE_SIZE = 1000
_HOUR_MS = 3_600_000


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``status`` on the ``stocksync`` command's subparsers."""
    parser = subparsers.add_parser(
        COMMAND, help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return run_in_deployment(args, COMMAND, FUNCTION, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        now = reference_now()
    except ConfigurationError as error:
        print(f"stocksync {COMMAND}: {error}", file=sys.stderr)
        return 2
    try:
        report = collect(settings, now=now)
    except (ClientError, BotoCoreError) as error:
        print(f"stocksync {COMMAND}: {describe_aws_error(error)}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else describe(report))
    return 0


def collect(settings: Settings, *, now: datetime) -> dict[str, Any]:
    dynamodb = aws.client("dynamodb")
    queues = queue_depths(aws.client("sqs"), aws.client("cloudwatch"), settings)
    return {
        "now": now.isoformat(),
        "catalog_id": settings.catalog_id,
        "deduction_mode": settings.deduction_mode.value,
        "order_poll": _poll(ControlTable(dynamodb, settings.control_table), now),
        "queues": [_queue(depth) for depth in queues if not depth.dead_letter],
        "dead_letter_queues": [_queue(depth) for depth in queues if depth.dead_letter],
        "dead_letters": sum(depth.visible + depth.in_flight + depth.delayed for depth in queues if depth.dead_letter),
        "call_budgets": _budgets(dynamodb, settings, now),
        "stock": _stock(SkuTable(dynamodb, settings.sku_table), settings),
        "last_audit": _audit(AuditResults(dynamodb, settings.control_table, catalog_id=settings.catalog_id)),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _poll(cursors: ControlTable, now: datetime) -> dict[str, Any]:
    cursor = cursors.load(POLLED_SOURCE)
    if cursor.disabled_reason:
        state = "disabled"
    elif cursor.completed_at is None and cursor.listing_started_at is None:
        state = "never polled"
    elif cursor.not_before is not None and now < cursor.not_before:
        state = "throttled"
    elif cursor.in_progress:
        state = "listing in progress"
    else:
        state = "polling"
    return {
        "source": POLLED_SOURCE,
        "state": state,
        "last_complete_listing": _iso(cursor.completed_at),
        "seconds_since_complete_listing": (
            round((now - cursor.completed_at).total_seconds(), 1) if cursor.completed_at else None
        ),
        "watermark": _iso(cursor.watermark),
        "not_before": _iso(cursor.not_before),
        "disabled_reason": cursor.disabled_reason,
    }


def _queue(depth: QueueDepth) -> dict[str, Any]:
    return {
        "name": depth.name,
        "messages": depth.visible,
        "in_flight": depth.in_flight,
        "delayed": depth.delayed,
        "oldest_message_age_seconds": depth.oldest_age_seconds,
    }


def _budgets(dynamodb: Any, settings: Settings, now: datetime) -> dict[str, Any]:
    kinds = {
        "items_batch": ("batch-call", settings.batch_calls_per_hour),
        "catalog_reads": ("catalog-read", settings.catalog_reads_per_hour),
        "status_checks": ("status-check", settings.status_checks_per_hour),
    }
    now_ms = epoch_ms(now)
    budgets = {}
    for name, (kind, per_hour) in kinds.items():
        state = DynamoCallBudget(
            dynamodb, settings.control_table, catalog_id=settings.catalog_id, calls_per_hour=per_hour, kind=kind
        ).state()
        window = state.window
        budgets[name] = {
            # Calls in the trailing hour up to now (a kept replay's clock: calls stamped later are not counted).
            "used_this_hour": sum(1 for moment in window.call_times_ms if now_ms - _HOUR_MS < moment <= now_ms),
            "per_hour": per_hour,
            "blocked_until": _iso(from_ms(window.blocked_until_ms)) if window.blocked_until_ms > now_ms else None,
        }
    return budgets


def _stock(skus: SkuTable, settings: Settings) -> dict[str, Any]:
    health = StockHealth()
    invalid: list[str] = []
    for bucket, bucket_settings in sorted(settings.buckets.items()):
        after = None
        while True:
            page = skus.bucket_page(bucket, after=after, page_size=_PAGE_SIZE)
            for state in page.states:
                health.add(state, bucket, bucket_settings, settings.deduction_mode)
            invalid.extend(page.invalid)
            after = page.last_retailer_id or after
            if not page.has_more:
                break
    return {
        "skus": health.skus,
        "over_sold": {
            "count": health.over_sold_count,
            "units_at_risk": health.units_at_risk,
            "skus": [{"retailer_id": rid, "shortfall": units} for rid, units in health.over_sold],
        },
        "at_zero": {"count": health.at_zero_count, "skus": health.at_zero},
        "without_warehouse_level": health.without_warehouse_level,
        "unreadable_records": sorted(invalid),
    }


def _audit(results: AuditResults) -> dict[str, Any] | None:
    result = results.load()
    if result is None:
        return None
    summary = result.summary
    return {
        "ran_at": result.ran_at.isoformat(),
        "pass_started_at": result.pass_started_at.isoformat(),
        "finished": summary.get("finished"),
        "stopped_by": summary.get("stopped_by"),
        "read": summary.get("read"),
        "matched": summary.get("matched"),
        "drifted": summary.get("drifted"),
        "differences": summary.get("differences", []),
    }


def describe(report: dict[str, Any]) -> str:
    lines = [f"stocksync status at {report['now']} (catalog {report['catalog_id']}, {report['deduction_mode']} mode)"]
    poll = report["order_poll"]
    if poll["state"] == "never polled":
        lines.append(
            f"order poll ({poll['source']}): never polled (a deployment with OrderSources=events has no poller)"
        )
    else:
        lines.append(_poll_line(poll))
    lines.append("queues (waiting / in flight / delayed, oldest message age):")
    lines += [f"  {_queue_line(queue)}" for queue in report["queues"]]
    lines.append(f"dead letters: {report['dead_letters']} in {len(report['dead_letter_queues'])} dead-letter queues")
    lines += [f"  {_queue_line(queue)}" for queue in report["dead_letter_queues"] if _total(queue)]
    lines.append("Graph call budgets this hour:")
    for name, budget in report["call_budgets"].items():
        blocked = f", blocked until {budget['blocked_until']}" if budget["blocked_until"] else ""
        lines.append(f"  {name}: {budget['used_this_hour']} of {budget['per_hour']}{blocked}")
    stock = report["stock"]
    over = stock["over_sold"]
    lines.append(
        f"SKUs: {stock['skus']}; over-sold now: {over['count']} ({over['units_at_risk']} units at risk); "
        f"at zero: {stock['at_zero']['count']}; without a warehouse level: {stock['without_warehouse_level']}"
    )
    if over["skus"]:
        lines.append("  over-sold: " + ", ".join(f"{s['retailer_id']} (short {s['shortfall']})" for s in over["skus"]))
    if stock["at_zero"]["skus"]:
        lines.append("  at zero: " + ", ".join(stock["at_zero"]["skus"]))
    if stock["unreadable_records"]:
        lines.append("  unreadable SKU records: " + ", ".join(stock["unreadable_records"]))
    audit = report["last_audit"]
    if audit is None:
        lines.append("catalog audit: no run recorded")
    else:
        extent = "the whole catalog" if audit["finished"] else f"part of the catalog (stopped: {audit['stopped_by']})"
        lines.append(
            f"catalog audit at {audit['ran_at']}: read {audit['read']} items of {extent}, {audit['drifted']} drifted"
        )
        for case in audit["differences"]:
            expected = "unknown" if case["expected"] is None else case["expected"]
            lines.append(f"  {case['retailer_id']}: catalog {case['catalog']}, expected {expected}")
    return "\n".join(lines)


def _poll_line(poll: dict[str, Any]) -> str:
    since = poll["seconds_since_complete_listing"]
    return (
        f"order poll ({poll['source']}): {poll['state']}; last complete listing "
        + (f"{poll['last_complete_listing']} ({since:.0f} s ago)" if since is not None else "never")
        + (f"; disabled: {poll['disabled_reason']}" if poll["disabled_reason"] else "")
        + (f"; no call before {poll['not_before']}" if poll["state"] == "throttled" else "")
    )


def _total(queue: dict[str, Any]) -> int:
    return int(queue["messages"] + queue["in_flight"] + queue["delayed"])


def _queue_line(queue: dict[str, Any]) -> str:
    age = queue["oldest_message_age_seconds"]
    shown = "unknown" if age is None else f"{age:.0f} s"
    return f"{queue['name']}: {queue['messages']} / {queue['in_flight']} / {queue['delayed']}, oldest {shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
