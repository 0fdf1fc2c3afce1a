"""Settings.from_env: a bad environment stops a function at cold start with an error that names the variable."""

from __future__ import annotations

import json

import pytest

from stocksync.errors import ConfigurationError
from stocksync.models.settings import CatalogField, DeductionMode, Settings, get_settings

BUCKETS = {
    "fast": {"sweep_rate": "rate(5 minutes)", "threshold": 3, "min_units_per_hour": 2},
    "medium": {"sweep_rate": "rate(30 minutes)", "threshold": 1, "min_units_per_hour": 0.2},
    "slow": {"sweep_rate": "rate(6 hours)", "threshold": 0, "min_units_per_hour": 0},
}
# What template.yaml's Globals give every function (names only; values as a deploy would resolve them).
ENVIRONMENT = {
    "STOCKSYNC_CATALOG_ID": "1001",
    "STOCKSYNC_CMS_ID": "2001",
    "STOCKSYNC_BUCKETS": json.dumps(BUCKETS),
    "STOCKSYNC_DEFAULT_BUCKET": "medium",
    "STOCKSYNC_DEDUCTION_MODE": "merchant",
    "STOCKSYNC_CATALOG_FIELD": "quantity_to_sell_on_facebook",
    "STOCKSYNC_GRAPH_BASE_URL": "https://graph.facebook.com",
    "STOCKSYNC_GRAPH_API_VERSION": "v25.0",
    "STOCKSYNC_GRAPH_CREDENTIALS": "secretsmanager:stocksync/graph-api",
    "SKU_TABLE": "stocksync-SkuTable-1",
    "ORDERS_TABLE": "stocksync-OrdersTable-1",
    "BATCHES_TABLE": "stocksync-BatchesTable-1",
    "CONTROL_TABLE": "stocksync-ControlTable-1",
    "IDEMPOTENCY_TABLE": "stocksync-IdempotencyTable-1",
    "RECOMPUTE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stocksync-RecomputeQueue-1",
    "PUSH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stocksync-PushQueue-1",
    "VERIFY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stocksync-VerifyQueue-1",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stocksync-DeadLetterQueue-1",
    "EVENT_BUS_NAME": "stocksync-bus",
    "POWERTOOLS_SERVICE_NAME": "stocksync",
}
REQUIRED = [
    "STOCKSYNC_CATALOG_ID",
    "STOCKSYNC_BUCKETS",
    "STOCKSYNC_DEFAULT_BUCKET",
    "STOCKSYNC_GRAPH_CREDENTIALS",
    "SKU_TABLE",
    "ORDERS_TABLE",
    "BATCHES_TABLE",
    "CONTROL_TABLE",
    "IDEMPOTENCY_TABLE",
    "RECOMPUTE_QUEUE_URL",
    "PUSH_QUEUE_URL",
    "VERIFY_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "EVENT_BUS_NAME",
]


def environment(**changes: str | None) -> dict[str, str]:
    """ENVIRONMENT with some variables replaced (a value) or removed (None)."""
    merged = {**ENVIRONMENT, **changes}
    return {name: value for name, value in merged.items() if value is not None}


def buckets(**bucket_changes: dict[str, object]) -> str:
    """STOCKSYNC_BUCKETS with the named buckets' fields replaced."""
    return json.dumps({name: {**spec, **bucket_changes.get(name, {})} for name, spec in BUCKETS.items()})


def test_the_template_environment_parses_into_typed_settings() -> None:
    settings = Settings.from_env(ENVIRONMENT)

    assert settings.catalog_id == "1001" and settings.cms_id == "2001"
    assert settings.deduction_mode is DeductionMode.MERCHANT
    assert settings.catalog_field is CatalogField.QUANTITY_TO_SELL_ON_FACEBOOK
    assert sorted(settings.buckets) == ["fast", "medium", "slow"]
    assert settings.bucket("fast").threshold == 3
    assert settings.bucket("medium").min_units_per_hour == 0.2
    assert settings.bucket(settings.default_bucket).sweep_rate == "rate(30 minutes)"
    assert settings.sku_table == "stocksync-SkuTable-1"


def test_optional_variables_fall_back_to_the_documented_defaults() -> None:
    settings = Settings.from_env(
        environment(
            STOCKSYNC_DEDUCTION_MODE=None,
            STOCKSYNC_CATALOG_FIELD=None,
            STOCKSYNC_GRAPH_BASE_URL=None,
            STOCKSYNC_GRAPH_API_VERSION=None,
        )
    )
    assert settings.deduction_mode is DeductionMode.MERCHANT
    assert settings.catalog_field is CatalogField.QUANTITY_TO_SELL_ON_FACEBOOK
    assert settings.graph_base_url == "https://graph.facebook.com"
    assert settings.graph_api_version == "v25.0"


