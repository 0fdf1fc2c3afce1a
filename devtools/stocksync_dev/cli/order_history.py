"""``stocksync tune HISTORY``: a demand scenario measured from the orders a shop really took (issue 15).

A merchant knows their orders, not a Poisson rate. This module reads an order history, measures each SKU's velocity
over it, puts each SKU in the bucket the deployment's own rule would (``stocksync.logic.bucketing.assign_bucket``
with template.yaml's ``<B>MinUnitsPerHour`` defaults, as the assign_buckets function does for a SKU it has not placed
yet) and writes the scenario ``tune`` replays: one demand profile per SKU at its measured rate, with its spikes.

Two inputs (README, "Tuning from an order history" documents both):

* an export of orders, CSV (a header naming the columns) or JSON (a list of objects, or ``{"orders": [...]}``), one
  line of one order per row: ``order_id``, ``placed_at`` (ISO 8601 with a UTC offset: ``2026-11-27T09:15:00Z``),
  ``retailer_id``, ``quantity`` (a whole number above zero) and optionally ``channel`` (``platform``, ``facebook``
  or ``instagram``: sold on Meta's shops; ``web``, ``webshop`` or ``other``: anywhere else);
* the product's own ledger (the orders table, dal/ledger_table.py), exported with
  ``aws dynamodb scan --table-name <OrdersTable> --output json > ledger.json`` (DynamoDB-typed items under
  ``Items``) or as plain items (a list of objects with ``lines``): each row's ``lines`` give the units ordered per
  SKU (``ordered``, cancellations included: a cancelled unit was still wanted), its ``placed_at`` the time (its
  ``seen_at`` when the source gave none, as the product's velocity does) and its
  ``source`` the channel (``meta_commerce``: the platform, ``events``: elsewhere; ``warehouse`` rows, a notice
  whose order was not seen yet, carry no lines and are skipped); or read from the deployed table itself with
  ``--ledger-table <OrdersTable>`` (a Scan; boto3's usual configuration, ``AWS_ENDPOINT_URL`` for a local stack).

Velocity is the product's: units per hour over the window, here the history's span in whole UTC hours (from the
hour of the first order to the end of the hour of the last). An hour in which a SKU sold more than
``spike_factor`` times its mean rate over the other hours (and at least ``MIN_SPIKE_UNITS`` units) is a spike of
that hour; the SKU's
base rate is then its rate over the other hours (its mean when it sold only in spikes, so it is never 0 outside
them), each spike's factor that hour's units over the base rate. The platform share is the share of units sold on
the platform when the history says; otherwise the scenario's default (0.5).

Starting warehouse levels come from ``--stock`` (CSV ``retailer_id,warehouse`` or a JSON object ``{"SKU": units}``);
without it each SKU starts with the units it sold over the history, so the history's demand just empties it, where
over- and under-selling show. With ``--stock``, a SKU of the history that the stock list does not name is an unknown
SKU and refused; a SKU only the stock list names is replayed without demand.

Every bad input raises ``HistoryError`` naming the file, the row and the field; tune exits 2 on it before anything
runs.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stocksync.dal.codec import decode
from stocksync.logic.bucketing import assign_bucket
from stocksync.models.settings import BucketSettings
from stocksync_dev.cli.demand import Channel
from stocksync_dev.cli.parameter_names import bucket_parameter
from stocksync_dev.cli.replay import deployment_buckets
from stocksync_dev.cli.scenario import (
    MAX_DEMAND_MINUTES,
    MAX_SPIKE_FACTOR,
    Scenario,
    ScenarioError,
    parse_scenario,
)
from stocksync_dev.local.template import load_template

COLUMNS = ("order_id", "placed_at", "retailer_id", "quantity")
PLATFORM_CHANNELS = frozenset({"platform", "facebook", "instagram", "meta_commerce"})
WEB_CHANNELS = frozenset({"web", "webshop", "other", "events"})
DEFAULT_SPIKE_FACTOR = 5.0
MIN_SPIKE_UNITS = 3  # one or two units in an hour of a slow SKU is chance, not a flash sale
MAX_QUANTITY = 10**9  # the product refuses more units than this (models)
# How the warehouse ships in a history's scenario (a history does not say): half an hour after the sale, in waves
# every half hour, as the shipped flash-sale scenario does.
SHIP_AFTER_MINUTES = 30
SHIP_EVERY_MINUTES = 30
DEFAULT_SEED = 1
HOUR = timedelta(hours=1)


class HistoryError(ValueError):
    """A history (or stock list) that cannot be tuned on; the message names the file, the row and the field."""


@dataclass(frozen=True)
class Sale:
    """Units of one SKU on one order, placed at ``placed_at`` (tz-aware, UTC)."""

    order_id: str
    placed_at: datetime
    retailer_id: str
    quantity: int
    channel: Channel | None = None


@dataclass(frozen=True)
class Spike:
    hour: int  # hours from the history's start
    units: int
    factor: float


@dataclass(frozen=True)
class SkuVelocity:
    """What the history says of one SKU: units, the product's velocity (units per hour over the span), the rate
    outside its spikes, its spikes and the bucket the deployment's rule gives that velocity."""

    retailer_id: str
    units: int
    units_per_hour: float
    base_units_per_hour: float
    spikes: tuple[Spike, ...]
    bucket: str


