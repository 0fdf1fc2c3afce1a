"""``stocksync explain RETAILER_ID [--json]``: every term of one SKU's number, and where each comes from.

The terms are read from the SKU's state record, the order ledger's open rows and the batches table (the dal
modules), and put together by stocksync.logic.explanation with recompute's own functions, so the A shown is the A
recompute computes: I with its as_of, P, C and K with the open orders they come from (a sum that differs from the
counters is flagged: ``stocksync reconcile`` repairs it), the allocation and where it comes from, the bucket and
why (set by the merchant, or assigned from the SKU's sales velocity), its threshold, A, what the catalog is
believed to show (the anchor and the platform's moves since) and what it was last read to show, what recompute
would do now, and the SKU's last pushes with their versions, handles and how their batches ended.

Read-only. The pushes come from a scan of the batches table (records live 14 days), limited to ``--hours``. It runs
against a deployed stack (``--stack-name``, with ``--profile``/``--region``: recompute's settings, read from the
stack) or the stack the functions' environment variables name (stocksync_dev.cli.inspect_settings), a local one kept
by ``stocksync replay --keep`` included.

Exit status: 0; 1 when the SKU's record cannot be explained (unreadable, or in a bucket the settings do not
know) or an AWS call failed; 2 when the settings are incomplete (every missing one is named) or the SKU is unknown.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stocksync.dal import aws
from stocksync.dal.batches_table import BatchesTable, SkuPush
from stocksync.dal.ledger_table import DynamoLedger
from stocksync.dal.sku_table import SkuTable
from stocksync.errors import ConfigurationError
from stocksync.logic.explanation import SkuExplanation, explain_sku
from stocksync.models.settings import DeductionMode, Settings
from stocksync.models.sku import Visibility
from stocksync_dev.cli.inspect_settings import FUNCTION, describe_aws_error, reference_now
from stocksync_dev.cli.stack_settings import add_stack_arguments, run_in_deployment

COMMAND = "explain"
HELP = "show every term of one SKU's published number: I, P, C, K, the orders, allocation, threshold, bucket, pushes"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("retailer_id", help="the SKU's retailer_id")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument(
        "--pushes", type=_positive, default=5, metavar="N", help="show the last N pushes (default: %(default)s)"
    )
    parser.add_argument(
        "--hours",
        type=_positive,
        default=24,
        metavar="H",
        help="look for pushes in the last H hours (default: %(default)s)",
    )
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``explain`` on the ``stocksync`` command's subparsers."""
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
        return _explain(args, settings, now)
    except (ClientError, BotoCoreError) as error:
        print(f"stocksync {COMMAND}: {describe_aws_error(error)}", file=sys.stderr)
        return 1


def _explain(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    dynamodb = aws.client("dynamodb")
    skus = SkuTable(dynamodb, settings.sku_table)
    reads = skus.read_states([args.retailer_id])
    if args.retailer_id in reads.invalid:
        print(f"stocksync {COMMAND}: SKU {args.retailer_id}: {reads.invalid[args.retailer_id]}", file=sys.stderr)
        return 1
    state = reads.states.get(args.retailer_id)
    if state is None:
        print(
            f"stocksync {COMMAND}: unknown SKU {args.retailer_id!r}: no record in {settings.sku_table} (no warehouse "
            "level, order or setting has named it)",
            file=sys.stderr,
        )
        return 2
    bucket = state.bucket or settings.default_bucket
    if bucket not in settings.buckets:
        print(
            f"stocksync {COMMAND}: SKU {args.retailer_id} is in bucket {bucket!r}, which the settings do not know "
            f"(known: {sorted(settings.buckets)}); recompute dead-letters it until the bucket is set again",
            file=sys.stderr,
        )
        return 1
    window = timedelta(hours=settings.velocity_window_hours)
    explanation = explain_sku(
        state,
        buckets=settings.buckets,
        default_bucket=settings.default_bucket,
        mode=settings.deduction_mode,
        open_rows=DynamoLedger(
            dynamodb, orders_table=settings.orders_table, sku_table=settings.sku_table, now=now
        ).open_rows(),
        velocity=skus.velocity(args.retailer_id, now=now, window=window),
        velocity_window_hours=settings.velocity_window_hours,
        hysteresis=settings.bucket_hysteresis,
        now=now,
        confirmation_timeout=timedelta(seconds=settings.confirmation_timeout_seconds),
        reads_enabled=settings.catalog_reads_enabled,
    )
    since = now - timedelta(hours=args.hours)
    pushes = BatchesTable(dynamodb, settings.batches_table).pushes_of(args.retailer_id, since=since)[: args.pushes]
    report = as_dict(explanation, pushes, settings=settings, now=now, pushes_since=since)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else describe(report))
    return 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _value(value: int | None, visibility: Visibility | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"units": value, "visibility": (visibility or Visibility.PUBLISHED).value}


