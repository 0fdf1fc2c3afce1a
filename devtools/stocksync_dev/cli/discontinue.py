"""``stocksync discontinue RETAILER_ID... [--undo]``: stage discontinued products at 0 units, or bring them back.

The same change as a "SKU Settings Changed" event with ``discontinued``, applied directly to the SKU records (newest
change wins), then each SKU queued for a recompute, which pushes ``visibility = staging`` with 0 units (``--undo``:
``published`` with its stock). Nothing is ever deleted from the catalog. Works against a deployed stack
(``--stack-name``, with ``--profile``/``--region``: the recompute function's settings) or the tables the environment
names (the functions' variables; AWS_ENDPOINT_URL for local AWS). Also runs as
``python -m stocksync_dev.cli.discontinue``.

Exit status: 0 when every SKU was changed (or already was), 2 when the settings are incomplete (every missing one
is named) or a retailer id is invalid.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stocksync import clock
from stocksync.models.settings import Settings
from stocksync.models.sku import SkuSettingsChange
from stocksync.wiring import parts
from stocksync_dev.cli.stack_settings import add_stack_arguments, run_in_deployment

COMMAND = "discontinue"
FUNCTION = "RecomputeStockFunction"  # whose settings --stack-name reads: it applies settings changes too
HELP = "stage discontinued products at 0 units (never deleted), or --undo to publish them again"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("retailer_ids", nargs="+", metavar="RETAILER_ID", help="the SKUs (catalog retailer ids)")
    parser.add_argument("--undo", action="store_true", help="the products are sold again: publish them")
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``discontinue`` on the ``stocksync`` command's subparsers."""
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return run_in_deployment(args, COMMAND, FUNCTION, _run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        changes = [
            SkuSettingsChange(retailer_id=retailer_id, as_of=clock.now(), discontinued=not args.undo)
            for retailer_id in args.retailer_ids
        ]
    except ValueError as error:
        print(f"stocksync {COMMAND}: {error}", file=sys.stderr)
        return 2
    skus = parts.sku_table(settings)
    verb = "published again" if args.undo else "discontinued (staging, 0 units)"
    for change in changes:
        applied = skus.apply_settings(change) is not None
        print(f"{change.retailer_id}: {verb}" if applied else f"{change.retailer_id}: a newer change is in place")
    parts.recompute_queue(settings).enqueue(
        [change.retailer_id for change in changes], reason="discontinue --undo" if args.undo else "discontinue"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
