"""Rate-limit bookkeeping: which limit each call meets, its throttle code, and the usage header that reports it.

Source: https://developers.facebook.com/docs/graph-api/overview/rate-limiting. Graph has platform limits (the app's,
reported in ``X-App-Usage`` as ``{"call_count", "total_cputime", "total_time"}`` in percent, throttled with code 4;
a user's, code 17; a Page's, code 32) and Business Use Case (BUC) limits, counted per business object and reported in
``X-Business-Use-Case-Usage``: ``{business_id: [{"type", "call_count", "total_cputime", "total_time",
"estimated_time_to_regain_access"}]}``, the wait in minutes. "If both Platform and Business Use Case rate limits can
be applied to a request, BUC rate limits will be applied"; Pages API calls made with a Page or system-user token (the
product's kind of token) are under BUC limits. The BUC error codes the page lists and the product can meet: 80001
(Pages), 80004 (Ads Management, which no call of the product meets; the switch accepts it for older scenarios),
80009 (Catalog Management) and 80014 (Catalog Batch).

The limits the simulator models (``LIMITS``), with the endpoints that count against each:

* ``catalog_batch`` (80014): ``items_batch``. Meta's catalog best practices say "up to 100 calls per hour"
  (https://developers.facebook.com/documentation/ads-commerce/commerce-platform/catalog/best-practices); the budget
  is ``batch_calls_per_hour``, 100 by default.
* ``catalog_management`` (80009, "too many calls to this Catalog account"): the catalog reads (the products
  listing, ``GET /{product_item_id}``, ``GET /{catalog_id}``) and ``check_batch_request_status``, for which Meta's
  reference lists 80009
  (https://developers.facebook.com/documentation/ads-commerce/marketing-api/reference/product-catalog/check_batch_request_status).
  That the reads belong to this use case is our reading: the rate-limiting page names the use case, not its
  endpoints. Its size is not published in a form we could retrieve; the default of 20,000 calls an hour is ours,
  chosen so that only a test that means to meet it does. The single-product writes (``POST /{product_item_id}``
  and the real-time ``catalog:{id}:{retailer_id}`` update) spend no budget: no source we could retrieve says which
  limit they count against.
* ``pages`` (80001): the Commerce Order Management endpoints, called with the Page's token. Our reading: no page
  says which use case the order API counts against; it is a Pages API called with a Page token, so Pages BUC. It is
  met only through the throttle switch (no counted budget), keyed by the commerce account, the order API's node.
* ``app`` (4): every call. ``X-App-Usage`` carries no time to regain access, so a client can only back off; the
  answer's ``X-Business-Use-Case-Usage`` stays as the endpoint's use case reports it (not spent).

Codes 17 (user), 32 (Page, platform limit) and 613 (a custom limit) come with no usage header of their own: the page
documents none for them (for 32 an ``X-Page-Usage`` header existed in older versions of the page; the simulator does
not send it).
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

APP_USAGE_HEADER = "X-App-Usage"
BUSINESS_USAGE_HEADER = "X-Business-Use-Case-Usage"
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


@dataclass(frozen=True)
class RateLimit:
    """One limit: the ``type`` in ``X-Business-Use-Case-Usage`` (or ``app``), its throttle code and its header."""

    name: str
    code: int
    header: str
    endpoints: frozenset[str]


CATALOG_BATCH = RateLimit("catalog_batch", 80014, BUSINESS_USAGE_HEADER, frozenset({"items_batch"}))
CATALOG_MANAGEMENT = RateLimit(
    "catalog_management",
    80009,
    BUSINESS_USAGE_HEADER,
    frozenset({"products", "product_item", "product_catalog", "check_batch_request_status"}),
)
PAGES = RateLimit(
    "pages",
    80001,
    BUSINESS_USAGE_HEADER,
    frozenset(
        {"commerce_orders", "acknowledge_orders", "acknowledge_order", "items", "cancellations", "commerce_order"}
    ),
)
ADS_MANAGEMENT = RateLimit("ads_management", 80004, BUSINESS_USAGE_HEADER, frozenset())
APP = RateLimit("app", 4, APP_USAGE_HEADER, frozenset())
LIMITS: dict[int, RateLimit] = {
    limit.code: limit for limit in (CATALOG_BATCH, CATALOG_MANAGEMENT, PAGES, ADS_MANAGEMENT, APP)
}


def throttle_headers(code: int, business_id: str | None, regain_minutes: int) -> dict[str, str]:
    """The usage headers of an answer throttled with ``code``: the header of that code's limit, at 100 percent.

    A BUC code reports its own ``type`` keyed by ``business_id`` (the object the call touched) with the wait; the
    app's code 4 fills ``X-App-Usage``. Codes without a documented header (17, 32, 613) add none; the front door then
    adds the endpoint's ordinary usage headers, as it does for a BUC code's ``X-App-Usage``.
    """
    limit = LIMITS.get(code)
    if limit is None:
        return {}
    if limit.header == APP_USAGE_HEADER:
        return {APP_USAGE_HEADER: json.dumps({"call_count": 100, "total_cputime": 100, "total_time": 100})}
    if business_id is None:
        return {}
    return {
        BUSINESS_USAGE_HEADER: json.dumps(
            {
                business_id: [
                    {
                        "type": limit.name,
                        "call_count": 100,
                        "total_cputime": 100,
                        "total_time": 100,
                        "estimated_time_to_regain_access": regain_minutes,
                    }
                ]
            }
        )
    }
