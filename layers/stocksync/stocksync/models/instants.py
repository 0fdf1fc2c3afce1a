"""Instants a sender stamps on its input, bounded by the product's clock (docs/design.md, "Bounds at the edges").

Why a bound on the future: the newest ``as_of`` wins, for a warehouse level, a settings change and a snapshot line
alike, so one level dated 2099 would win over every real count until 2099 (an audit saw it freeze a SKU at 5 units
after a real 50). An order's ``placed_at`` dates the units it took from the platform's copy (docs/catalog.md) and an
event's ``occurred_at`` dates the sighting itself: a date in the future puts the move after every push, so the
catalog model would believe it forever. A sender's clock may run a little ahead of ours, so the bound is now plus
``MAX_CLOCK_SKEW``; past it the input is refused with its field named, like any other bad value.

"Now" is ``stocksync.clock.now()``: real UTC time in AWS, the simulated clock in the replay and its tests, so a
scenario's events are judged against the scenario's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from stocksync import clock

# How far ahead of the product's clock a sender's timestamp may be. Five minutes covers an NTP-synced sender's drift
# and a producer that stamps an event just before its clock is corrected, and is short next to what a wrong date
# freezes: a level dated even an hour ahead would hide every real count of that hour.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def not_in_future(value: datetime) -> datetime:
    """Refuse an instant later than now plus ``MAX_CLOCK_SKEW``, saying by how much and against which clock."""
    now = clock.now()
    if value > now + MAX_CLOCK_SKEW:
        ahead = value - now
        raise ValueError(
            f"lies {_span(ahead)} in the future (now is {now.isoformat()}); at most "
            f"{_span(MAX_CLOCK_SKEW)} of clock skew is accepted"
        )
    return value


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


# An aware instant no later than now + MAX_CLOCK_SKEW: what every sender-stamped time of an input is.
SenderInstant = Annotated[AwareDatetime, AfterValidator(not_in_future)]
