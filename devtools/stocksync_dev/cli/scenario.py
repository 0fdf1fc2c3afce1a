"""The scenario file format of ``stocksync replay`` (part of the product's public interface; README documents it,
events/scenarios/scenario.schema.json is generated from these models and checked by a test).

A scenario is validated whole before anything runs: a bad step stops the replay with exit code 2 and a message
naming the step index and the field, so nothing is ever half-run. Validation refuses what the platform would refuse
(and the replay could then only crash on or silently skip): an order moved to the state it has or an earlier one
(Meta's order states only move forward), a cancellation of an order with nothing left to cancel (COMPLETED: shipped,
or every unit cancelled already). The order states it follows are the platform's, so a full cancellation completes
the order as the platform does.

``while_pushing`` places buyer orders, cancellations and warehouse changes at chosen points of a batch's processing
(before or after the platform applies it, or seconds after the call): the race the catalog model exists for
(docs/catalog.md), which steps between runs of the pipeline can never produce.

``demand`` plays buyers over a window of simulated time (stocksync_dev/cli/demand.py draws them from a seed) while
the pipeline runs, so strategies can be compared on what they over- and under-sell (issue 15).

The shipped schema is regenerated with ``python -m stocksync_dev.cli.scenario > events/scenarios/scenario.schema.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stocksync.errors import InvalidInputError
from stocksync.models.orders import OrderState
from stocksync.models.settings import is_schedule_expression
from stocksync_dev.cli.schedules import SIMULATED_FORMS, interval_seconds
from stocksync_dev.simulator.errors import THROTTLE_MESSAGES

Quantity = Annotated[int, Field(strict=True, ge=1, description="units, a whole number above zero")]
Sku = Annotated[str, Field(min_length=1, max_length=100)]
# The names the functions' settings accept (models/settings.py); the replay gives them a scenario's buckets.
BucketName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
# A batch's processing, and a point inside it, are bounded: an hour is far beyond anything Meta documents or we saw.
MAX_POINT_SECONDS = 3600
MAX_GENERATED_SKUS = 100_000  # one generate_skus entry (the sweep benchmark's bucket size)
APPLY_POINTS = ("before_apply", "after_apply")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OneAllocation(_Strict):
    """A percentage or a fixed cap, not both: the product refuses both (the bucket settings at cold start, a SKU's
    settings to the dead-letter queue), so a scenario with both could only crash or end with a dead letter."""

    allocation_percent: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None
    allocation_fixed: Annotated[int, Field(strict=True, ge=0)] | None = None

    @model_validator(mode="after")
    def _one_allocation(self) -> Self:
        if self.allocation_percent is not None and self.allocation_fixed is not None:
            raise ValueError("set allocation_percent or allocation_fixed, not both")
        return self


class BucketOverride(_OneAllocation):
    """A bucket's settings for this replay (overriding a deployment bucket, or a new one), checked as the functions
    check their settings, so a replay never starts with a bucket they would refuse at their first cold start.

    ``sweep_rate`` is also the schedule the replay sweeps the bucket on during its runs, so it must be one the replay
    can fire faithfully: an expression it could only approximate is refused rather than run on a guessed cadence."""

    threshold: Annotated[int, Field(strict=True, ge=0)] | None = None
    sweep_rate: str | None = Field(
        default=None,
        description=f"the bucket's sweep schedule in this replay: {SIMULATED_FORMS} (omitted: only run: sweep)",
    )
    min_units_per_hour: Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)] | None = None

    @field_validator("sweep_rate")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not is_schedule_expression(value):
            raise ValueError(f"malformed schedule expression {value!r}; expected rate(N minutes) or cron(...)")
        try:
            interval_seconds(value)
        except ValueError:
            raise ValueError(
                f"{value!r} cannot be simulated: the replay sweeps on {SIMULATED_FORMS} (every N minutes of the "
                "clock); a cron at given hours or days has no faithful replay"
            ) from None
        return value


class ScenarioSettings(_Strict):
    """Deployment settings for this replay; anything omitted takes the deployment defaults."""

    deduction_mode: Literal["merchant", "platform"] | None = None
    field: Literal["quantity_to_sell_on_facebook", "inventory"] | None = None
    buckets: dict[BucketName, BucketOverride] | None = None
    default_bucket: str | None = None
    catalog_reads_per_hour: Annotated[int, Field(strict=True, ge=0, le=3600)] | None = Field(
        default=None,
        description="the CatalogReadsPerHour parameter (0: reads off, an ambiguous SKU is pushed again instead)",
    )


class PlatformSettings(_Strict):
    """How the simulated platform processes uploads in this replay: the platform's behaviour, not a setting of the
    deployment. Meta does not say when inside its processing a batch lands, so a scenario chooses."""

    batch_processing_seconds: Annotated[float, Field(strict=True, ge=0, le=MAX_POINT_SECONDS, allow_inf_nan=False)] = (
        Field(default=0, description="from the items_batch call to the batch reporting finished (0: at once)")
    )
    batch_apply_fraction: Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)] | None = Field(
        default=0.5,
        description="where inside that processing the rows overwrite the catalog, as a fraction of it; "
        "null: a point drawn per batch from a seeded generator",
    )


class ScenarioSku(_OneAllocation):
    retailer_id: Sku
    warehouse: Annotated[int, Field(strict=True, ge=0, description="units on hand at the start")]
    bucket: str | None = None
    catalog: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, description="the platform's value before the replay's initial publish (default: warehouse)"
    )


class GeneratedSkus(_OneAllocation):
    """Many SKUs alike in one entry (a catalog of 12,000 SKUs without 12,000 lines): ``count`` SKUs named ``prefix``
    and a number zero-padded to ``digits`` (``SKU-00000``, ``SKU-00001``...), from ``start``."""

    count: Annotated[int, Field(strict=True, ge=1, le=MAX_GENERATED_SKUS)]
    prefix: Annotated[str, Field(min_length=1, max_length=80)] = "SKU-"
    start: Annotated[int, Field(strict=True, ge=0)] = 0
    digits: Annotated[int, Field(strict=True, ge=1, le=12)] = 5
    warehouse: Annotated[int, Field(strict=True, ge=0, description="units on hand at the start, for each")]
    bucket: str | None = None
    catalog: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, description="the platform's value before the replay's initial publish (default: warehouse)"
    )

    @model_validator(mode="after")
    def _numbers_fit(self) -> Self:
        if len(str(self.start + self.count - 1)) > self.digits:
            raise ValueError(f"{self.start + self.count - 1} has more than {self.digits} digits")
        return self

    def expand(self) -> list[ScenarioSku]:
        return [
            ScenarioSku(
                retailer_id=f"{self.prefix}{number:0{self.digits}d}",
                warehouse=self.warehouse,
                bucket=self.bucket,
                catalog=self.catalog,
                allocation_percent=self.allocation_percent,
                allocation_fixed=self.allocation_fixed,
            )
            for number in range(self.start, self.start + self.count)
        ]


class ItemLine(_Strict):
    retailer_id: Sku
    quantity: Quantity


class OrderSpec(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    state: OrderState = Field(
        description="a new order's state, or the state an existing order moves to: only forward "
        "(FB_PROCESSING, CREATED, IN_PROGRESS, COMPLETED), as on the platform"
    )
    items: list[ItemLine] | None = Field(
        default=None, description="with items: a buyer places the order; without: an existing order moves to state"
    )


class CancelSpec(_Strict):
    id: Annotated[str, Field(min_length=1)]
    items: list[ItemLine] | None = Field(default=None, description="omitted: every unit still open")
    by: Literal["buyer", "seller"]
    restock_items: bool = False


class OrderStep(_Strict):
    order: OrderSpec


class ShopOrderSpec(_Strict):
    """An order taken on another channel (the merchant's web shop): an "Order Changed" event on the product's bus,
    as a checkout or a web-shop connector sends it. The platform never sees it; only the warehouse stock it uses."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    state: Literal["pending", "placed", "accepted", "completed", "cancelled"] = Field(
        description="the merchant's order state (README, the bus schema)"
    )
    items: Annotated[list[ItemLine], Field(min_length=1)]
    channel: Annotated[str, Field(min_length=1, max_length=64)] = "web"


