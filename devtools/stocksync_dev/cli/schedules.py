"""Schedule expressions as a replay fires them on the simulated clock.

Kept apart from the pipeline (which needs moto) because scenario validation asks the same question before anything
starts: can this expression be fired faithfully? A replay that fired a schedule it cannot simulate on some guessed
cadence would report results no deployment produces, so such an expression is refused by name instead.

Two forms are simulated: ``rate(N unit)``, which fires every N units from when the schedule was created (in a replay,
its start), and ``cron(0/N * * * ? *)`` (or ``*/N``), which fires on the UTC clock's minutes divisible by N, with a
shorter gap at the hour when N does not divide 60, as EventBridge fires it. A cron at given hours or days is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# cron(M H ...) whose only constraint is a step in the minutes: cron(0/5 * * * ? *), cron(*/10 * * * ? *).
_CRON_MINUTE_STEP = re.compile(r"^cron\((?:\*|0)/(\d+) \* \* \* [*?] \*\)$")
SIMULATED_FORMS = "rate(N minutes|hours|days) or cron(0/N * * * ? *)"


def interval_seconds(expression: str) -> float:
    """How often a schedule fires: ``rate(N unit)``, or a cron whose only constraint is a step in the minutes.

    Anything else (a cron firing at given hours or days) has no single interval, and a replay that runs it on a
    cadence refuses it by name rather than guessing one (ValueError).
    """
    rate = _RATE.match(expression.strip())
    if rate and int(rate.group(1)) > 0:
        return int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")]
    step = _minute_step(expression)
    if step is not None:
        return step * 60
    raise ValueError(f"{expression!r} has no single interval; the replay runs {SIMULATED_FORMS}")


def _minute_step(expression: str) -> int | None:
    cron = _CRON_MINUTE_STEP.match(expression.strip())
    return int(cron.group(1)) if cron and 0 < int(cron.group(1)) < 60 else None


@dataclass(frozen=True)
class Ticks:
    """When one schedule fires. ``origin`` is when it was created: a rate's phase (a cron's comes from the clock)."""

    expression: str
    origin: datetime

    def __post_init__(self) -> None:
        interval_seconds(self.expression)  # refuses what cannot be simulated, before the first tick is asked for
        if self.origin.utcoffset() is None:
            raise ValueError("a schedule's origin is a timezone-aware time")

    def after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment``: the next one once a firing has run."""
        step = _minute_step(self.expression)
        if step is None:
            every = timedelta(seconds=interval_seconds(self.expression))
            if moment < self.origin:
                return self.origin + every
            return self.origin + ((moment - self.origin) // every + 1) * every
        minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute.minute % step:  # at most 59 minutes on; minute 0 of every hour always fires
            minute += timedelta(minutes=1)
        return minute

    def at_or_after(self, moment: datetime) -> datetime:
        """The first firing at ``moment`` or later: where a schedule resumes after time in which nothing ran."""
        return self.after(moment - timedelta(microseconds=1))


__all__ = ["SIMULATED_FORMS", "Ticks", "interval_seconds"]
