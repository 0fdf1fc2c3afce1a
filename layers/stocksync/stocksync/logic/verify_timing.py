"""When to ask the platform about a batch: delays derived from how long the catalog's batches actually took.

The platform never says when it finished a batch; a status check only says "still processing" or "done". Each
settled batch therefore yields an interval, measured from its acceptance (``BatchRecord.accepted_at``):

- ``lower``: the last check that saw it still processing (0 when the first check already found it done);
- ``upper``: the check that found it done.

Its processing time lies in ``(lower, upper]``. The estimator spreads each observation evenly over its interval and
reads quantiles of the resulting mixture (of the last ``MAX_OBSERVATIONS`` batches of the catalog).

**Why the intervals, not the times batches were found done.** An estimate built from upper bounds alone can never
fall below the delay it chose itself: a batch that took 5 s, first checked at 60 s, is "done at 60 s"; the next
first check goes out at 60 s again and sees the same, forever. The upper bound is set by our schedule, not by the
platform. Spreading the observation over ``(0, 60]`` puts half its weight below 30 s, so the next batch is checked
earlier. If that check is too early, the batch is still processing and its interval ``(lower, upper]`` lifts the
estimate again. Checks thus bisect toward the true time from both sides: the estimate goes down when batches get
faster and up when they get slower. When every observation brackets the true time T with intervals at most w wide,
every quantile of the mixture lies within w of T (the mixture has no weight outside the intervals), so the narrower
the brackets, the closer the estimate.

**Which quantile.** The first check aims at the median (``FIRST_CHECK_QUANTILE``): a check that comes too early
costs one status call (its own budget), one that comes too late costs latency on every row of the batch. A batch
still processing is checked next at a higher quantile of the time *remaining given what it has already taken*
(``RECHECK_QUANTILES``: 0.75, 0.9, then the longest observed). Once it has taken longer than anything observed, the
estimate knows nothing: the delay doubles the time since acceptance (today's schedule shape: 60, 120, 240 ... s is
a check at twice the elapsed time). Without any observation (a new catalog), the configured first delay and
``doubling_delay`` apply unchanged.

Every delay is at least ``MIN_CHECK_DELAY_SECONDS`` (a status call every second would spend the budget on nothing)
and at most SQS's 900 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

MIN_CHECK_DELAY_SECONDS = 5
MAX_CHECK_DELAY_SECONDS = 900  # SQS's longest delay
MAX_OBSERVATIONS = 20
FIRST_CHECK_QUANTILE = 0.5
# The quantile the next check aims at after the 1st, 2nd, 3rd (and later) checks that found the batch processing.
RECHECK_QUANTILES = (0.75, 0.9, 1.0)
_EPSILON = 1e-9


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Observation:
    """One settled batch: its processing time lies in ``(lower_ms, upper_ms]`` after its acceptance."""

    handle: str
    lower_ms: int
    upper_ms: int
    observed_at_ms: int

    @classmethod
    def of(
        cls, handle: str, *, accepted_at: datetime, last_processing_at: datetime | None, done_at: datetime
    ) -> Observation:
        """The interval one batch's checks bracketed. Clocks are never perfect: bounds are kept in order and never
        before the acceptance, so one skewed observation cannot make the estimate negative."""
        accepted = _epoch_ms(accepted_at)
        upper = max(0, _epoch_ms(done_at) - accepted)
        lower = 0 if last_processing_at is None else max(0, _epoch_ms(last_processing_at) - accepted)
        return cls(handle, min(lower, upper), upper, _epoch_ms(done_at))

    @property
    def bounds(self) -> tuple[float, float]:
        # A zero-width interval gets 1 ms, so the mixture stays continuous (no point masses to special-case).
        upper = float(max(self.upper_ms, 1))
        return min(float(self.lower_ms), upper - 1), upper

    def mass_between(self, start: float, end: float) -> float:
        """This observation's weight (of 1) in ``(start, end]``."""
        lower, upper = self.bounds
        overlap = min(end, upper) - max(start, lower)
        return max(0.0, overlap) / (upper - lower)