class ShopOrderStep(_Strict):
    shop_order: ShopOrderSpec


class CancelStep(_Strict):
    cancel: CancelSpec


class SyncedStep(_Strict):
    synced: Annotated[list[str], Field(min_length=1)]


class WarehouseStep(_Strict):
    warehouse: Annotated[dict[Sku, Annotated[int, Field(strict=True, ge=0)]], Field(min_length=1)]


class WarehouseAllStep(_Strict):
    """Every SKU of the scenario at one new warehouse level: a ``warehouse`` step that lists them all."""

    warehouse_all: Annotated[int, Field(strict=True, ge=0, description="the new level of every SKU")]


class DiscontinueStep(_Strict):
    discontinue: Annotated[list[Sku], Field(min_length=1)]


class AdvanceStep(_Strict):
    advance: Annotated[int, Field(strict=True, ge=1, description="seconds of simulated time")]


class CatalogEdit(_Strict):
    """A change made to the catalog outside stocksync (Commerce Manager, another feed)."""

    units: Annotated[int, Field(strict=True, ge=0)] | None = None
    visibility: Literal["published", "staging"] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.units is None and self.visibility is None:
            raise ValueError("an edit sets units, visibility or both")
        return self


class CatalogEditStep(_Strict):
    catalog_edit: Annotated[dict[Sku, CatalogEdit], Field(min_length=1)]


