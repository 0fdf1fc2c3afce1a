"""The replay's report: what the simulator's catalog shows (read from it, not from our records), the product's
view of every SKU (I, P, C, A), refused orders, Graph API calls by endpoint, every dead letter left, and what
closing the loop with the catalog cost: pushes by reason, catalog reads asked for and made.

The cost figures come from the handlers' own summary log lines ("recompute batch finished" and the sweep's with
``push_reasons`` and ``reads_requested``, "catalog read-back finished", "catalog audit finished"), collected by a
logging handler on the service's logger while the replay runs: the numbers a deployment's logs would show, taken
without reaching into the classes that produce them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from stocksync.dal.batches_table import BatchesTable, decompress_floats
from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import SKU_STATE_RECORD
from stocksync.dal.sku_table import state_from_item
from stocksync.logic.latency import summarize
from stocksync.logic.recompute import evaluate
from stocksync.models.settings import get_settings
from stocksync.observability import logger
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.simulator import CommercePlatformSimulator

# The summary lines whose fields the report adds up (their messages, as the handlers log them).
_PUSH_SUMMARIES = ("recompute batch finished", "sweep finished", "sweep handed over")
_READ_BACK_SUMMARY = "catalog read-back finished"
_AUDIT_SUMMARIES = ("catalog audit finished", "catalog audit paused")
# Graph endpoints (last path segment, GET) that read the catalog: the filtered listing and one product by id.
READ_ENDPOINTS = ("products", "product_item")
AMBIGUOUS = "catalog ambiguous"  # recompute's PushReason.AMBIGUOUS: reads are off, the absolute value is pushed


class LoopFigures(logging.Handler):
    """Adds up the cost of closing the loop from the handlers' summary lines: pushes by reason, reads asked for,
    SKUs read back and the calls that took, audit runs. ``start`` marks where the counted part of a replay begins
    (after the initial publish, whose pushes say nothing about the scenario), with the simulator's call counts."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.pushes_by_reason: Counter[str] = Counter()
        self.reads_requested = 0
        self.read_back: Counter[str] = Counter()
        self.audit: Counter[str] = Counter()
        self._calls_at_start: Counter[tuple[str, str]] = Counter()

    def start(self, sim: CommercePlatformSimulator) -> None:
        self.pushes_by_reason.clear()
        self.read_back.clear()
        self.audit.clear()
        self.reads_requested = 0
        self._calls_at_start = sim.calls

    def emit(self, record: logging.LogRecord) -> None:
        message = record.msg if isinstance(record.msg, str) else None
        fields = record.__dict__
        if message in _PUSH_SUMMARIES:
            reasons = fields.get("push_reasons")
            if isinstance(reasons, dict):
                self.pushes_by_reason.update({str(reason): int(count) for reason, count in reasons.items()})
            self.reads_requested += int(fields.get("reads_requested") or 0)
        elif message == _READ_BACK_SUMMARY:
            self.read_back["runs"] += 1
            for name in ("read", "calls", "settled", "drifted", "deferred"):
                self.read_back[name] += int(fields.get(name) or 0)
        elif message in _AUDIT_SUMMARIES:
            self.audit["runs"] += 1
            self.audit["finished"] += bool(fields.get("finished"))
            for name in ("read", "pages", "drifted"):
                self.audit[name] += int(fields.get(name) or 0)

    def as_dict(self, sim: CommercePlatformSimulator) -> dict[str, Any]:
        calls = sim.calls - self._calls_at_start
        pushes = sum(self.pushes_by_reason.values())
        ambiguous = self.pushes_by_reason.get(AMBIGUOUS, 0)
        return {
            "pushes_by_reason": dict(sorted(self.pushes_by_reason.items())),
            "pushes": pushes,
            "ambiguity_pushes": ambiguous,
            "ambiguity_share_of_pushes": round(ambiguous / pushes, 4) if pushes else 0.0,
            "items_batch_calls": calls[("POST", "items_batch")],
            "reads_requested": self.reads_requested,
            "read_back": {name: self.read_back[name] for name in ("runs", "read", "calls", "settled", "drifted")},
            "audits": {name: self.audit[name] for name in ("runs", "finished", "read", "pages", "drifted")},
            "read_calls": sum(calls[("GET", endpoint)] for endpoint in READ_ENDPOINTS),
        }