@dataclass(frozen=True)
class MeasuredHistory:
    start: datetime
    hours: int
    skus: dict[str, SkuVelocity]
    platform_share: float | None  # None: the history names no channel

    def summary(self) -> dict[str, Any]:
        """What tune reports of the history (JSON's ``history``): span, units, SKUs per bucket, spikes found."""
        return {
            "start": self.start.isoformat(),
            "hours": self.hours,
            "units": sum(sku.units for sku in self.skus.values()),
            "skus": len(self.skus),
            "skus_by_bucket": dict(sorted(Counter(sku.bucket for sku in self.skus.values()).items())),
            "spikes": sum(len(sku.spikes) for sku in self.skus.values()),
            "platform_share": self.platform_share,
        }


# -- reading -------------------------------------------------------------------------------------------------


def is_order_history(path: Path) -> bool:
    """A CSV, or a JSON file that is not a scenario (a scenario is an object with ``steps``)."""
    if path.suffix.lower() == ".csv":
        return True
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # the scenario loader says what is wrong with it
    return not (isinstance(raw, dict) and "steps" in raw)


def read_history(path: Path) -> list[Sale]:
    """Every sale of the file (see the module's docstring for the formats); HistoryError when it has none."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"{path}: cannot be read ({error})") from None
    if not text.strip():
        raise HistoryError(f"{path}: the order history is empty (the file is empty)")
    if path.suffix.lower() == ".csv":
        sales = _read_csv(path, text)
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise HistoryError(f"{path}: not valid JSON: {error.msg} at line {error.lineno}") from None
        sales = _read_json(path, raw)
    if not sales:
        raise HistoryError(f"{path}: the order history is empty (no order lines to measure a velocity from)")
    return sales


def _read_csv(path: Path, text: str) -> list[Sale]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise HistoryError(
            f"{path}: the header has no column {', '.join(missing)} (expected {', '.join(COLUMNS)}[, channel])"
        )
    sales = []
    for row in reader:
        where = f"{path} row {reader.line_num}"
        values = {(key or "").strip(): (value or "").strip() for key, value in row.items() if key is not None}
        if None in row:
            raise HistoryError(f"{where}: more fields than the header names")
        sales.append(_sale(where, values))
    return sales


def _read_json(path: Path, raw: Any) -> list[Sale]:
    if isinstance(raw, dict) and isinstance(raw.get("Items"), list):
        return _read_ledger(path, raw["Items"], typed=True)
    if isinstance(raw, dict) and isinstance(raw.get("orders"), list):
        raw = raw["orders"]
    if not isinstance(raw, list):
        raise HistoryError(
            f'{path}: expected a list of order lines, {{"orders": [...]}}, or a ledger export {{"Items": [...]}}'
        )
    if raw and all(isinstance(item, dict) and "lines" in item for item in raw):
        return _read_ledger(path, raw, typed=False)
    sales = []
    for index, item in enumerate(raw):
        where = f"{path} [{index}]"
        if not isinstance(item, dict):
            raise HistoryError(f"{where}: an order line is a JSON object")
        sales.append(_sale(where, item))
    return sales


def read_ledger_table(client: Any, table: str) -> list[Sale]:
    """Every sale in a deployed ledger (the stack's orders table), read with a paginated Scan: on AWS, or on a
    local stack when ``AWS_ENDPOINT_URL`` points boto3 at it. HistoryError when it holds none."""
    items: list[Any] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page.get("Items", []))
    sales = _read_ledger(f"--ledger-table {table}", items, typed=True)
    if not sales:
        raise HistoryError(f"--ledger-table {table}: the order history is empty (no order lines in the ledger)")
    return sales


def _read_ledger(path: Path | str, items: list[Any], *, typed: bool) -> list[Sale]:
    sales = []
    for index, item in enumerate(items):
        where = f"{path} Items[{index}]" if typed else f"{path} [{index}]"
        if not isinstance(item, dict):
            raise HistoryError(f"{where}: a ledger item is a JSON object")
        try:
            row = decode(item) if typed else item
        except (TypeError, ValueError, AttributeError) as error:
            raise HistoryError(f"{where}: not a DynamoDB-typed item ({error})") from None
        if "order_id" not in row:
            raise HistoryError(f"{where}.order_id: missing (is this an export of the orders table?)")
        lines = row.get("lines") or {}
        if not isinstance(lines, dict):
            raise HistoryError(f"{where}.lines: a map of retailer_id to counts")
        if not lines:
            continue  # a warehouse notice whose order was not seen yet: nothing sold by it
        # The product's own rule for velocity (OrderObservation.reference_time): the order's time when its source
        # gave one, else when the product first saw it.
        time_field = "placed_at" if row.get("placed_at") else "seen_at"
        placed_at = _time(f"{where}.{time_field}", row.get(time_field))
        source = row.get("source")
        channel: Channel | None = (
            "platform" if source == "meta_commerce" else "web" if source in ("events", "warehouse") else None
        )
        for retailer_id, line in sorted(lines.items()):
            ordered = line.get("ordered") if isinstance(line, dict) else None
            quantity = _quantity(f"{where}.lines.{retailer_id}.ordered", ordered, allow_zero=True)
            if quantity:
                sales.append(
                    Sale(str(row["order_id"]), placed_at, _sku(f"{where}.lines", retailer_id), quantity, channel)
                )
    return sales


def _sale(where: str, values: Mapping[str, Any]) -> Sale:
    for name in COLUMNS:
        if values.get(name) in (None, ""):
            raise HistoryError(f"{where}.{name}: missing")
    order_id = str(values["order_id"])
    if len(order_id) > 128:
        raise HistoryError(f"{where}.order_id: longer than 128 characters")
    return Sale(
        order_id=order_id,
        placed_at=_time(f"{where}.placed_at", values["placed_at"]),
        retailer_id=_sku(f"{where}.retailer_id", values["retailer_id"]),
        quantity=_quantity(f"{where}.quantity", values["quantity"]),
        channel=_channel(f"{where}.channel", values.get("channel")),
    )


def _time(where: str, value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise HistoryError(f"{where}: missing (an ISO 8601 time with a UTC offset)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HistoryError(f"{where}: {value!r} is not an ISO 8601 time such as 2026-11-27T09:15:00Z") from None
    if moment.tzinfo is None:
        raise HistoryError(f"{where}: {value!r} has no UTC offset (add Z if it is UTC)")
    return moment.astimezone(UTC)


def _quantity(where: str, value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, str):
        text = value.strip()
        number = int(text) if text.isdigit() or (text.startswith("-") and text[1:].isdigit()) else None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = None
    if number is None:
        raise HistoryError(f"{where}: {value!r} is not a whole number of units")
    if number < (0 if allow_zero else 1) or number > MAX_QUANTITY:
        low = "0" if allow_zero else "1"
        raise HistoryError(f"{where}: {number} units; expected a whole number from {low} to {MAX_QUANTITY}")
    return number


def _sku(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 100:
        raise HistoryError(f"{where}: {value!r} is not a retailer_id (1 to 100 characters)")
    return value.strip()


def _channel(where: str, value: Any) -> Channel | None:
    if value in (None, ""):
        return None
    name = str(value).strip().lower()
    if name in PLATFORM_CHANNELS:
        return "platform"
    if name in WEB_CHANNELS:
        return "web"
    raise HistoryError(
        f"{where}: unknown channel {value!r}; expected one of {sorted(PLATFORM_CHANNELS | WEB_CHANNELS)} or empty"
    )


def read_stock(path: Path) -> dict[str, int]:
    """Starting warehouse levels: CSV ``retailer_id,warehouse`` or a JSON object ``{"SKU": units}``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"--stock {path}: cannot be read ({error})") from None
    levels: dict[str, int] = {}
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not {"retailer_id", "warehouse"} <= {name.strip() for name in reader.fieldnames or []}:
            raise HistoryError(f"--stock {path}: the header must name retailer_id and warehouse")
        pairs: Iterable[tuple[str, Any, Any]] = (
            (f"--stock {path} row {reader.line_num}", row.get("retailer_id"), row.get("warehouse")) for row in reader
        )
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise HistoryError(f"--stock {path}: not valid JSON: {error.msg} at line {error.lineno}") from None
        if not isinstance(raw, dict):
            raise HistoryError(f'--stock {path}: expected a JSON object {{"SKU": units}}')
        pairs = ((f"--stock {path} {key!r}", key, value) for key, value in raw.items())
    for where, retailer_id, units in pairs:
        sku = _sku(f"{where}.retailer_id", (retailer_id or "").strip() if isinstance(retailer_id, str) else retailer_id)
        if sku in levels:
            raise HistoryError(f"{where}.retailer_id: {sku} is listed twice")
        levels[sku] = _quantity(f"{where}.warehouse", units, allow_zero=True)
    if not levels:
        raise HistoryError(f"--stock {path}: lists no SKU")
    return levels