class RunStep(_Strict):
    run: Literal["pipeline", "sweep", "audit"]
    bucket: str | None = Field(
        default=None,
        description="the bucket a sweep runs: one the deployment defines or one the scenario's settings declare",
    )

    @model_validator(mode="after")
    def _sweep_needs_bucket(self) -> Self:
        if self.run == "sweep" and not self.bucket:
            raise ValueError("a sweep names its bucket")
        return self


class ThrottleSpec(_Strict):
    """The simulator's throttling, typed so that a value it would refuse stops the scenario before the first step."""

    after_calls: Annotated[int, Field(strict=True, ge=0, description="calls still answered before throttling")] = 0
    code: Annotated[
        int,
        Field(
            strict=True, description="a Graph throttling code", json_schema_extra={"enum": sorted(THROTTLE_MESSAGES)}
        ),
    ] = 4
    regain_minutes: Annotated[
        float, Field(strict=True, ge=0, allow_inf_nan=False, description="simulated minutes until calls pass again")
    ] = 1
    endpoint: (
        Annotated[str, Field(min_length=1, description="throttle only this endpoint (last path segment)")] | None
    ) = None

    @field_validator("code")
    @classmethod
    def _throttling_code(cls, value: int) -> int:
        if value not in THROTTLE_MESSAGES:
            raise ValueError(f"not a Graph throttling code; one of {sorted(THROTTLE_MESSAGES)}")
        return value


class ThrottleStep(_Strict):
    throttle: ThrottleSpec


# Bounds of a demand step: a week of simulated time, and rates far above what one SKU of a shop sells, so a typo
# (120000 minutes, 3000 units an hour) is refused instead of running for hours.
MAX_DEMAND_MINUTES = 7 * 24 * 60
MAX_UNITS_PER_HOUR = 600.0
MAX_SPIKE_FACTOR = 1000.0
MAX_DEMAND_UNITS = 50_000  # expected units of one demand step, spikes included


class DemandSpike(_Strict):
    """A flash sale: the profile's rate times ``factor`` from ``at_minute`` for ``minutes`` (inside the window)."""

    at_minute: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False, description="minutes into the window")]
    minutes: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False, description="how long it lasts")]
    factor: Annotated[
        float, Field(strict=True, ge=0, le=MAX_SPIKE_FACTOR, allow_inf_nan=False, description="the rate's multiplier")
    ]


class DemandProfile(_Strict):
    """SKUs that sell alike: each of them, on its own, at ``units_per_hour`` (times a spike's factor inside it)."""

    skus: Annotated[list[Sku], Field(min_length=1)]
    units_per_hour: Annotated[float, Field(strict=True, ge=0, le=MAX_UNITS_PER_HOUR, allow_inf_nan=False)]
    spikes: list[DemandSpike] = []