@contextmanager
def loop_figures() -> Iterator[LoopFigures]:
    """A LoopFigures handler on the service's logger for the duration. The summary lines are INFO; when the logger
    is quieter (a replay without --verbose), it is opened to INFO for this handler alone: its other handlers get
    the threshold the logger had, so what reaches stderr does not change."""
    target = logging.getLogger(logger.name)
    figures = LoopFigures()
    level = target.level
    others = [(handler, handler.level) for handler in target.handlers]
    if not target.isEnabledFor(logging.INFO):
        for handler, handler_level in others:
            handler.setLevel(max(handler_level, target.getEffectiveLevel()))
        target.setLevel(logging.INFO)
    target.addHandler(figures)
    try:
        yield figures
    finally:
        target.removeHandler(figures)
        target.setLevel(level)
        for handler, handler_level in others:
            handler.setLevel(handler_level)


def _sku_states(local: LocalAws) -> list[Any]:
    table = local.function_environment()["SKU_TABLE"]
    paginator = local.client("dynamodb").get_paginator("scan")
    states = []
    for page in paginator.paginate(TableName=table):
        for raw in page["Items"]:
            item = decode(raw)
            if item["record"] == SKU_STATE_RECORD:
                states.append(state_from_item(item))
    return sorted(states, key=lambda state: state.retailer_id)


def _targets(local: LocalAws) -> dict[str, tuple[Any, Any]]:
    """Every SKU's record and evaluation (the target A and its visibility), under the settings in force."""
    settings = get_settings()
    targets = {}
    for state in _sku_states(local):
        bucket = state.bucket or settings.default_bucket
        targets[state.retailer_id] = (state, evaluate(state, bucket, settings.bucket(bucket), settings.deduction_mode))
    return targets


def latencies_since(local: LocalAws, since: datetime) -> list[float]:
    """Each confirmed row's change -> confirmed seconds, of the batches accepted at ``since`` or later: the part of a
    replay that follows its initial publish, whose one large batch would otherwise weigh on every percentile of a
    small scenario (BatchesTable.latency_samples reads them all)."""
    table = local.function_environment()["BATCHES_TABLE"]
    paginator = local.client("dynamodb").get_paginator("scan")
    found: list[float] = []
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="attribute_exists(latencies) AND accepted_at_ms >= :since",
        ExpressionAttributeValues=encode({":since": int(since.timestamp() * 1000)}),
        ProjectionExpression="latencies",
    ):
        for raw in page.get("Items", []):
            found.extend(decompress_floats(bytes(decode(raw)["latencies"])))
    return found


def differences_from_a(local: LocalAws, sim: CommercePlatformSimulator) -> list[dict[str, Any]]:
    """SKUs whose catalog (read from the simulator) does not show their A, with both values and visibilities."""
    field = get_settings().catalog_field.value
    catalog = sim.catalog()
    differences = []
    for retailer_id, (_state, evaluation) in _targets(local).items():
        target, product = evaluation.target, catalog.get(retailer_id, {})
        if target is None:
            continue
        shown = (product.get(field), product.get("visibility"))
        if shown != (target.value, target.visibility.value):
            differences.append(
                {
                    "retailer_id": retailer_id,
                    "catalog": shown[0],
                    "catalog_visibility": shown[1],
                    "A": target.value,
                    "A_visibility": target.visibility.value,
                }
            )
    return differences


