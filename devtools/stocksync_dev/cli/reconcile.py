"""``stocksync reconcile [--dry-run]``: recount P, C and K from the ledger and repair counters that disagree.

The same run as the daily ``reconcile`` function, from a shell, against the tables of a deployed stack
(``--stack-name``, with ``--profile``/``--region``: the reconcile function's own settings) or those the environment
names (the functions' variables: SKU_TABLE, ORDERS_TABLE, RECOMPUTE_QUEUE_URL, ...; AWS_ENDPOINT_URL for local AWS).
Also runs on its own as ``python -m stocksync_dev.cli.reconcile``.

Exit status: 0 when the run finished (in a dry run: and found nothing to repair), 1 when a dry run found counters
to repair, 2 when the settings are incomplete (every missing one is named).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.counter_audit import SkuCounterAudit
from stocksync.logic.reconciliation import DEFAULT_SETTLE, ReconcileReport, reconcile
from stocksync.models.settings import Settings
from stocksync.observability import logger
from stocksync.wiring import parts
from stocksync_dev.cli.stack_settings import add_stack_arguments, run_in_deployment

COMMAND = "reconcile"
FUNCTION = "ReconcileFunction"  # whose settings --stack-name reads
HELP = "recount pending counters from the order ledger and repair those that disagree"


def _minutes(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="report what would be repaired; change nothing")
    parser.add_argument(
        "--settle-minutes",
        type=_minutes,
        default=int(DEFAULT_SETTLE / timedelta(minutes=1)),
        metavar="N",
        help="leave SKUs whose counters changed in the last N minutes for a later run (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``reconcile`` on the ``stocksync`` command's subparsers."""
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return run_in_deployment(args, COMMAND, FUNCTION, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    now = clock.now()
    previous = logger.registered_handler.setStream(sys.stderr)  # each repair's log line on stderr, the report on stdout
    try:
        report = reconcile(
            SkuCounterAudit(aws.client("dynamodb"), settings.sku_table),
            parts.ledger(settings, now=now),
            parts.recompute_queue(settings),
            now=now,
            dry_run=args.dry_run,
            settle=timedelta(minutes=args.settle_minutes),
        )
    finally:
        logger.registered_handler.setStream(previous)
    print(json.dumps(report.summary(), indent=2) if args.json else _describe(report))
    return 1 if args.dry_run and report.repairs else 0


def _describe(report: ReconcileReport) -> str:
    verb = "would repair" if report.dry_run else "repaired"
    lines = [
        f"checked {report.skus_checked} SKUs against {report.open_rows} open ledger rows: "
        f"{verb} {len(report.repairs)} counters"
    ]
    lines += [f"  {r.retailer_id} {r.counter}: {r.was} -> {r.now}" for r in report.repairs]
    if report.skipped_moved:
        lines.append(f"changed during the run, left for the next one: {', '.join(report.skipped_moved)}")
    if report.skipped_recent:
        lines.append(f"changed too recently to judge, left for the next run: {', '.join(report.skipped_recent)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