def _bucket_why(explanation: SkuExplanation) -> str:
    bucket = explanation.bucket
    if bucket.explicit:
        return "set by the merchant (SKU Settings Changed); assign_buckets never moves it"
    if not bucket.recorded:
        return "no bucket recorded: the default bucket applies"
    velocity = bucket.velocity_units_per_hour
    floor = explanation.bucket_settings.min_units_per_hour
    text = (
        f"assigned from sales velocity (the default bucket until assign_buckets moves it): "
        f"{velocity:.2f} units/h over {bucket.velocity_window_hours} h, this bucket's floor {floor:g}"
    )
    if bucket.velocity_would_assign and bucket.velocity_would_assign != bucket.name:
        text += f"; assign_buckets would move it to {bucket.velocity_would_assign}"
    return text


def _push_outcome(push: SkuPush, confirmed_version: int) -> str:
    if push.entry.version == confirmed_version:
        return "confirmed (the SKU's confirmed version)"
    if push.state.value == "pending":
        return "batch pending verification"
    if push.entry.version < confirmed_version:
        return f"batch {push.state.value}; superseded by version {confirmed_version}"
    return f"batch {push.state.value}; this version not confirmed"


def as_dict(
    explanation: SkuExplanation, pushes: list[SkuPush], *, settings: Settings, now: datetime, pushes_since: datetime
) -> dict[str, Any]:
    state = explanation.state
    figures = explanation.evaluation.figures
    target = explanation.evaluation.target
    belief = explanation.belief
    allocation = explanation.allocation
    return {
        "retailer_id": state.retailer_id,
        "now": now.isoformat(),
        "deduction_mode": explanation.mode.value,
        "formula": (
            "A = max(0, alloc(I) - K), 0 when A <= threshold"
            if explanation.mode is DeductionMode.PLATFORM
            else "A = max(0, alloc(I) - P - C), 0 when A <= threshold"
        ),
        "I": {"units": state.warehouse_level, "as_of": _iso(state.warehouse_as_of)},
        "P": state.pending_processing,
        "C": state.pending_created,
        "K": state.acknowledged_unsynced,
        "orders": [
            {
                "order_id": order.order_id,
                "part": order.part,
                "state": order.state,
                "source": order.source,
                "synced": order.synced,
                "placed_at": _iso(order.placed_at),
                "P": order.processing,
                "C": order.created,
                "K": order.acknowledged,
            }
            for order in explanation.orders
        ],
        "orders_sum": dict(zip(("P", "C", "K"), explanation.orders_sum, strict=True)),
        "counters_match_orders": explanation.counters_match_orders,
        "allocation": {
            "from": allocation.source,
            "percent": allocation.percent,
            "fixed": allocation.fixed,
            "units": figures.allocated if figures else None,
        },
        "bucket": {
            "name": explanation.bucket.name,
            "why": _bucket_why(explanation),
            "explicit": explanation.bucket.explicit,
            "velocity_units_per_hour": explanation.bucket.velocity_units_per_hour,
            "velocity_window_hours": explanation.bucket.velocity_window_hours,
            "assign_buckets_would_choose": explanation.bucket.velocity_would_assign,
        },
        "threshold": explanation.bucket_settings.threshold,
        "deducted": figures.deducted if figures else None,
        "available": figures.available if figures else None,
        "A": target.value if target else None,
        "visibility": target.visibility.value if target else None,
        "discontinued": state.discontinued,
        "over_sold": bool(figures and figures.over_sold),
        "shortfall": figures.shortfall if figures else None,
        "catalog": {
            "believed": None
            if belief is None
            else {
                **(_value(belief.shows.value, belief.shows.visibility) or {}),
                "ambiguous": belief.ambiguous,
                "ambiguous_units": belief.ambiguous_units,
            },
            "anchor": None
            if state.catalog_value is None
            else {
                **(_value(state.catalog_value, state.catalog_visibility) or {}),
                "shown_from": _iso(state.catalog_from),
                "shown_to": _iso(state.catalog_to),
                "basis": state.catalog_basis.value if state.catalog_basis else None,
            },
            "platform_moves_since_anchor": len(state.platform_moves),
            "last_read": None
            if state.read_value is None
            else {**(_value(state.read_value, state.read_visibility) or {}), "at": _iso(state.read_at)},
            "pending_push": None
            if explanation.pending is None
            else _value(explanation.pending.value, explanation.pending.visibility),
        },
        "published": {
            "version": state.published_version,
            **({"value": _value(state.published_value, state.published_visibility)}),
            "at": _iso(state.published_at),
        },
        "confirmed": {
            "version": state.confirmed_version,
            **({"value": _value(state.confirmed_value, state.confirmed_visibility)}),
            "at": _iso(state.confirmed_at),
        },
        "next_decision": explanation.decision,
        "pushes_since": pushes_since.isoformat(),
        "pushes": [
            {
                "handle": push.handle,
                "version": push.entry.version,
                "units": push.entry.value,
                "visibility": push.entry.visibility.value,
                "urgent": push.entry.urgent,
                "retries": push.entry.retries,
                "computed_at": _iso(push.entry.computed_at),
                "accepted_at": _iso(push.accepted_at),
                "batch_state": push.state.value,
                "batch_finished_at": _iso(push.finished_at),
                "status": _push_outcome(push, state.confirmed_version),
            }
            for push in pushes
        ],
        "catalog_reads_enabled": settings.catalog_reads_enabled,
    }