def build_report(
    local: LocalAws,
    sim: CommercePlatformSimulator,
    refused_orders: list[str],
    dead_letters: list[dict[str, Any]],
    *,
    loop: dict[str, Any] | None = None,
    catalog_differs_from_a: list[dict[str, Any]] | None = None,
    races: list[dict[str, Any]] | None = None,
    scheduled_sweeps: dict[str, list[datetime]] | None = None,
    demand: dict[str, Any] | None = None,
    counted_since: datetime | None = None,
) -> dict[str, Any]:
    """``loop``: LoopFigures.as_dict; ``catalog_differs_from_a``: what the checks after each ``run: pipeline``
    found; ``races``: what each ``while_pushing`` step did, in seconds after its items_batch call;
    ``scheduled_sweeps``: per bucket with a scenario ``sweep_rate``, the scheduled time of each sweep it fired, so a
    reader can see the rate took effect (and how often a bucket was swept at it); ``demand``: DemandTally.as_dict,
    what the buyers of the demand steps wanted and got (None without one); ``counted_since``: where the counted part
    of the replay began (after the initial publish), for the latencies of the pushes the steps caused."""
    settings = get_settings()
    field = settings.catalog_field.value
    catalog = {
        retailer_id: {"units": product.get(field), "visibility": product.get("visibility")}
        for retailer_id, product in sorted(sim.catalog().items())
    }
    skus: dict[str, dict[str, Any]] = {}
    for retailer_id, (state, evaluation) in _targets(local).items():
        figures = evaluation.figures
        skus[retailer_id] = {
            "I": state.warehouse_level,
            "P": state.pending_processing,
            "C": state.pending_created,
            "K": state.acknowledged_unsynced,
            # alloc(I) and the bucket's threshold: what turns I, P and C into A (README, "What it does").
            "allocated": figures.allocated if figures else None,
            "threshold": settings.bucket(evaluation.bucket).threshold,
            "A": evaluation.target.value if evaluation.target else None,
            "bucket": evaluation.bucket,
            "confirmed": state.confirmed_version >= state.published_version > 0,
            # Units owed to open orders beyond I: more sold than the warehouse holds (0 unless over-sold).
            "over_sold_by": figures.shortfall if figures else 0,
        }
    over_sold = {retailer_id: sku["over_sold_by"] for retailer_id, sku in skus.items() if sku["over_sold_by"]}
    batches = BatchesTable(local.client("dynamodb"), local.function_environment()["BATCHES_TABLE"])
    latency = summarize([seconds for _batch, rows in batches.latency_samples() for seconds in rows])
    from_first_step = summarize(latencies_since(local, counted_since)) if counted_since is not None else None
    calls: Counter[str] = Counter()
    for (_method, endpoint), count in sim.calls.items():
        calls[endpoint] += count
    return {
        "catalog": catalog,
        "skus": skus,
        # SKUs over-sold at the end, with the units owed beyond the warehouse level (the units at risk).
        "over_sold": over_sold,
        "units_at_risk": sum(over_sold.values()),
        "refused_orders": refused_orders,
        "graph_calls": dict(sorted(calls.items())),
        "dead_letters": dead_letters,
        # Value changed (recompute) -> value confirmed (verify), in simulated seconds, over the whole replay.
        "change_to_confirm_seconds": latency.as_dict() if latency else None,
        # The same for the batches accepted from the first step on (the initial publish left out).
        "change_to_confirm_seconds_from_first_step": from_first_step.as_dict() if from_first_step else None,
        # From the first step on (the initial publish is not counted): what keeping the catalog right cost.
        "catalog_loop": loop,
        "catalog_differs_from_a": catalog_differs_from_a or [],
        "races": races or [],
        "scheduled_sweeps": {
            bucket: [moment.isoformat() for moment in moments] for bucket, moments in (scheduled_sweeps or {}).items()
        },
        "demand": demand,
    }