def test_the_merchant_settings_id_is_only_for_the_poller_and_numeric_when_set() -> None:
    assert Settings.from_env(environment(STOCKSYNC_CMS_ID=None)).cms_id == ""
    assert Settings.from_env(environment(STOCKSYNC_CMS_ID="")).cms_id == ""
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environment(STOCKSYNC_CMS_ID="cms-1"))
    assert raised.value.setting == "STOCKSYNC_CMS_ID"


@pytest.mark.parametrize("name", REQUIRED)
def test_every_missing_required_variable_is_named(name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environment(**{name: None}))
    assert raised.value.setting == name
    assert name in str(raised.value) and "required" in raised.value.problem.lower()


@pytest.mark.parametrize(
    ("changes", "setting", "problem"),
    [
        pytest.param({"STOCKSYNC_DEFAULT_BUCKET": "turbo"}, "STOCKSYNC_DEFAULT_BUCKET", "unknown bucket 'turbo'",
                     id="unknown-default-bucket"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"threshold": -1})}, "STOCKSYNC_BUCKETS.fast.threshold",
                     "greater than or equal to 0", id="negative-threshold"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(slow={"threshold": 1.5})}, "STOCKSYNC_BUCKETS.slow.threshold",
                     "integer", id="fractional-threshold"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(slow={"threshold": True})}, "STOCKSYNC_BUCKETS.slow.threshold",
                     "integer", id="boolean-threshold"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"sweep_rate": "rate(5 minute)"})},
                     "STOCKSYNC_BUCKETS.fast.sweep_rate", "malformed schedule expression", id="rate-unit-singular"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"sweep_rate": "rate(1 minutes)"})},
                     "STOCKSYNC_BUCKETS.fast.sweep_rate", "malformed schedule expression", id="rate-one-plural"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"sweep_rate": "rate(0 minutes)"})},
                     "STOCKSYNC_BUCKETS.fast.sweep_rate", "malformed schedule expression", id="rate-zero"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(medium={"sweep_rate": "every 30 minutes"})},
                     "STOCKSYNC_BUCKETS.medium.sweep_rate", "malformed schedule expression", id="not-a-schedule"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(slow={"sweep_rate": "cron(0 12 * * ?)"})},
                     "STOCKSYNC_BUCKETS.slow.sweep_rate", "malformed schedule expression", id="cron-five-fields"),
        pytest.param({"STOCKSYNC_BUCKETS": '{"fast": {"threshold": 3'}, "STOCKSYNC_BUCKETS", "not valid JSON",
                     id="truncated-json"),
        pytest.param({"STOCKSYNC_BUCKETS": "fast,medium,slow"}, "STOCKSYNC_BUCKETS", "not valid JSON",
                     id="not-json"),
        pytest.param({"STOCKSYNC_BUCKETS": '["fast"]'}, "STOCKSYNC_BUCKETS", "JSON object", id="json-list"),
        pytest.param({"STOCKSYNC_BUCKETS": "{}"}, "STOCKSYNC_BUCKETS", "at least one bucket", id="no-buckets"),
        pytest.param({"STOCKSYNC_BUCKETS": '{"medium": {}, "medium": {"threshold": 2}}'}, "STOCKSYNC_BUCKETS",
                     "duplicate name(s) ['medium']", id="duplicate-bucket"),
        pytest.param({"STOCKSYNC_BUCKETS": '{"Fast lane": {}}'}, "STOCKSYNC_BUCKETS", "invalid bucket name",
                     id="bad-bucket-name"),
        pytest.param({"STOCKSYNC_BUCKETS": '{"medium": 3}'}, "STOCKSYNC_BUCKETS.medium", "dictionary",
                     id="bucket-not-object"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"treshold": 3})}, "STOCKSYNC_BUCKETS.fast.treshold",
                     "Extra inputs", id="misspelled-bucket-field"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"allocation_percent": 101})},
                     "STOCKSYNC_BUCKETS.fast.allocation_percent", "less than or equal to 100",
                     id="allocation-over-100-percent"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"allocation_fixed": -1})},
                     "STOCKSYNC_BUCKETS.fast.allocation_fixed", "greater than or equal to 0",
                     id="negative-fixed-allocation"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(medium={"allocation_percent": 50, "allocation_fixed": 10})},
                     "STOCKSYNC_BUCKETS.medium", "not both", id="both-allocations"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"min_units_per_hour": -0.5})},
                     "STOCKSYNC_BUCKETS.fast.min_units_per_hour", "greater than or equal to 0",
                     id="negative-velocity-floor"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"min_units_per_hour": True})},
                     "STOCKSYNC_BUCKETS.fast.min_units_per_hour", "valid number", id="boolean-velocity-floor"),
        pytest.param({"STOCKSYNC_BUCKETS": buckets(fast={"min_units_per_hour": float("inf")})},
                     "STOCKSYNC_BUCKETS.fast.min_units_per_hour", "finite", id="infinite-velocity-floor"),
        pytest.param({"STOCKSYNC_CATALOG_ID": ""}, "STOCKSYNC_CATALOG_ID", "pattern", id="empty-catalog-id"),
        pytest.param({"STOCKSYNC_CATALOG_ID": "my-shop"}, "STOCKSYNC_CATALOG_ID", "pattern",
                     id="non-numeric-catalog-id"),
        pytest.param({"STOCKSYNC_CMS_ID": "cms 1"}, "STOCKSYNC_CMS_ID", "pattern", id="non-numeric-cms-id"),
        pytest.param({"STOCKSYNC_DEDUCTION_MODE": "both"}, "STOCKSYNC_DEDUCTION_MODE", "'merchant' or 'platform'",
                     id="unknown-deduction-mode"),
        pytest.param({"STOCKSYNC_CATALOG_FIELD": "quantity"}, "STOCKSYNC_CATALOG_FIELD", "inventory",
                     id="unknown-catalog-field"),
        pytest.param({"STOCKSYNC_GRAPH_API_VERSION": "25.0"}, "STOCKSYNC_GRAPH_API_VERSION", "pattern",
                     id="api-version-without-v"),
        pytest.param({"STOCKSYNC_GRAPH_BASE_URL": "graph.facebook.com"}, "STOCKSYNC_GRAPH_BASE_URL", "pattern",
                     id="base-url-without-scheme"),
        pytest.param({"STOCKSYNC_GRAPH_BASE_URL": "http://graph.facebook.com"}, "STOCKSYNC_GRAPH_BASE_URL",
                     "http:// only to 127.0.0.1 or localhost", id="base-url-plain-http-to-a-public-host"),
        pytest.param({"STOCKSYNC_GRAPH_BASE_URL": "http://127.0.0.1.example.com"}, "STOCKSYNC_GRAPH_BASE_URL",
                     "http:// only to 127.0.0.1 or localhost", id="base-url-plain-http-to-a-lookalike-host"),
        pytest.param({"STOCKSYNC_GRAPH_BASE_URL": "http://localhost@203.0.113.7"}, "STOCKSYNC_GRAPH_BASE_URL",
                     "http:// only to 127.0.0.1 or localhost", id="base-url-plain-http-with-loopback-userinfo"),
        pytest.param({"STOCKSYNC_GRAPH_CREDENTIALS": "stocksync/graph-api"}, "STOCKSYNC_GRAPH_CREDENTIALS",
                     "pattern", id="credentials-without-store"),
        pytest.param({"STOCKSYNC_GRAPH_CREDENTIALS": "vault:stocksync"}, "STOCKSYNC_GRAPH_CREDENTIALS", "pattern",
                     id="credentials-unknown-store"),
        pytest.param({"SKU_TABLE": ""}, "SKU_TABLE", "at least 1 character", id="empty-table-name"),
    ],
)  # fmt: skip
def test_an_invalid_variable_is_named_with_the_reason(changes: dict[str, str], setting: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environment(**changes))
    assert raised.value.setting == setting
    assert problem in raised.value.problem
    assert str(raised.value).startswith(f"setting {setting}: ")


