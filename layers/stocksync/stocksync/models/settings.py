"""Deployment settings: environment variables (set by template.yaml) validated once, at cold start.

A missing or invalid variable stops the function before it touches any record, with a message that names the
variable, so a bad ``sam deploy --parameter-overrides`` shows up as one clear error instead of wrong stock.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from stocksync.errors import ConfigurationError
from stocksync.models.base import Model

# EventBridge schedule expressions: rate(1 minute) | rate(N minutes|hours|days) | cron(six fields).
_RATE = re.compile(r"^rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9]\d+) (?:minutes|hours|days))\)$")
_CRON = re.compile(r"^cron\((?:\S+ ){5}\S+\)$")
_BUCKET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# The Graph API over plain http: only to this machine (the local Commerce Platform simulator), never past it.
_LOOPBACK_HTTP = re.compile(r"^http://(?:127\.0\.0\.1|localhost)(?::[0-9]{1,5})?(?:/\S*)?$")


class DeductionMode(StrEnum):
    """How pending orders are subtracted (docs/design.md, "The number the product publishes")."""

    # A = alloc(I) - P - C: we subtract every order the warehouse has not yet taken. Can only under-sell.
    MERCHANT = "merchant"
    # A = alloc(I) - acknowledged-but-not-in-I: the platform subtracts unconfirmed orders itself.
    PLATFORM = "platform"


class CatalogField(StrEnum):
    """The catalog field that carries the published quantity."""

    QUANTITY_TO_SELL_ON_FACEBOOK = "quantity_to_sell_on_facebook"
    INVENTORY = "inventory"  # legacy name, still accepted by the platform "near term"


def is_schedule_expression(expression: str) -> bool:
    return bool(_RATE.match(expression) or _CRON.match(expression))


class BucketSettings(Model):
    """One velocity bucket: how often its sweep runs, its pessimistic threshold, its default allocation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep_rate: str = "rate(15 minutes)"
    threshold: Annotated[int, Field(ge=0, strict=True)] = 0
    allocation_percent: Annotated[int | None, Field(ge=0, le=100, strict=True)] = None
    allocation_fixed: Annotated[int | None, Field(ge=0, strict=True)] = None
    # A SKU without an explicit bucket lands in the fastest bucket whose floor its velocity reaches.
    # Strict and finite: JSON `true` would otherwise read as 1.0 and `Infinity` as a floor no SKU ever reaches.
    min_units_per_hour: Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)] = 0.0

    @field_validator("sweep_rate")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not is_schedule_expression(value):
            raise ValueError(f"malformed schedule expression {value!r}; expected rate(N minutes) or cron(...)")
        return value

    @model_validator(mode="after")
    def _one_allocation(self) -> Self:
        if self.allocation_percent is not None and self.allocation_fixed is not None:
            raise ValueError("set allocation_percent or allocation_fixed, not both")
        return self