def failed_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The differences that break the promise (not explained by an edit outside stocksync or an unread order)."""
    return [difference for difference in report.get("catalog_differs_from_a", []) if not difference.get("why")]


EXPECTATIONS = ("catalog", "refused_orders", "demand", "over_sold")


def unmet_expectations(report: dict[str, Any], expect: dict[str, Any] | None) -> list[str]:
    """One line per way the report misses the scenario's ``expect`` block (empty when it is met or absent): the
    catalog's units and visibility per SKU, the refused orders, the demand figures, the over-sold SKUs."""
    unmet: list[str] = []
    for key, wanted in (expect or {}).items():
        if key == "catalog":
            unmet += _unmet_catalog(report, wanted)
        elif key == "refused_orders" and sorted(wanted) != sorted(report["refused_orders"]):
            unmet.append(f"expect.refused_orders: wanted {sorted(wanted)}, got {sorted(report['refused_orders'])}")
        elif key == "demand":
            demand = report.get("demand") or {}
            unmet += [
                f"expect.demand.{name}: wanted {value}, got {demand.get(name)}"
                for name, value in wanted.items()
                if demand.get(name) != value
            ]
        elif key == "over_sold" and wanted != report["over_sold"]:
            unmet.append(f"expect.over_sold: wanted {wanted}, got {report['over_sold']}")
        elif key not in EXPECTATIONS:
            unmet.append(f"expect.{key}: not something replay checks ({', '.join(EXPECTATIONS)})")
    return unmet


def _unmet_catalog(report: dict[str, Any], wanted: dict[str, dict[str, Any]]) -> list[str]:
    unmet = []
    for retailer_id, shown in wanted.items():
        got = report["catalog"].get(retailer_id)
        if got is None:
            unmet.append(f"expect.catalog.{retailer_id}: wanted {_shown(shown)}, not in the catalog")
        elif any(got.get(name) != value for name, value in shown.items()):
            unmet.append(f"expect.catalog.{retailer_id}: wanted {_shown(shown)}, got {_shown(got)}")
    return unmet


def _shown(shown: dict[str, Any]) -> str:
    return " ".join(str(shown[name]) for name in ("units", "visibility") if name in shown)


def render_report(report: dict[str, Any]) -> str:
    lines = [
        f"{'SKU':<16} {'bucket':<8} {'I':>6} {'P':>5} {'C':>5} {'alloc':>6} {'thr':>4} {'A':>6} {'catalog':>8}  "
        f"{'visibility':<10} confirmed"
    ]

    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    for retailer_id, sku in report["skus"].items():
        shown = report["catalog"].get(retailer_id, {})
        over = sku.get("over_sold_by", 0)
        lines.append(
            f"{retailer_id:<16} {sku['bucket']:<8} {cell(sku['I']):>6} {sku['P']:>5} {sku['C']:>5} "
            f"{cell(sku.get('allocated')):>6} {cell(sku.get('threshold')):>4} {cell(sku['A']):>6} "
            f"{cell(shown.get('units')):>8}  {cell(shown.get('visibility')):<10} {'yes' if sku['confirmed'] else 'no'}"
            + (f"  OVER-SOLD by {over}" if over else "")
        )
    mismatched = [
        rid
        for rid, sku in report["skus"].items()
        if sku["A"] is not None and report["catalog"].get(rid, {}).get("units") != sku["A"]
    ]
    lines += [
        "",
        f"SKUs: {len(report['skus'])}; catalog differs from A for: {', '.join(mismatched) if mismatched else 'none'}",
        _over_sold(report),
        "after each run: pipeline, the catalog differed from A: " + _checks(report.get("catalog_differs_from_a", [])),
        f"refused orders (too few units on the platform): {', '.join(report['refused_orders']) or 'none'}",
        "Graph API calls: " + (", ".join(f"{name} {count}" for name, count in report["graph_calls"].items()) or "none"),
        "value changed -> confirmed (simulated s): " + _latency(report.get("change_to_confirm_seconds")),
    ]
    lines += _loop(report.get("catalog_loop"))
    lines += [_race(race) for race in report.get("races", [])]
    lines += [
        f"sweeps of {bucket} on its scenario sweep_rate: {len(moments)}"
        + (f", {moments[0]} to {moments[-1]}" if moments else "")
        for bucket, moments in report.get("scheduled_sweeps", {}).items()
    ]
    lines += _demand(report.get("demand"))
    lines.append(f"dead letters: {len(report['dead_letters'])}")
    lines += [f"  {letter['queue']}: {letter['reason']}" for letter in report["dead_letters"]]
    if "expect_unmet" in report:
        unmet = report["expect_unmet"]
        lines.append("expect: " + ("met" if not unmet else f"NOT met ({len(unmet)})"))
        lines += [f"  {line}" for line in unmet]
    return "\n".join(lines)


