"""The replay's report: what the simulator's catalog shows (read from it, not from our records), the product's
view of every SKU (I, P, C, A), refused orders, Graph API calls by endpoint, and every dead letter left."""

from __future__ import annotations

from collections import Counter
from typing import Any

from stocksync.dal.batches_table import BatchesTable
from stocksync.dal.codec import decode
from stocksync.dal.keys import SKU_STATE_RECORD
from stocksync.dal.sku_table import state_from_item
from stocksync.local.aws import LocalAws
from stocksync.logic.latency import summarize
from stocksync.logic.recompute import evaluate
from stocksync.models.settings import get_settings
from stocksync.simulator import CommercePlatformSimulator


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


def build_report(
    local: LocalAws, sim: CommercePlatformSimulator, refused_orders: list[str], dead_letters: list[dict[str, Any]]
) -> dict[str, Any]:
    settings = get_settings()
    field = settings.catalog_field.value
    catalog = {
        retailer_id: {"units": product.get(field), "visibility": product.get("visibility")}
        for retailer_id, product in sorted(sim.catalog().items())
    }
    skus: dict[str, dict[str, Any]] = {}
    for state in _sku_states(local):
        bucket = state.bucket or settings.default_bucket
        evaluation = evaluate(state, bucket, settings.bucket(bucket), settings.deduction_mode)
        skus[state.retailer_id] = {
            "I": state.warehouse_level,
            "P": state.pending_processing,
            "C": state.pending_created,
            "K": state.acknowledged_unsynced,
            "A": evaluation.target.value if evaluation.target else None,
            "bucket": bucket,
            "confirmed": state.confirmed_version >= state.published_version > 0,
        }
    batches = BatchesTable(local.client("dynamodb"), local.function_environment()["BATCHES_TABLE"])
    latency = summarize([seconds for _batch, rows in batches.latency_samples() for seconds in rows])
    calls: Counter[str] = Counter()
    for (_method, endpoint), count in sim.calls.items():
        calls[endpoint] += count
    return {
        "catalog": catalog,
        "skus": skus,
        "refused_orders": refused_orders,
        "graph_calls": dict(sorted(calls.items())),
        "dead_letters": dead_letters,
        # Value changed (recompute) -> value confirmed (verify), in simulated seconds, over the whole replay.
        "change_to_confirm_seconds": latency.as_dict() if latency else None,
    }


def render_report(report: dict[str, Any]) -> str:
    lines = [
        f"{'SKU':<16} {'bucket':<8} {'I':>6} {'P':>5} {'C':>5} {'A':>6} {'catalog':>8}  {'visibility':<10} confirmed"
    ]
    for retailer_id, sku in report["skus"].items():
        shown = report["catalog"].get(retailer_id, {})

        def cell(value: Any) -> str:
            return "-" if value is None else str(value)

        lines.append(
            f"{retailer_id:<16} {sku['bucket']:<8} {cell(sku['I']):>6} {sku['P']:>5} {sku['C']:>5} {cell(sku['A']):>6} "
            f"{cell(shown.get('units')):>8}  {cell(shown.get('visibility')):<10} {'yes' if sku['confirmed'] else 'no'}"
        )
    mismatched = [
        rid
        for rid, sku in report["skus"].items()
        if sku["A"] is not None and report["catalog"].get(rid, {}).get("units") != sku["A"]
    ]
    lines += [
        "",
        f"SKUs: {len(report['skus'])}; catalog differs from A for: {', '.join(mismatched) if mismatched else 'none'}",
        f"refused orders (too few units on the platform): {', '.join(report['refused_orders']) or 'none'}",
        "Graph API calls: " + (", ".join(f"{name} {count}" for name, count in report["graph_calls"].items()) or "none"),
        "value changed -> confirmed (simulated s): " + _latency(report.get("change_to_confirm_seconds")),
        f"dead letters: {len(report['dead_letters'])}",
    ]
    lines += [f"  {letter['queue']}: {letter['reason']}" for letter in report["dead_letters"]]
    return "\n".join(lines)


def _latency(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "no confirmed pushes"
    return (
        f"p50 {summary['p50']:.0f}, p95 {summary['p95']:.0f}, p99 {summary['p99']:.0f} over {summary['count']} values"
    )