def remember(
    observations: Sequence[Observation], new: Observation, *, limit: int = MAX_OBSERVATIONS
) -> tuple[Observation, ...] | None:
    """The newest ``limit`` observations with ``new`` added; None when its handle is there already (a redelivered
    verify message must not count its batch twice)."""
    if any(existing.handle == new.handle for existing in observations):
        return None
    return (*observations, new)[-limit:]


def processing_quantile(observations: Iterable[Observation], quantile: float, *, after_ms: float = 0) -> float | None:
    """The ``quantile`` of processing time (ms after acceptance), given it is longer than ``after_ms``.

    None when no observation has any weight beyond ``after_ms``: the batch has already taken longer than every
    batch observed, and the observations say nothing about how much longer it will take.
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    kept = list(observations)
    beyond = sum(observation.mass_between(after_ms, math.inf) for observation in kept)
    if beyond <= _EPSILON:
        return None
    target = quantile * beyond
    edges = sorted({edge for observation in kept for edge in observation.bounds if edge > after_ms})
    previous, reached = float(after_ms), 0.0
    for edge in edges:
        gained = sum(observation.mass_between(previous, edge) for observation in kept)
        if reached + gained >= target - _EPSILON:
            # The mixture's distribution is linear between two edges: interpolate inside the segment.
            share = (target - reached) / gained if gained > _EPSILON else 1.0
            return previous + min(1.0, max(0.0, share)) * (edge - previous)
        reached += gained
        previous = edge
    return previous


def clamp_delay(seconds: float) -> int:
    """A check delay SQS can carry: whole seconds, at least the floor, at most 900."""
    return min(MAX_CHECK_DELAY_SECONDS, max(MIN_CHECK_DELAY_SECONDS, math.ceil(seconds - _EPSILON)))


def doubling_delay(attempt: int, base_seconds: int) -> int:
    """The schedule without observations: the delay before check ``attempt + 1`` is base, 2 x base, 4 x base, ...
    capped at 900 s."""
    return min(MAX_CHECK_DELAY_SECONDS, max(1, base_seconds) * 2 ** (attempt - 1))


def first_check_delay(observations: Sequence[Observation], default_seconds: int) -> int:
    """The delay between an items_batch call and its first status check: the median observed processing time, or
    ``default_seconds`` (VerifyDelaySeconds) before any batch of the catalog was observed."""
    estimate = processing_quantile(observations, FIRST_CHECK_QUANTILE) if observations else None
    if estimate is None:
        return default_seconds
    return clamp_delay(estimate / 1000)


def recheck_quantile(attempt: int) -> float:
    """The quantile the next check aims at after check ``attempt`` found the batch still processing."""
    return RECHECK_QUANTILES[min(max(attempt, 1), len(RECHECK_QUANTILES)) - 1]


@dataclass(frozen=True)
class RecheckPlan:
    """When to check a batch still processing again, and why (logged with every check).

    ``basis``: ``default`` (no observation yet: doubling from VerifyDelaySeconds), ``estimate`` (the ``quantile``
    of the observed processing times, given the time already taken) or ``doubling`` (it has taken longer than any
    batch observed: the next check at twice the time since acceptance). ``estimate_seconds``: the processing time
    (from acceptance) the next check aims at.
    """

    delay_seconds: int
    basis: str
    quantile: float | None = None
    estimate_seconds: float | None = None


def plan_recheck(
    observations: Sequence[Observation], *, attempt: int, elapsed_seconds: float, base_seconds: int
) -> RecheckPlan:
    """When to check again a batch that check ``attempt`` found still processing, ``elapsed_seconds`` after its
    acceptance."""
    if not observations:
        return RecheckPlan(doubling_delay(attempt, base_seconds), "default")
    quantile = recheck_quantile(attempt)
    elapsed_ms = max(0.0, elapsed_seconds * 1000)
    estimate = processing_quantile(observations, quantile, after_ms=elapsed_ms)
    if estimate is None:
        return RecheckPlan(clamp_delay(elapsed_seconds), "doubling", quantile)
    return RecheckPlan(clamp_delay((estimate - elapsed_ms) / 1000), "estimate", quantile, round(estimate / 1000, 3))