def _over_sold(report: dict[str, Any]) -> str:
    """Over-sold SKUs at the end: more units owed to open orders than the warehouse level holds, so some buyer's order
    cannot be filled (the OverSellingAlarm and an "Over-Selling Detected" event in a deployment)."""
    over_sold = report.get("over_sold") or {}
    if not over_sold:
        return "over-sold now: none"
    named = ", ".join(f"{retailer_id} by {units}" for retailer_id, units in over_sold.items())
    return (
        f"over-sold now: {len(over_sold)} SKUs, {report['units_at_risk']} units owed beyond the warehouse level "
        f"(units at risk): {named}"
    )


def _checks(differences: list[dict[str, Any]]) -> str:
    if not differences:
        return "never"
    return "; ".join(
        f"{difference['step']} {difference['retailer_id']} shows {difference['catalog']} "
        f"({difference['catalog_visibility']}), A {difference['A']} ({difference['A_visibility']})"
        + (f": {difference['why']}" if difference.get("why") else "")
        for difference in differences
    )


def _loop(loop: dict[str, Any] | None) -> list[str]:
    if loop is None:
        return []
    reasons = ", ".join(f"{reason} {count}" for reason, count in loop["pushes_by_reason"].items()) or "none"
    read_back, audits = loop["read_back"], loop["audits"]
    return [
        f"pushes from the first step on: {loop['pushes']} ({reasons}) in {loop['items_batch_calls']} items_batch "
        f"calls; for ambiguity: {loop['ambiguity_pushes']} ({loop['ambiguity_share_of_pushes']:.1%})",
        f"catalog reads: {loop['reads_requested']} SKUs asked for, {read_back['read']} read back "
        f"({read_back['settled']} settled, {read_back['drifted']} drifted); audits: {audits['runs']} "
        f"({audits['read']} SKUs read, {audits['drifted']} drifted); read calls made: {loop['read_calls']}",
    ]


def _demand(demand: dict[str, Any] | None) -> list[str]:
    if demand is None:
        return []
    lines = [
        f"demand: {demand['demand']} units wanted; sold {demand['sold']} (Facebook/Instagram "
        f"{demand['sold_platform']}, web shop {demand['sold_web']}), over-sold {demand['over_sold']}; turned away "
        f"{demand['turned_away']}: under-sold {demand['under_sold']} (the warehouse had units), correctly "
        f"{demand['turned_away_correctly']}; shipped {demand['shipped']}, unfilled {demand['unfilled']}"
    ]
    lines += [
        f"  {retailer_id}: wanted {sku['demand']}, sold {sku['sold_platform']}+{sku['sold_web']}, over-sold "
        f"{sku['over_sold']}, under-sold {sku['under_sold']}, turned away correctly {sku['turned_away_correctly']}"
        for retailer_id, sku in demand["by_sku"].items()
        if sku["over_sold"] or sku["under_sold"]
    ]
    return lines


def _race(race: dict[str, Any]) -> str:
    where = f"{race['step']} while_pushing: "
    if race.get("batch") is None:
        return where + "no items_batch call came before the pipeline settled; its steps ran after that"
    moments = ", ".join(
        f"{moment['at']} at {moment['seconds_after_call']:g} s ({moment['relative']})" for moment in race["moments"]
    )
    return (
        where + f"batch applied {race['applied_seconds_after_call']:g} s after the call, finished at "
        f"{race['finished_seconds_after_call']:g} s; steps ran {moments}"
    )


def _latency(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "no confirmed pushes"
    return (
        f"p50 {summary['p50']:.0f}, p95 {summary['p95']:.0f}, p99 {summary['p99']:.0f} over {summary['count']} values"
    )