class DemandSpec(_Strict):
    """Buyers over a window of simulated time, drawn from a seeded generator so a replay can be run again and
    compared: one unit an order, on Facebook/Instagram with probability ``platform_share``, else in the web shop."""

    minutes: Annotated[int, Field(strict=True, ge=1, le=MAX_DEMAND_MINUTES, description="the window's length")]
    seed: Annotated[int, Field(strict=True, description="the generator's seed: the same seed, the same buyers")]
    platform_share: Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)] = Field(
        default=0.5, description="the probability that a unit is demanded on Facebook/Instagram (else the web shop)"
    )
    profiles: Annotated[list[DemandProfile], Field(min_length=1)]
    ship_after_minutes: Annotated[int, Field(strict=True, ge=0, le=MAX_DEMAND_MINUTES)] | None = Field(
        default=None,
        description="the warehouse ships a sold unit this long after the sale (in its next wave); omitted: sold "
        "units stay pending, as an order step's do",
    )
    ship_every_minutes: Annotated[int, Field(strict=True, ge=1, le=MAX_DEMAND_MINUTES)] = Field(
        default=1,
        description="the warehouse ships in waves this many minutes apart from the window's start, each wave "
        "reporting one level per SKU and one sync notice",
    )


class DemandStep(_Strict):
    demand: DemandSpec


# What may happen while a batch is in flight: buyers and the merchant's systems act, someone edits the catalog.
# Not the clock, the pipeline or faults: the moment's ``at`` places them in time, and the pipeline is running.
NestedStep = OrderStep | ShopOrderStep | CancelStep | SyncedStep | WarehouseStep | DiscontinueStep | CatalogEditStep
_NESTED_TYPES: dict[str, type[BaseModel]] = {
    "order": OrderStep,
    "shop_order": ShopOrderStep,
    "cancel": CancelStep,
    "synced": SyncedStep,
    "warehouse": WarehouseStep,
    "discontinue": DiscontinueStep,
    "catalog_edit": CatalogEditStep,
}


class PushMoment(_Strict):
    """A point inside the processing of the next items_batch call, and what happens there."""

    at: (
        Literal["before_apply", "after_apply"]
        | Annotated[float, Field(strict=True, ge=0, le=MAX_POINT_SECONDS, allow_inf_nan=False)]
    ) = Field(
        description="before_apply: halfway from the call to the batch's application; after_apply: halfway from the "
        "application to the end of processing; a number: that many seconds after the call"
    )
    steps: Annotated[list[NestedStep], Field(min_length=1)]


class WhilePushingStep(_Strict):
    """``run: pipeline`` with steps inside the next push: the pipeline runs until the simulator accepts an
    items_batch call, each moment's steps happen at its point of that batch's processing (in the order listed),
    and the pipeline runs on as ``run: pipeline`` does."""

    while_pushing: Annotated[list[PushMoment], Field(min_length=1)]


Step = (
    OrderStep
    | ShopOrderStep
    | CancelStep
    | SyncedStep
    | WarehouseStep
    | WarehouseAllStep
    | DiscontinueStep
    | CatalogEditStep
    | AdvanceStep
    | RunStep
    | ThrottleStep
    | WhilePushingStep
    | DemandStep
)
_STEP_TYPES: dict[str, type[BaseModel]] = {
    **_NESTED_TYPES,
    "warehouse_all": WarehouseAllStep,
    "advance": AdvanceStep,
    "run": RunStep,
    "throttle": ThrottleStep,
    "while_pushing": WhilePushingStep,
    "demand": DemandStep,
}


class Scenario(_Strict):
    catalog_id: Annotated[str, Field(pattern=r"^[0-9]+$", description="a numeric Graph API object id")] = "1001"
    description: str | None = None
    settings: ScenarioSettings = ScenarioSettings()
    platform: PlatformSettings = PlatformSettings()
    skus: list[ScenarioSku] = Field(default=[], description="at least one SKU here or in generate_skus")
    generate_skus: list[GeneratedSkus] | None = Field(
        default=None, description="SKUs alike, listed after skus (a large catalog in a few lines)"
    )
    steps: list[Step]
    expect: dict[str, Any] | None = Field(
        default=None,
        description="optional expected end state, checked by `stocksync replay` (exit 1, one line per miss): "
        "{catalog: {sku: {units, visibility}}, refused_orders: [...], demand: {figure: value}, "
        "over_sold: {sku: units owed beyond its allocation}}",
    )


