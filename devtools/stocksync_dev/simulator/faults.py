"""Faults that tests switch on at any time: throttling after N calls, and the next K calls failing transiently.

Both can be limited to one endpoint (the last path segment, e.g. ``items_batch``; the single-product update is
``catalog_item``). A throttle lasts until the simulated clock reaches its regain time, counted from the first
throttled call, and then clears itself. A throttled answer carries the usage header of the code's own limit
(``rate_limits.throttle_headers``): an 80014 reports ``catalog_batch``, an 80009 ``catalog_management``, an 80001
``pages``, whichever endpoint the switch targets; a code 4 fills ``X-App-Usage`` and announces no wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from stocksync_dev.simulator.errors import THROTTLE_MESSAGES, GraphError, throttled, transient_failure
from stocksync_dev.simulator.rate_limits import minutes_to_regain, throttle_headers


@dataclass
class ThrottlePlan:
    calls_before_throttling: int
    code: int
    regain_after: timedelta
    endpoint: str | None
    regain_at: datetime | None = None


@dataclass
class FailurePlan:
    remaining: int
    status: int
    code: int
    endpoint: str | None


class FaultKnobs:
    """The armed faults. The simulator's lock guards it."""

    def __init__(self) -> None:
        self._throttle: ThrottlePlan | None = None
        self._failure: FailurePlan | None = None

    def throttle_after(self, n_calls: int, code: int, regain_minutes: float, endpoint: str | None) -> None:
        if n_calls < 0 or regain_minutes < 0:
            raise ValueError("n_calls and regain_minutes must not be negative")
        if code not in THROTTLE_MESSAGES:
            raise ValueError(f"throttle code must be one of {sorted(THROTTLE_MESSAGES)}, got {code}")
        self._throttle = ThrottlePlan(n_calls, code, timedelta(minutes=regain_minutes), endpoint)

    def fail_next(self, k: int, status: int, code: int, endpoint: str | None) -> None:
        if k < 0:
            raise ValueError(f"k must not be negative, got {k}")
        self._failure = FailurePlan(k, status, code, endpoint) if k else None

    def reset(self) -> None:
        self._throttle = None
        self._failure = None

    def check(self, endpoint: str, now: datetime, business_id: str | None, usage_type: str) -> GraphError | None:
        """The fault this call meets, if any; counts the call against the armed plans.

        ``usage_type`` is the endpoint's own use case; a throttle reports the use case of its code instead."""
        return self._check_throttle(endpoint, now, business_id, usage_type) or self._check_failure(endpoint)

    def _check_throttle(
        self, endpoint: str, now: datetime, business_id: str | None, usage_type: str
    ) -> GraphError | None:
        plan = self._throttle
        if plan is None or plan.endpoint not in (None, endpoint):
            return None
        if plan.regain_at is None:
            if plan.calls_before_throttling > 0:
                plan.calls_before_throttling -= 1
                return None
            plan.regain_at = now + plan.regain_after
        if now >= plan.regain_at:
            self._throttle = None
            return None
        return throttled(plan.code, throttle_headers(plan.code, business_id, minutes_to_regain(plan.regain_at - now)))

    def _check_failure(self, endpoint: str) -> GraphError | None:
        plan = self._failure
        if plan is None or plan.endpoint not in (None, endpoint):
            return None
        plan.remaining -= 1
        if plan.remaining <= 0:
            self._failure = None
        return transient_failure(plan.status, plan.code)
