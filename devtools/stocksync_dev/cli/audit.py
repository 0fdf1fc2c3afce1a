"""``stocksync audit [--dry-run]``: page the catalog's stock and visibility and repair what differs from what the
product expects it to show.

The same run as the scheduled ``audit_catalog`` function (it resumes where the last run stopped and stores where it
stops), from a shell, against a deployed stack (``--stack-name``, with ``--profile``/``--region``: the audit
function's own settings) or the tables, queues and Graph API the environment names (the functions' variables:
SKU_TABLE, CONTROL_TABLE, RECOMPUTE_QUEUE_URL, STOCKSYNC_CATALOG_ID, STOCKSYNC_GRAPH_CREDENTIALS, ...;
AWS_ENDPOINT_URL for local AWS). With ``--dry-run`` it compares and reports, and changes nothing: no anchor, no
recompute, no stored position (the reads still spend the read budget).

Exit status: 0 when the run finished (in a dry run: and found no difference), 1 when a dry run found differences,
2 when the settings are incomplete (every missing one is named).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from stocksync.models.settings import Settings
from stocksync.observability import logger
from stocksync.wiring.audit_catalog import run_audit
from stocksync_dev.cli.stack_settings import add_stack_arguments, run_in_deployment

COMMAND = "audit"
FUNCTION = "AuditCatalogFunction"  # whose settings --stack-name reads
HELP = "compare the catalog's stock with what stocksync expects it to show, and repair the differences"
# A shell run has no Lambda deadline; it stops at the end of the catalog, the read budget or throttling.
_NO_DEADLINE_SECONDS = 10**9


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="report the differences; change nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``audit`` on the ``stocksync`` command's subparsers."""
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return run_in_deployment(args, COMMAND, FUNCTION, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    previous = logger.registered_handler.setStream(sys.stderr)  # each difference's log line on stderr
    try:
        # The run's metrics (CloudWatch EMF lines) go to stderr too: stdout holds the report alone.
        with contextlib.redirect_stdout(sys.stderr):
            summary = run_audit(settings, time_left=lambda: _NO_DEADLINE_SECONDS, dry_run=args.dry_run)
    finally:
        logger.registered_handler.setStream(previous)
    print(json.dumps(summary, indent=2) if args.json else describe(summary))
    return 1 if args.dry_run and summary.get("differences") else 0


def describe(summary: dict[str, Any]) -> str:
    if "skipped" in summary:
        return f"audit skipped: {summary['skipped']}"
    verb = "would repair" if summary["dry_run"] else "repaired"
    state = "the whole catalog" if summary["finished"] else f"part of the catalog (stopped: {summary['stopped_by']})"
    lines = [
        f"read {summary['read']} items of {state} in {summary['pages']} pages: {summary['matched']} as expected, "
        f"{summary['drifted']} differed, {summary['settled']} ambiguous or never anchored ({verb} "
        f"{len(summary['differences'])}), {summary['in_flight']} with a push in flight, {summary['unknown']} unknown, "
        f"{summary['unparsable']} unreadable"
    ]
    for case in summary["differences"]:
        expected = "unknown" if case["expected"] is None else case["expected"]
        note = " (ambiguous)" if case["ambiguous"] else ""
        lines.append(
            f"  {case['retailer_id']} [{case['bucket']}]: catalog {case['catalog']} {case['catalog_visibility']}, "
            f"expected {expected}{note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