class ScenarioError(InvalidInputError):
    """The scenario is invalid; ``field`` is like ``steps[3].cancel.items[0].quantity``."""


def _parse_step(where: str, raw: Any, kinds: dict[str, type[BaseModel]] = _STEP_TYPES) -> Step:
    context = "" if kinds is _STEP_TYPES else " inside while_pushing"
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError(where, f"a step{context} is an object with one of " + ", ".join(sorted(kinds)))
    found = [key for key in raw if key in _STEP_TYPES]
    if len(found) != 1:
        unknown = sorted(set(raw) - set(_STEP_TYPES) - {"bucket"})
        problem = f"unknown step {unknown[0]!r}" if unknown else "a step has exactly one kind"
        raise ScenarioError(where, f"{problem}; known{context}: {', '.join(sorted(kinds))}")
    kind = found[0]
    if kind not in kinds:
        raise ScenarioError(
            where,
            f"no {kind!r} step{context} (the pipeline is running and the moment's at places the steps in time); "
            f"known{context}: {', '.join(sorted(kinds))}",
        )
    if kind == "while_pushing":
        return _parse_while_pushing(where, raw)
    try:
        return kinds[kind].model_validate(raw)  # type: ignore[return-value]
    except ValidationError as error:
        raise ScenarioError(f"{where}.{_first_location(error) or kind}", _first_message(error)) from None


def _parse_while_pushing(where: str, raw: dict[str, Any]) -> WhilePushingStep:
    """Nested steps are parsed one by one, so an error names ``steps[3].while_pushing[0].steps[1].order...`` as
    it would name a step outside (a union of step models would name the model pydantic tried last instead)."""
    for key in raw:
        if key != "while_pushing":
            raise ScenarioError(f"{where}.{key}", "Extra inputs are not permitted")
    moments = raw["while_pushing"]
    if not isinstance(moments, list) or not moments:
        raise ScenarioError(f"{where}.while_pushing", 'a list of moments, each {"at": ..., "steps": [...]}')
    parsed: list[PushMoment] = []
    for position, moment in enumerate(moments):
        at_where = f"{where}.while_pushing[{position}]"
        if not isinstance(moment, dict):
            raise ScenarioError(at_where, "a moment is an object with at and steps")
        at = moment.get("at")
        number = isinstance(at, int | float) and not isinstance(at, bool)
        if at not in APPLY_POINTS and not (number and 0 <= at <= MAX_POINT_SECONDS):
            raise ScenarioError(
                f"{at_where}.at",
                f"before_apply, after_apply, or seconds after the call from 0 to {MAX_POINT_SECONDS}; got {at!r}",
            )
        steps = moment.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ScenarioError(f"{at_where}.steps", "a list of at least one step")
        nested = [_parse_step(f"{at_where}.steps[{index}]", step, _NESTED_TYPES) for index, step in enumerate(steps)]
        try:
            parsed.append(PushMoment.model_validate({**moment, "steps": nested}))
        except ValidationError as error:
            raise ScenarioError(f"{at_where}.{_first_location(error)}", _first_message(error)) from None
    return WhilePushingStep(while_pushing=parsed)


def _first_location(error: ValidationError) -> str:
    issue = error.errors(include_url=False)[0]
    parts: list[str] = []
    for part in issue["loc"]:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _first_message(error: ValidationError) -> str:
    return error.errors(include_url=False)[0]["msg"]


