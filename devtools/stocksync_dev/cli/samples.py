"""Which function each sample event under ``events/`` is for, and the check ``stocksync replay --function`` makes
before it invokes anything: an unknown function, a shipped sample given to another function, or an event of a kind
the function is never invoked with (a bus event to a queue-triggered function, an SQS batch to a scheduled one) is
refused with one line that says what to use instead, not a traceback from deep inside the handler.

The README's "Sample events" table lists the same samples; tests/unit/test_samples.py keeps both equal to the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksync_dev.local.template import REPO_ROOT, load_template

EVENTS = REPO_ROOT / "events"
BUS = "bus"  # a sample that is an EventBridge event for the stack's bus, not for one function


@dataclass(frozen=True)
class Sample:
    """``function``: the folder under functions/ the sample is for (``BUS`` for an event to put on the bus, with
    ``via`` the function its rule's queue feeds); ``note``: what to know before running it."""

    function: str
    note: str = ""
    via: str = ""


SAMPLES: dict[str, Sample] = {
    "assign_buckets_schedule.json": Sample("assign_buckets", "the input its schedule passes"),
    "export_feeds_schedule.json": Sample("export_feeds", "the input its schedule passes"),
    "generic_order_webhook.json": Sample("order_webhook", "a signed delivery (the local stack holds its secret)"),
    "order_changed_bus_event.json": Sample(BUS, "what a checkout puts on the bus", via="order_events"),
    "order_events_sqs_batch.json": Sample(
        "order_events", "its second record is bad on purpose: it is dead-lettered naming the field, so exit 1"
    ),
    "orders_synced.json": Sample("warehouse_events"),
    "poll_orders_schedule.json": Sample("poll_orders", "the simulator serves the order API"),
    "push_queue_batch.json": Sample(
        "push_batch",
        "seeds itself locally: its SKUs are recorded at the rows' versions (as recompute_stock leaves them) and "
        "added to the simulator's catalog; a deployed stack needs them recomputed first",
    ),
    "recompute_queue_batch.json": Sample("recompute_stock"),
    "reconcile_schedule.json": Sample("reconcile", "a dry run"),
    "shopify_orders_create.json": Sample(BUS, "what Shopify puts on its partner bus", via="shopify_orders"),
    "shopify_orders_sqs_batch.json": Sample("shopify_orders"),
    "sku_settings_changed.json": Sample(BUS, "what a merchant's system puts on the bus", via="recompute_stock"),
    "snapshot_object_created.json": Sample(
        "load_snapshot",
        "seeds itself locally: a two-line levels file is put at its key in the stack's snapshot bucket; a deployed "
        "stack needs the file uploaded there",
    ),
    "sweep_fast.json": Sample("sweep_stock", "the fast bucket's schedule input"),
    "sweep_handover.json": Sample("sweep_stock", "a sweep's hand-over message"),
    "sweep_medium.json": Sample("sweep_stock", "the medium bucket's schedule input"),
    "sweep_slow.json": Sample("sweep_stock", "the slow bucket's schedule input"),
    "verify_queue_batch.json": Sample(
        "verify_batch",
        "seeds itself locally: push_queue_batch.json is pushed first and its handle checked; a deployed stack needs "
        "a handle push_batch recorded there",
    ),
    "warehouse_levels.json": Sample("warehouse_events"),
    "woocommerce_order_updated.json": Sample("order_webhook", "a signed delivery (the local stack holds its secret)"),
}


class SampleMismatch(ValueError):
    """The event cannot go to that function; the message is the one line to print."""


def functions() -> list[str]:
    return sorted(path.parent.name for path in (REPO_ROOT / "functions").glob("*/app.py"))


def event_kind(event: Any) -> str:
    """``sqs`` (a batch of records), ``bus`` (an EventBridge event), ``url`` (a Function URL request) or
    ``input`` (anything else: a schedule's own input)."""
    if not isinstance(event, dict):
        return "input"
    if isinstance(event.get("Records"), list):
        return "sqs"
    if "detail-type" in event:
        return "bus"
    if "requestContext" in event:
        return "url"
    return "input"


def accepted_kinds(function: str) -> set[str]:
    """The kinds of event template.yaml invokes the function with."""
    kinds: set[str] = set()
    for resource in load_template()["Resources"].values():
        properties = resource.get("Properties", {})
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        if Path(str(properties.get("CodeUri", "")).rstrip("/")).name != function:
            continue
        if "FunctionUrlConfig" in properties:
            kinds.add("url")
        for event in properties.get("Events", {}).values():
            kinds.add({"SQS": "sqs", "Schedule": "bus", "ScheduleV2": "input"}.get(event["Type"], "input"))
    return kinds


def check(path: Path, event: Any, function: str) -> Sample | None:
    """Raise SampleMismatch when ``event`` (read from ``path``) cannot be given to ``function``; return the
    sample's entry when the file is one of events/."""
    known = functions()
    if function not in known:
        raise SampleMismatch(f"unknown function {function!r}: one of {', '.join(known)} (folders under functions/)")
    sample = SAMPLES.get(path.name) if path.resolve().parent == EVENTS.resolve() else None
    if sample is not None and sample.function == BUS:
        raise SampleMismatch(
            f"{path.name} is an EventBridge event for the stack's bus (its rule queues it for {sample.via}), not an "
            f"invocation: give {sample.via} one of {', '.join(sorted(for_function(sample.via)))} instead"
        )
    if sample is not None and sample.function != function:
        raise SampleMismatch(
            f"{path.name} is {sample.function}'s sample, not {function}'s (README, 'Sample events'): "
            f"use --function {sample.function}"
        )
    kind, accepted = event_kind(event), accepted_kinds(function)
    if kind not in accepted:
        names = {"sqs": "an SQS batch (Records)", "bus": "an EventBridge event", "url": "a Function URL request"}
        raise SampleMismatch(
            f"{path.name} is {names.get(kind, 'a schedule input')}, and template.yaml invokes {function} with "
            f"{' or '.join(sorted(names.get(k, 'its schedule input') for k in accepted))}"
            + (f": try {', '.join(sorted(for_function(function)))}" if for_function(function) else "")
        )
    return sample


def for_function(function: str) -> set[str]:
    return {name for name, sample in SAMPLES.items() if sample.function == function}
