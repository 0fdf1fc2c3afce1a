"""The simulator's call budgets, throttle and failure knobs, and credential checks, without HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from stocksync_dev.simulator.auth import check_credentials
from stocksync_dev.simulator.faults import FaultKnobs
from stocksync_dev.simulator.rate_limits import CallBudget, minutes_to_regain

NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)
TOKEN = "sim-token"
SECRET = "sim-app-secret"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()


def test_the_budget_allows_n_calls_per_trailing_hour_and_says_when_the_oldest_leaves() -> None:
    budget = CallBudget(calls_per_hour=3)
    for minute in (0, 10, 20):
        assert budget.time_to_regain(NOW + timedelta(minutes=minute)) is None
        budget.record(NOW + timedelta(minutes=minute))

    assert budget.usage_percent(NOW + timedelta(minutes=21)) == 100
    assert budget.time_to_regain(NOW + timedelta(minutes=21)) == timedelta(minutes=39)
    assert budget.time_to_regain(NOW + timedelta(minutes=60)) is None
    assert budget.usage_percent(NOW + timedelta(minutes=60)) == 67


def test_regain_minutes_round_up() -> None:
    assert minutes_to_regain(timedelta(seconds=61)) == 2
    assert minutes_to_regain(timedelta(minutes=39)) == 39
    assert minutes_to_regain(timedelta(0)) == 0


def test_a_throttle_starts_after_n_matching_calls_and_clears_at_the_regain_time() -> None:
    faults = FaultKnobs()
    faults.throttle_after(2, code=80014, regain_minutes=5, endpoint="items_batch")

    assert faults.check("items_batch", NOW, "1001", "catalog_batch") is None
    assert faults.check("commerce_orders", NOW, "2001", "pages") is None  # other endpoints do not count
    assert faults.check("items_batch", NOW, "1001", "catalog_batch") is None
    error = faults.check("items_batch", NOW + timedelta(seconds=30), "1001", "catalog_batch")

    assert error is not None
    assert (error.status, error.code, error.is_transient) == (400, 80014, True)
    usage = json.loads(error.headers["X-Business-Use-Case-Usage"])["1001"][0]
    assert usage["type"] == "catalog_batch"
    assert usage["call_count"] == 100
    assert usage["estimated_time_to_regain_access"] == 5
    assert "X-App-Usage" not in error.headers  # a BUC throttle leaves the app's budget alone
    later = faults.check("items_batch", NOW + timedelta(minutes=3), "1001", "catalog_batch")
    assert later is not None
    assert json.loads(later.headers["X-Business-Use-Case-Usage"])["1001"][0]["estimated_time_to_regain_access"] == 3
    assert faults.check("items_batch", NOW + timedelta(minutes=5, seconds=30), "1001", "catalog_batch") is None
    assert faults.check("items_batch", NOW + timedelta(minutes=6), "1001", "catalog_batch") is None


def test_unknown_throttle_codes_are_refused() -> None:
    with pytest.raises(ValueError):
        FaultKnobs().throttle_after(0, code=999, regain_minutes=1, endpoint=None)


def test_fail_next_fails_exactly_k_calls_then_stops() -> None:
    faults = FaultKnobs()
    faults.fail_next(2, status=503, code=1, endpoint=None)

    first = faults.check("products", NOW, None, "")
    second = faults.check("items_batch", NOW, None, "")

    assert first is not None
    assert second is not None
    assert (first.status, first.code, first.is_transient) == (503, 1, True)
    assert faults.check("items_batch", NOW, None, "") is None


def test_reset_disarms_everything() -> None:
    faults = FaultKnobs()
    faults.fail_next(5, status=500, code=2, endpoint=None)
    faults.throttle_after(0, code=4, regain_minutes=10, endpoint=None)

    faults.reset()

    assert faults.check("products", NOW, None, "") is None


@pytest.mark.parametrize(
    ("params", "authorization", "expected_code"),
    [
        ({"access_token": TOKEN, "appsecret_proof": PROOF}, None, None),
        ({"appsecret_proof": PROOF}, f"Bearer {TOKEN}", None),
        ({"appsecret_proof": PROOF}, f"OAuth {TOKEN}", None),
        ({"appsecret_proof": PROOF}, None, 190),
        ({"access_token": "other", "appsecret_proof": PROOF}, None, 190),
        ({"access_token": TOKEN}, None, 100),
        ({"access_token": TOKEN, "appsecret_proof": PROOF.upper()}, None, 100),
        ({"access_token": TOKEN, "appsecret_proof": "0" * 64}, None, 100),
    ],
)
def test_credentials(params: dict[str, str], authorization: str | None, expected_code: int | None) -> None:
    error = check_credentials(
        params, authorization, access_token=TOKEN, app_secret=SECRET, require_appsecret_proof=True
    )

    assert (error.code if error else None) == expected_code


def test_the_proof_is_not_checked_when_not_required() -> None:
    assert (
        check_credentials(
            {"access_token": TOKEN}, None, access_token=TOKEN, app_secret=SECRET, require_appsecret_proof=False
        )
        is None
    )