def parse_scenario(raw: Any, *, deployment_buckets: set[str] | None = None) -> Scenario:
    """Validate shape and meaning; raise ScenarioError naming the step index and field.

    ``deployment_buckets`` are the buckets the deployment defines (template.yaml); a scenario may add its own.
    """
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", "a scenario is a JSON object")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list):
        raise ScenarioError("steps", "a list of steps is required")
    steps = [_parse_step(f"steps[{index}]", step) for index, step in enumerate(steps_raw)]
    try:
        scenario = Scenario.model_validate({**raw, "steps": []})
    except ValidationError as error:
        raise ScenarioError(_first_location(error), _first_message(error)) from None
    if scenario.generate_skus:
        buckets = (deployment_buckets or set()) | set((scenario.settings.buckets or {}).keys())
        for index, entry in enumerate(scenario.generate_skus):
            if entry.bucket is not None and buckets and entry.bucket not in buckets:
                raise ScenarioError(
                    f"generate_skus[{index}].bucket", f"unknown bucket {entry.bucket!r}; known: {sorted(buckets)}"
                )
        generated = [sku for entry in scenario.generate_skus for sku in entry.expand()]
        scenario = scenario.model_copy(update={"skus": [*scenario.skus, *generated], "generate_skus": None})
    if not scenario.skus:
        raise ScenarioError("skus", "a scenario has at least one SKU, in skus or generate_skus")
    every_sku = [sku.retailer_id for sku in scenario.skus]
    steps = [
        WarehouseStep(warehouse=dict.fromkeys(every_sku, step.warehouse_all))
        if isinstance(step, WarehouseAllStep)
        else step
        for step in steps
    ]
    scenario = scenario.model_copy(update={"steps": steps})
    check_meaning(scenario, deployment_buckets or set())
    return scenario


def check_meaning(scenario: Scenario, deployment_buckets: set[str]) -> None:
    """What a schema cannot say: SKUs, buckets and orders must exist, ids are not reused, cancels fit what is still
    open, an order's state only moves forward, and a while_pushing's moments can happen in the order listed. Each is
    something the replay would otherwise crash on, the platform refuse half-way through, or the replay silently run
    at another point than written, so it is refused here, before the first step. Steps inside while_pushing are
    checked where they happen: after the steps before it, in the order of its moments."""
    skus = {sku.retailer_id for sku in scenario.skus}
    if len(skus) != len(scenario.skus):
        raise ScenarioError("skus", "a retailer_id is listed twice")
    buckets = deployment_buckets | set((scenario.settings.buckets or {}).keys())
    default_bucket = scenario.settings.default_bucket
    if default_bucket is not None and buckets and default_bucket not in buckets:
        raise ScenarioError("settings.default_bucket", f"unknown bucket {default_bucket!r}; known: {sorted(buckets)}")
    for index, sku in enumerate(scenario.skus):
        if sku.bucket is not None and buckets and sku.bucket not in buckets:
            raise ScenarioError(f"skus[{index}].bucket", f"unknown bucket {sku.bucket!r}; known: {sorted(buckets)}")
    orders: dict[str, _OrderSoFar] = {}

    def check(step: Step, where: str) -> None:
        if isinstance(step, WhilePushingStep):
            _check_while_pushing(step, where, scenario.platform, check)
        else:
            _check_step(step, where, skus, buckets, orders)

    for index, step in enumerate(scenario.steps):
        check(step, f"steps[{index}]")


def point_seconds(at: str | float, platform: PlatformSettings) -> float | None:
    """Seconds after the items_batch call at which a moment happens, when the platform settings fix it (None: the
    application point is drawn per batch). The replay computes the same points from the batch's real instants."""
    if not isinstance(at, str):
        return float(at)
    fraction = platform.batch_apply_fraction
    if fraction is None:
        return None
    delay = platform.batch_processing_seconds
    applied = delay * fraction
    return applied / 2 if at == "before_apply" else applied + (delay - applied) / 2


def _check_while_pushing(
    step: WhilePushingStep, where: str, platform: PlatformSettings, check: Callable[[Step, str], None]
) -> None:
    """Moments in time order (as far as the settings tell), and a before_apply that can happen at all: with no
    processing delay the platform applies a batch as it accepts it, so nothing comes between the two."""
    applied_after_call = platform.batch_processing_seconds > 0 and platform.batch_apply_fraction != 0
    latest: tuple[float, str | float] | None = None  # the latest point known so far, and its moment's at
    after_apply: bool = False  # an earlier moment was after_apply (later than any before_apply, whatever the draw)
    for position, moment in enumerate(step.while_pushing):
        at_where = f"{where}.while_pushing[{position}].at"
        if moment.at == "before_apply" and not applied_after_call:
            raise ScenarioError(
                at_where,
                "nothing happens before the application when the platform applies a batch as it accepts it: "
                "set platform.batch_processing_seconds above 0 (and batch_apply_fraction above 0)",
            )
        point = point_seconds(moment.at, platform)
        earlier = latest[1] if latest is not None and point is not None and point < latest[0] else None
        if earlier is None and moment.at == "before_apply" and after_apply:
            earlier = "after_apply"
        if earlier is not None:
            raise ScenarioError(
                at_where,
                f"moments are listed in time order: {moment.at!r} comes before the earlier moment's {earlier!r} in "
                "this batch's processing",
            )
        if point is not None and (latest is None or point >= latest[0]):
            latest = (point, moment.at)
        after_apply = after_apply or moment.at == "after_apply"
    for position, moment in enumerate(step.while_pushing):
        for index, nested in enumerate(moment.steps):
            check(nested, f"{where}.while_pushing[{position}].steps[{index}]")


