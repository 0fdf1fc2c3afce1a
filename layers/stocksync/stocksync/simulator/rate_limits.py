"""Rate-limit bookkeeping: the per-catalog call budgets and the usage headers Graph sends on every answer.

``X-App-Usage`` is ``{"call_count", "total_cputime", "total_time"}`` in percent; ``X-Business-Use-Case-Usage`` is
keyed by the business object (catalog or commerce account) and says, in minutes, when access comes back
(https://developers.facebook.com/docs/graph-api/overview/rate-limiting).

A catalog has two budgets, each with its own usage entry type and throttle code, so that reading the catalog back
never spends the upload budget: ``catalog_batch`` counts accepted ``items_batch`` calls (at most 100 an hour by
default, Meta's "up to 100 calls per hour",
https://developers.facebook.com/documentation/ads-commerce/commerce-platform/catalog/best-practices; code 80014),
and ``catalog_management`` counts catalog reads, the products listing and ``GET /{product_item_id}`` (code 80009,
"too many calls to this Catalog account", the code Meta's catalog references list apart from the batch one, e.g.
https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/product-catalog/check_batch_request_status).
``check_batch_request_status`` itself still reports under ``catalog_batch`` and is never throttled by a budget here.
The size of the read budget is not published in a form we could retrieve, so the simulator's default of 20,000 reads
an hour is ours, chosen so that only a test that means to meet it does. The usage type names are the simulator's
reading of Meta's business use cases; the rate-limiting page's catalog section could not be retrieved.
"""

from __future__ import annotations

import json
import math
from collections import deque
from datetime import datetime, timedelta

BUDGET_WINDOW = timedelta(hours=1)
# What normal answers report: the app is far from its limits unless a test says otherwise.
LOW_USAGE_PERCENT = 1


class CallBudget:
    """At most ``calls_per_hour`` recorded calls in any trailing simulated hour; ``name`` is the setting's name."""

    def __init__(self, calls_per_hour: int, name: str = "calls_per_hour") -> None:
        if calls_per_hour <= 0:
            raise ValueError(f"{name} must be positive, got {calls_per_hour}")
        self.calls_per_hour = calls_per_hour
        self._accepted_at: deque[datetime] = deque()

    def time_to_regain(self, now: datetime) -> timedelta | None:
        """How long until one more call is allowed; None when it is allowed now."""
        self._forget_before(now)
        if len(self._accepted_at) < self.calls_per_hour:
            return None
        return self._accepted_at[0] + BUDGET_WINDOW - now

    def record(self, now: datetime) -> None:
        self._accepted_at.append(now)

    def usage_percent(self, now: datetime) -> int:
        self._forget_before(now)
        return min(100, math.ceil(100 * len(self._accepted_at) / self.calls_per_hour))

    def _forget_before(self, now: datetime) -> None:
        while self._accepted_at and self._accepted_at[0] + BUDGET_WINDOW <= now:
            self._accepted_at.popleft()


def minutes_to_regain(wait: timedelta) -> int:
    """Graph reports the wait in whole minutes, rounded up so a client that waits that long is let back in."""
    return max(0, math.ceil(wait.total_seconds() / 60))


def usage_headers(
    business_id: str | None,
    usage_type: str,
    percent: int,
    *,
    regain_minutes: int = 0,
    app_percent: int = LOW_USAGE_PERCENT,
) -> dict[str, str]:
    """The two usage headers; the business-use-case one only when the call touched a business object."""
    headers = {
        "X-App-Usage": json.dumps({"call_count": app_percent, "total_cputime": app_percent, "total_time": app_percent})
    }
    if business_id is not None:
        usage = {
            "type": usage_type,
            "call_count": percent,
            "total_cputime": percent,
            "total_time": percent,
            "estimated_time_to_regain_access": regain_minutes,
        }
        headers["X-Business-Use-Case-Usage"] = json.dumps({business_id: [usage]})
    return headers