@pytest.mark.parametrize(
    "url",
    ["https://graph.facebook.com", "https://graph.example.com:8443/proxy", "http://127.0.0.1:8321",
     "http://localhost:8321", "http://127.0.0.1"],
)  # fmt: skip
def test_the_graph_api_is_reached_over_https_or_over_http_on_this_machine_only(url: str) -> None:
    assert Settings.from_env(environment(STOCKSYNC_GRAPH_BASE_URL=url)).graph_base_url == url


@pytest.mark.parametrize(
    "expression", ["rate(1 minute)", "rate(2 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(7 days)",
                   "cron(0/15 * * * ? *)", "cron(0 3 ? * MON-FRI *)"],
)  # fmt: skip
def test_every_kind_of_schedule_expression_is_accepted(expression: str) -> None:
    settings = Settings.from_env(environment(STOCKSYNC_BUCKETS=buckets(slow={"sweep_rate": expression})))
    assert settings.bucket("slow").sweep_rate == expression


def test_an_unknown_bucket_asked_for_later_is_a_configuration_error_naming_it() -> None:
    settings = Settings.from_env(ENVIRONMENT)
    with pytest.raises(ConfigurationError) as raised:
        settings.bucket("turbo")
    assert raised.value.setting == "bucket" and "'turbo'" in raised.value.problem


def test_get_settings_reads_the_process_environment_once_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        first = get_settings()
        monkeypatch.setenv("STOCKSYNC_CATALOG_ID", "9009")
        assert get_settings() is first and first.catalog_id == "1001"  # read once, at cold start
        get_settings.cache_clear()
        assert get_settings().catalog_id == "9009"
    finally:
        get_settings.cache_clear()