@dataclass
class _OrderSoFar:
    """An order as the platform holds it after the steps validated so far: its state and its open units per SKU."""

    state: OrderState
    open_units: dict[str, int]
    cancelled_whole: bool = False  # COMPLETED because every unit was cancelled (said in messages)


def _check_step(step: Step, where: str, skus: set[str], buckets: set[str], orders: dict[str, _OrderSoFar]) -> None:
    if isinstance(step, OrderStep):
        _check_order(step.order, where, skus, orders)
    elif isinstance(step, CancelStep):
        _check_cancel(step.cancel, where, orders)
    elif isinstance(step, ShopOrderStep):
        _check_shop_order(step.shop_order, where, skus)
    elif isinstance(step, SyncedStep):
        for position, order_id in enumerate(step.synced):
            if order_id not in orders:
                raise ScenarioError(f"{where}.synced[{position}]", f"unknown order {order_id!r}")
    elif isinstance(step, WarehouseStep | DiscontinueStep | CatalogEditStep):
        names, kind = (
            (step.warehouse, "warehouse")
            if isinstance(step, WarehouseStep)
            else (step.discontinue, "discontinue")
            if isinstance(step, DiscontinueStep)
            else (step.catalog_edit, "catalog_edit")
        )
        for name in names:
            if name not in skus:
                raise ScenarioError(f"{where}.{kind}.{name}", f"unknown SKU {name!r}")
    elif isinstance(step, DemandStep):
        _check_demand(step.demand, f"{where}.demand", skus)
    elif isinstance(step, RunStep) and step.bucket is not None and buckets and step.bucket not in buckets:
        raise ScenarioError(f"{where}.bucket", f"unknown bucket {step.bucket!r}; known: {sorted(buckets)}")


def _check_demand(demand: DemandSpec, where: str, skus: set[str]) -> None:
    """Known SKUs, each in one profile (two rates for one SKU would be a sum nobody wrote), spikes inside the window
    (a spike past its end would be silently cut), and a bounded number of orders to play."""
    profiled: dict[str, int] = {}
    expected = 0.0
    for number, profile in enumerate(demand.profiles):
        at = f"{where}.profiles[{number}]"
        for position, sku in enumerate(profile.skus):
            if sku not in skus:
                raise ScenarioError(f"{at}.skus[{position}]", f"unknown SKU {sku!r}")
            if sku in profiled:
                raise ScenarioError(
                    f"{at}.skus[{position}]", f"{sku} is already in profiles[{profiled[sku]}]; a SKU has one profile"
                )
            profiled[sku] = number
        for position, spike in enumerate(profile.spikes):
            if spike.at_minute >= demand.minutes:
                raise ScenarioError(
                    f"{at}.spikes[{position}].at_minute",
                    f"starts at minute {spike.at_minute:g}, after the window of {demand.minutes} minutes",
                )
            if spike.at_minute + spike.minutes > demand.minutes:
                raise ScenarioError(
                    f"{at}.spikes[{position}].minutes",
                    f"ends at minute {spike.at_minute + spike.minutes:g}, after the window of {demand.minutes} minutes",
                )
        spiked = sum(spike.minutes * (spike.factor - 1) for spike in profile.spikes)
        expected += len(profile.skus) * profile.units_per_hour * max(0.0, demand.minutes + spiked) / 60
    if expected > MAX_DEMAND_UNITS:
        raise ScenarioError(
            f"{where}.profiles", f"about {expected:.0f} units expected; a demand step plays at most {MAX_DEMAND_UNITS}"
        )