def _shown(value: dict[str, Any] | None) -> str:
    if value is None:
        return "unknown"
    return f"{value['units']} ({value['visibility']})"


def describe(report: dict[str, Any]) -> str:
    rid = report["retailer_id"]
    warehouse = report["I"]
    alloc = report["allocation"]
    bucket = report["bucket"]
    lines = [f"{rid} at {report['now']} ({report['deduction_mode']} mode: {report['formula']})"]
    if warehouse["units"] is None:
        lines.append("I: unknown (the warehouse has not reported this SKU): nothing is published until it does")
    else:
        lines.append(f"I = {warehouse['units']} (as of {warehouse['as_of']})")
    lines.append(f"P = {report['P']}, C = {report['C']}, K = {report['K']}  (counters on the SKU record)")
    for order in report["orders"]:
        terms = ", ".join(f"{term} {order[term]}" for term in ("P", "C", "K") if order[term])
        part = f" part {order['part']}" if order["part"] else ""
        lines.append(
            f"  order {order['order_id']}{part}: {order['state']} ({order['source']}, placed {order['placed_at']}) "
            f"-> {terms}"
        )
    if not report["orders"]:
        lines.append("  no open order counts units of this SKU")
    if not report["counters_match_orders"]:
        total = report["orders_sum"]
        lines.append(
            f"  the open orders add up to P={total['P']} C={total['C']} K={total['K']}, not the counters: "
            "`stocksync reconcile` recounts them"
        )
    source = {"sku": "the SKU's own", "bucket": f"bucket {bucket['name']}'s", "none": "none set:"}[alloc["from"]]
    share = (
        f"{alloc['percent']}% of I"
        if alloc["percent"] is not None
        else (f"at most {alloc['fixed']}" if alloc["fixed"] is not None else "all of I")
    )
    lines.append(f"allocation: {source} {share} -> alloc(I) = {alloc['units']}")
    lines.append(f"bucket {bucket['name']}: {bucket['why']}; threshold {report['threshold']}")
    if report["A"] is not None:
        if report["discontinued"]:
            lines.append(f"A = 0, staging: the SKU is discontinued (the formula gives {report['available']})")
        else:
            cut = (
                f"{report['available']} <= threshold {report['threshold']}: A = 0"
                if report["available"] <= report["threshold"]
                else f"A = {report['A']}"
            )
            lines.append(
                f"A = max(0, {alloc['units']} - {report['deducted']}) = {report['available']}; {cut} "
                f"({report['visibility']})"
            )
    if report["over_sold"]:
        lines.append(f"OVER-SOLD: {report['shortfall']} units owed beyond I (the warehouse level)")
    return "\n".join(lines + _describe_catalog(report))


def _describe_catalog(report: dict[str, Any]) -> list[str]:
    lines = []
    catalog = report["catalog"]
    believed = catalog["believed"]
    note = f" (ambiguous by {believed['ambiguous_units']} units)" if believed and believed["ambiguous"] else ""
    lines.append(f"catalog believed to show: {_shown(believed)}{note}")
    anchor = catalog["anchor"]
    if anchor:
        lines.append(
            f"  anchor: {_shown(anchor)} by {anchor['basis']}, shown between {anchor['shown_from']} and "
            f"{anchor['shown_to']}; {catalog['platform_moves_since_anchor']} platform moves kept"
        )
    last_read = catalog["last_read"]
    lines.append(
        f"  last read to show: {_shown(last_read)} at {last_read['at']}"
        if last_read
        else "  last read to show: never read (or no read anchored it)"
    )
    if catalog["pending_push"]:
        lines.append(f"  once the pending push lands: {_shown(catalog['pending_push'])}")
    published, confirmed = report["published"], report["confirmed"]
    lines.append(
        f"published version {published['version']} = {_shown(published['value'])} at {published['at']}; "
        f"confirmed version {confirmed['version']} = {_shown(confirmed['value'])} at {confirmed['at']}"
    )
    lines.append(f"recompute would now: {report['next_decision']}")
    lines.append(f"last pushes (since {report['pushes_since']}):")
    for push in report["pushes"]:
        lines.append(
            f"  v{push['version']} {push['units']} {push['visibility']} handle {push['handle']} accepted "
            f"{push['accepted_at']}: {push['status']}"
        )
    if not report["pushes"]:
        lines.append("  none")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