# -- measuring -----------------------------------------------------------------------------------------------


def template_bucket_floors() -> tuple[dict[str, BucketSettings], float]:
    """The deployment's buckets as the assign_buckets function sees them by default (their ``min_units_per_hour``
    from template.yaml's ``<B>MinUnitsPerHour``), and the template's BucketHysteresis."""
    parameters = load_template()["Parameters"]
    buckets = {
        bucket: BucketSettings(
            min_units_per_hour=float(parameters[str(bucket_parameter(bucket, "min_units_per_hour"))]["Default"])
        )
        for bucket in sorted(deployment_buckets())
    }
    return buckets, float(parameters["BucketHysteresis"]["Default"])


def measure(
    sales: list[Sale],
    *,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    buckets: Mapping[str, BucketSettings] | None = None,
    hysteresis: float | None = None,
) -> MeasuredHistory:
    """Velocity, spikes and bucket per SKU (the module's docstring gives the rules)."""
    if not sales:
        raise HistoryError("the order history is empty")
    if not (spike_factor > 1 and math.isfinite(spike_factor)):
        raise HistoryError(f"--spike-factor: a number above 1, got {spike_factor:g}")
    if buckets is None or hysteresis is None:
        buckets, hysteresis = template_bucket_floors()
    start = min(sale.placed_at for sale in sales).replace(minute=0, second=0, microsecond=0)
    hours = int((max(sale.placed_at for sale in sales) - start) // HOUR) + 1
    hourly: dict[str, Counter[int]] = defaultdict(Counter)
    for sale in sales:
        hourly[sale.retailer_id][int((sale.placed_at - start) // HOUR)] += sale.quantity
    skus = {}
    for retailer_id, counts in sorted(hourly.items()):
        units = sum(counts.values())
        mean = units / hours
        # Each hour against the SKU's rate over the other hours: against the mean of all of them, the spike itself
        # raises the bar it must clear (a 30-unit hour in six hours of 2 would not clear 5 x 7).
        spiking = {
            hour: count
            for hour, count in counts.items()
            if hours > 1 and count >= MIN_SPIKE_UNITS and count > spike_factor * (units - count) / (hours - 1)
        }
        calm_hours = hours - len(spiking)
        base = (units - sum(spiking.values())) / calm_hours if calm_hours else 0.0
        if base <= 0:
            base = mean
        spikes = tuple(
            Spike(hour, count, min(count / base, MAX_SPIKE_FACTOR)) for hour, count in sorted(spiking.items())
        )
        skus[retailer_id] = SkuVelocity(
            retailer_id=retailer_id,
            units=units,
            units_per_hour=mean,
            base_units_per_hour=base,
            spikes=spikes,
            bucket=assign_bucket(None, mean, buckets, hysteresis=hysteresis),
        )
    named = sum(sale.quantity for sale in sales if sale.channel is not None)
    platform = sum(sale.quantity for sale in sales if sale.channel == "platform")
    return MeasuredHistory(start, hours, skus, round(platform / named, 6) if named else None)


# -- the scenario --------------------------------------------------------------------------------------------


def scenario_from_history(
    measured: MeasuredHistory,
    *,
    stock: Mapping[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    source: str = "the history",
    deployment_buckets: set[str] | None = None,
) -> Scenario:
    """The scenario tune replays: the SKUs (bucketed), their starting levels, one demand step over the history's
    span with a profile per SKU, then a pipeline run. HistoryError names the history when it cannot be simulated
    (too long, too many units, a rate beyond the replay's bounds) or names SKUs the stock list does not."""
    if stock is not None:
        unknown = sorted(set(measured.skus) - set(stock))
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise HistoryError(f"{source}: unknown SKUs (not in the --stock list): {shown}")
    if measured.hours * 60 > MAX_DEMAND_MINUTES:
        raise HistoryError(
            f"{source}: spans {measured.hours} hours from {measured.start.isoformat()}; a replay plays at most "
            f"{MAX_DEMAND_MINUTES // 60} hours (export a week or less)"
        )
    retailer_ids = sorted(set(measured.skus) | set(stock or {}))
    skus = [
        {
            "retailer_id": retailer_id,
            "warehouse": (stock or {}).get(
                retailer_id, measured.skus[retailer_id].units if retailer_id in measured.skus else 0
            ),
            "bucket": measured.skus[retailer_id].bucket if retailer_id in measured.skus else None,
        }
        for retailer_id in retailer_ids
    ]
    profiles = [
        {
            "skus": [velocity.retailer_id],
            "units_per_hour": round(velocity.base_units_per_hour, 6),
            "spikes": [
                {"at_minute": float(spike.hour * 60), "minutes": 60.0, "factor": round(spike.factor, 6)}
                for spike in velocity.spikes
            ],
        }
        for velocity in measured.skus.values()
    ]
    demand: dict[str, Any] = {
        "minutes": measured.hours * 60,
        "seed": seed,
        "profiles": profiles,
        "ship_after_minutes": SHIP_AFTER_MINUTES,
        "ship_every_minutes": SHIP_EVERY_MINUTES,
    }
    if measured.platform_share is not None:
        demand["platform_share"] = measured.platform_share
    raw = {
        "description": f"measured from {source}: {len(measured.skus)} SKUs over {measured.hours} hours",
        "skus": [{key: value for key, value in sku.items() if value is not None} for sku in skus],
        "steps": [{"demand": demand}, {"run": "pipeline"}],
    }
    try:
        return parse_scenario(raw, deployment_buckets=deployment_buckets)
    except ScenarioError as error:
        raise HistoryError(f"{source}: its demand cannot be simulated: {error}") from None


__all__ = [
    "HistoryError",
    "MeasuredHistory",
    "Sale",
    "SkuVelocity",
    "is_order_history",
    "measure",
    "read_history",
    "read_ledger_table",
    "read_stock",
    "scenario_from_history",
    "template_bucket_floors",
]