def _check_shop_order(order: ShopOrderSpec, where: str, skus: set[str]) -> None:
    for position, item in enumerate(order.items):
        if item.retailer_id not in skus:
            raise ScenarioError(f"{where}.shop_order.items[{position}]", f"unknown SKU {item.retailer_id!r}")


def _check_order(order: OrderSpec, where: str, skus: set[str], orders: dict[str, _OrderSoFar]) -> None:
    if order.items is not None:
        if order.id in orders:
            raise ScenarioError(f"{where}.order.id", f"order id {order.id!r} is already used by an earlier order")
        if not order.items:
            raise ScenarioError(f"{where}.order.items", "a new order has at least one item")
        lines: dict[str, int] = {}
        for position, item in enumerate(order.items):
            if item.retailer_id not in skus:
                raise ScenarioError(f"{where}.order.items[{position}].retailer_id", f"unknown SKU {item.retailer_id!r}")
            lines[item.retailer_id] = lines.get(item.retailer_id, 0) + item.quantity
        orders[order.id] = _OrderSoFar(order.state, lines)
        return
    known = orders.get(order.id)
    if known is None:
        raise ScenarioError(f"{where}.order.id", f"unknown order {order.id!r} (a new order needs items)")
    if order.state.rank <= known.state.rank:
        why = " (every unit was cancelled)" if known.cancelled_whole else ""
        raise ScenarioError(
            f"{where}.order.state",
            f"order {order.id} is {known.state.value}{why} by this step, and the platform moves an order's state "
            f"only forward ({', '.join(state.value for state in OrderState)}): it refuses {order.state.value}",
        )
    known.state = order.state
    if order.state is OrderState.COMPLETED:
        known.open_units = dict.fromkeys(known.open_units, 0)  # shipped: nothing is left to cancel


def _check_cancel(cancel: CancelSpec, where: str, orders: dict[str, _OrderSoFar]) -> None:
    known = orders.get(cancel.id)
    if known is None:
        raise ScenarioError(f"{where}.cancel.id", f"unknown order {cancel.id!r}")
    if known.state is OrderState.COMPLETED:
        what = "every unit was cancelled" if known.cancelled_whole else "it shipped"
        raise ScenarioError(
            f"{where}.cancel.id",
            f"order {cancel.id} is COMPLETED by this step ({what}): the platform has nothing left to cancel",
        )
    lines = known.open_units
    for position, item in enumerate(cancel.items or []):
        remaining = lines.get(item.retailer_id)
        if remaining is None:
            raise ScenarioError(
                f"{where}.cancel.items[{position}].retailer_id", f"order {cancel.id} has no {item.retailer_id}"
            )
        if item.quantity > remaining:
            raise ScenarioError(
                f"{where}.cancel.items[{position}].quantity",
                f"cancels {item.quantity} units of {item.retailer_id}; only {remaining} remain on order {cancel.id}",
            )
        lines[item.retailer_id] = remaining - item.quantity
    if cancel.items is None or not any(lines.values()):
        # The platform completes an order whose every unit is cancelled.
        known.open_units = dict.fromkeys(lines, 0)
        known.state, known.cancelled_whole = OrderState.COMPLETED, True


def load_scenario(path: Path, *, deployment_buckets: set[str] | None = None) -> Scenario:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ScenarioError("scenario", f"not valid JSON: {error.msg} at line {error.lineno}") from None
    return parse_scenario(raw, deployment_buckets=deployment_buckets)


def json_schema() -> dict[str, Any]:
    """The JSON Schema shipped as events/scenarios/scenario.schema.json."""
    schema = Scenario.model_json_schema()
    # pydantic lists the allowed bucket names as patternProperties but lets other names through; the models do not.
    for option in schema["$defs"]["ScenarioSettings"]["properties"]["buckets"]["anyOf"]:
        if "patternProperties" in option:
            option["additionalProperties"] = False
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stocksync replay scenario"
    return schema


__all__ = ["Scenario", "ScenarioError", "json_schema", "load_scenario", "parse_scenario", "point_seconds"]


if __name__ == "__main__":
    # python -m stocksync_dev.cli.scenario > events/scenarios/scenario.schema.json (the unit test compares the two)
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