def _no_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal names silently; in a hand-edited bucket map that hides a typo."""
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate name(s) {duplicates} in one JSON object")
    return dict(pairs)


def _env(alias: str, **kwargs: Any) -> Any:
    return Field(alias=alias, **kwargs)


class Settings(Model):
    """Every setting the functions read. One model, so every function validates the same way."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # Graph object ids are numeric; template.yaml's parameters enforce the same pattern at deploy time.
    catalog_id: Annotated[str, _env("STOCKSYNC_CATALOG_ID", pattern=r"^\d+$")]
    # The commerce merchant settings id (commerce orders are listed under it): poll_orders' alone, which exists only
    # with the meta_commerce order source (template.yaml, OrderSources); empty elsewhere.
    cms_id: Annotated[str, _env("STOCKSYNC_CMS_ID", pattern=r"^(\d+)?$")] = ""
    buckets: Annotated[dict[str, BucketSettings], _env("STOCKSYNC_BUCKETS")]
    default_bucket: Annotated[str, _env("STOCKSYNC_DEFAULT_BUCKET")]
    deduction_mode: Annotated[DeductionMode, _env("STOCKSYNC_DEDUCTION_MODE")] = DeductionMode.MERCHANT
    catalog_field: Annotated[CatalogField, _env("STOCKSYNC_CATALOG_FIELD")] = CatalogField.QUANTITY_TO_SELL_ON_FACEBOOK

    # Each listing re-reads this much before the watermark: the platform's clocks and eventual consistency can
    # surface an order slightly older than ones already seen. The ledger makes the re-read harmless.
    poll_overlap_seconds: Annotated[int, _env("STOCKSYNC_POLL_OVERLAP_SECONDS", ge=0, le=86400)] = 900

    # https, or http to 127.0.0.1/localhost only (the local simulator): every call carries the access token and its
    # appsecret_proof, which plain http would hand to anyone on the path. A bare host name would fail at the first
    # call. template.yaml's GraphBaseUrl pattern refuses the same.
    graph_base_url: Annotated[str, _env("STOCKSYNC_GRAPH_BASE_URL", pattern=r"^https?://[^\s/]+\S*$")] = (
        "https://graph.facebook.com"
    )
    graph_api_version: Annotated[str, _env("STOCKSYNC_GRAPH_API_VERSION", pattern=r"^v\d+\.\d+$")] = "v25.0"
    # Where the Graph API credentials live: "secretsmanager:<name-or-arn>" or "ssm:<parameter name>".
    # The value is JSON: {"access_token": "...", "app_secret": "..."}.
    graph_credentials: Annotated[str, _env("STOCKSYNC_GRAPH_CREDENTIALS", pattern=r"^(secretsmanager|ssm):.+$")]

    sku_table: Annotated[str, _env("SKU_TABLE", min_length=1)]
    orders_table: Annotated[str, _env("ORDERS_TABLE", min_length=1)]
    batches_table: Annotated[str, _env("BATCHES_TABLE", min_length=1)]
    control_table: Annotated[str, _env("CONTROL_TABLE", min_length=1)]
    idempotency_table: Annotated[str, _env("IDEMPOTENCY_TABLE", min_length=1)]
    recompute_queue_url: Annotated[str, _env("RECOMPUTE_QUEUE_URL", min_length=1)]
    push_queue_url: Annotated[str, _env("PUSH_QUEUE_URL", min_length=1)]
    verify_queue_url: Annotated[str, _env("VERIFY_QUEUE_URL", min_length=1)]
    dead_letter_queue_url: Annotated[str, _env("DEAD_LETTER_QUEUE_URL", min_length=1)]
    event_bus_name: Annotated[str, _env("EVENT_BUS_NAME", min_length=1)]

    # Catalog push and verification (docs/push.md). Rows per items_batch call while the open call slots carry every
    # row at it (Meta recommends 3,000); calls grow to the API's 5,000 when the slot is the limit.
    push_requests_per_call: Annotated[int, _env("STOCKSYNC_PUSH_REQUESTS_PER_CALL", ge=1, le=5000)] = 3000
    # items_batch calls per catalog per trailing hour, shared by all push invocations (Meta allows about 100).
    batch_calls_per_hour: Annotated[int, _env("STOCKSYNC_BATCH_CALLS_PER_HOUR", ge=1, le=1000)] = 90
    # Calls that may go together after a quiet spell; the calls are otherwise paced into evenly spaced slots.
    push_burst_calls: Annotated[int, _env("STOCKSYNC_PUSH_BURST_CALLS", ge=1, le=10)] = 3
    # Urgent rows a push run may send through the single-product update when the next slot is further away than
    # single_update_after_seconds (0: off).
    single_update_max_skus: Annotated[int, _env("STOCKSYNC_SINGLE_UPDATE_MAX_SKUS", ge=0, le=12)] = 0
    single_update_after_seconds: Annotated[int, _env("STOCKSYNC_SINGLE_UPDATE_AFTER_SECONDS", ge=0, le=900)] = 20
    # First check of a batch's status this long after the call; each further check waits twice as long. Only until
    # batches of the catalog were observed: then the delays follow their processing times (logic/verify_timing.py).
    verify_delay_seconds: Annotated[int, _env("STOCKSYNC_VERIFY_DELAY_SECONDS", ge=0, le=900)] = 60
    verify_max_checks: Annotated[int, _env("STOCKSYNC_VERIFY_MAX_CHECKS", ge=1, le=50)] = 10
    # Hybrid catalog (docs/feeds.md): buckets whose stock goes out in the scheduled update feed, not the API.
    feed_buckets: Annotated[frozenset[str], _env("STOCKSYNC_FEED_BUCKETS")] = frozenset()
    feed_bucket_name: Annotated[str, _env("FEED_BUCKET")] = ""
    # Web-shop connectors (docs/connectors.md, "SKU mapping"): the key, in the feed bucket, of the merchant's
    # shop_sku,retailer_id CSV; empty: a shop's SKU is the catalog's retailer_id.
    sku_mapping_key: Annotated[str, _env("STOCKSYNC_SKU_MAPPING_KEY", pattern=r"^([A-Za-z0-9!_.*'()/-]{1,1024})?$")] = (
        ""
    )

    # Stock recompute (docs/recompute.md). A pushed value not confirmed within this time is pushed again.
    confirmation_timeout_seconds: Annotated[int, _env("STOCKSYNC_CONFIRMATION_TIMEOUT_SECONDS", ge=60, le=86400)] = 900
    # Cancel the newest unfillable Commerce orders of an over-sold SKU (reason OUT_OF_STOCK); off: only alert.
    auto_cancel_oversold: Annotated[bool, _env("STOCKSYNC_AUTO_CANCEL_OVERSOLD")] = False
    # Velocity buckets: the trailing window sales are measured over (the ledger keeps 8 days of hourly sales),
    # and the hysteresis margin h (move up at floor x (1 + h), down below floor x (1 - h)).
    velocity_window_hours: Annotated[int, _env("STOCKSYNC_VELOCITY_WINDOW_HOURS", ge=1, le=168)] = 24
    bucket_hysteresis: Annotated[float, _env("STOCKSYNC_BUCKET_HYSTERESIS", ge=0, lt=1, allow_inf_nan=False)] = 0.2
    # Where a bucket sweep short of time hands the rest of its bucket to itself (template.yaml sets it; only the
    # sweep function needs it and checks it at cold start).
    sweep_queue_url: Annotated[str, _env("SWEEP_QUEUE_URL")] = ""

    # Reading the catalog back (docs/catalog.md): reads of the products edge per catalog per trailing hour, shared
    # by the read-back of ambiguous SKUs and the catalog audit, apart from the items_batch budget. 0 turns reads
    # off: an ambiguous SKU is then pushed again with its absolute value, and the audit does nothing.
    catalog_reads_per_hour: Annotated[int, _env("STOCKSYNC_CATALOG_READS_PER_HOUR", ge=0, le=3600)] = 360
    # Where recompute sends the SKUs to read back (template.yaml sets it).
    catalog_read_queue_url: Annotated[str, _env("CATALOG_READ_QUEUE_URL")] = ""
    # check_batch_request_status calls per catalog per trailing hour (verify_batch), their own budget apart from the
    # catalog reads; both count against Meta's catalog-management use case (throttled with 80009), so keep the sum
    # of the two within what Meta allows the catalog.
    status_checks_per_hour: Annotated[int, _env("STOCKSYNC_STATUS_CHECKS_PER_HOUR", ge=1, le=100_000)] = 720

    # Signed webhooks (docs/connectors.md, "WooCommerce and signed webhooks"): the queue the endpoint hands verified
    # deliveries to, and the Secrets Manager secret holding the shared secrets by platform. Only the two webhook
    # functions get them (template.yaml, when WebhookEndpoint is not "none") and check them at cold start.
    webhook_queue_url: Annotated[str, _env("WEBHOOK_QUEUE_URL")] = ""
    webhook_secret_name: Annotated[str, _env("WEBHOOK_SECRET_NAME", pattern=r"^([A-Za-z0-9/_+=.@-]{1,512})?$")] = ""

    @property
    def catalog_reads_enabled(self) -> bool:
        return self.catalog_reads_per_hour > 0 and bool(self.catalog_read_queue_url)

    @field_validator("buckets", mode="before")
    @classmethod
    def _parse_buckets(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value, object_pairs_hook=_no_duplicate_names)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict) or not value:
            raise ValueError("must be a JSON object with at least one bucket")
        bad = [name for name in value if not isinstance(name, str) or not _BUCKET_NAME.match(name)]
        if bad:
            raise ValueError(f"invalid bucket name(s) {bad}; use lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("graph_base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        if value.startswith("http://") and not _LOOPBACK_HTTP.match(value):
            raise ValueError("http:// only to 127.0.0.1 or localhost (the local simulator); use https://")
        return value

    @field_validator("default_bucket")
    @classmethod
    def _known_default_bucket(cls, value: str, info: ValidationInfo) -> str:
        # A field validator (not a model validator), so the error is located at STOCKSYNC_DEFAULT_BUCKET.
        # buckets is validated first (declared first); when it failed, its own error is reported instead.
        buckets = info.data.get("buckets")
        if buckets is not None and value not in buckets:
            raise ValueError(f"unknown bucket {value!r}; known: {sorted(buckets)}")
        return value

    @field_validator("feed_buckets", mode="before")
    @classmethod
    def _parse_feed_buckets(cls, value: Any) -> Any:
        # "none" (the template's default: an empty environment value cannot be told from a missing one) or names.
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip() not in ("", "none"))
        return value

    @field_validator("feed_buckets")
    @classmethod
    def _known_feed_buckets(cls, value: frozenset[str], info: ValidationInfo) -> frozenset[str]:
        buckets = info.data.get("buckets")
        unknown = sorted(value - set(buckets)) if buckets is not None else []
        if unknown:
            raise ValueError(f"unknown bucket(s) {unknown}; known: {sorted(buckets or ())}")
        return value

    def bucket(self, name: str) -> BucketSettings:
        """The named bucket's settings; an unknown name is an input error, not a crash."""
        try:
            return self.buckets[name]
        except KeyError:
            raise ConfigurationError("bucket", f"unknown bucket {name!r}; known: {sorted(self.buckets)}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Validate the environment; raise ConfigurationError naming the first bad variable."""
        source = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            location, problem = _problems(exc)[0]
            raise ConfigurationError(location, problem) from None

    @classmethod
    def problems(cls, environ: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every missing or invalid variable of ``environ`` with its problem (empty when it is complete): a person
        setting up a shell (``stocksync reconcile`` ...) fixes them all at once instead of one per try."""
        try:
            cls.model_validate(dict(environ))
        except ValidationError as exc:
            return _problems(exc)
        return []


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(part) for part in issue["loc"]) or "settings", issue["msg"]) for issue in error.errors()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once (cold start). Tests call ``get_settings.cache_clear()``."""
    return Settings.from_env()
