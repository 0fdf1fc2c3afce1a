"""When the Commerce Order Management endpoints stop answering, and how (the simulator's side of the API's end).

The Graph API v26.0 changelog (https://developers.facebook.com/docs/graph-api/changelog/version26.0) dates it:
calls on v26.0 and later are blocked from 2026-07-29, and the endpoints are removed from every remaining version on
2026-10-27. What a removed endpoint answers is not documented, so the answer is one of the shapes Graph uses for a
removed or unknown edge, selectable. Its own module because both the platform's state (which holds the setting)
and the order endpoints (which consult it) need it, and neither should import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from stocksync_dev.simulator.errors import GraphError, unknown_path, unsupported_request

V26_BLOCK_DATE = date(2026, 7, 29)  # calls on v26.0+ blocked from this day (v26.0 changelog)
REMOVAL_DATE = date(2026, 10, 27)  # removed from every remaining version on this day (v26.0 changelog)
BLOCKED_FROM_VERSION = (26, 0)
# The answers Graph gives for a removed or unknown edge; which one Meta gives for these endpoints is not documented.
REMOVAL_SHAPES = ("deprecated", "nonexisting_field", "unsupported_request", "unknown_path")
_NODE_TYPES = {"cms": "CommerceMerchantSettings", "order": "CommerceOrder"}


@dataclass
class OrderApiRemoval:
    """When the order endpoints stop answering, and how. The simulator's lock guards it.

    ``removed_on`` None keeps the API on every version but v26.0+ (the world a replay of a shop day on the order API
    needs); ``blocked_from_v26_on`` None serves v26.0+ too.
    """

    blocked_from_v26_on: date | None = V26_BLOCK_DATE
    removed_on: date | None = None
    shape: str = "deprecated"

    def __post_init__(self) -> None:
        check_removal_shape(self.shape)

    def is_served(self, version: tuple[int, int] | None, now: datetime) -> bool:
        """Whether a call on ``version`` (None: an unversioned path) reaches the order endpoints at ``now``."""
        today = now.date()
        if self.removed_on is not None and today >= self.removed_on:
            return False
        blocked = self.blocked_from_v26_on is not None and today >= self.blocked_from_v26_on
        return not (blocked and version is not None and version >= BLOCKED_FROM_VERSION)

    def refusal(self, method: str, node: str, node_kind: str | None, edge: str) -> GraphError:
        """The answer a call to ``/{node}/{edge}`` gets once the API is gone, in the selected shape."""
        if self.shape == "nonexisting_field":
            node_type = _NODE_TYPES.get(node_kind or "", "Node")
            return GraphError(100, f"(#100) Tried accessing nonexisting field ({edge}) on node type ({node_type})")
        if self.shape == "unsupported_request":
            return unsupported_request(method, node)
        if self.shape == "unknown_path":
            return unknown_path(f"/{edge}")
        # The wording Graph used for the v26.0 block; kept for the removal from every version too.
        return GraphError(12, "(#12) commerce_orders is deprecated for versions v26.0 and higher")


def check_removal_shape(shape: str) -> str:
    if shape not in REMOVAL_SHAPES:
        raise ValueError(f"the removal shape must be one of {', '.join(REMOVAL_SHAPES)}, got {shape!r}")
    return shape
