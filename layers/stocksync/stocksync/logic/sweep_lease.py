"""One sweep of a bucket at a time: how long a sweep part holds its bucket, and what a part does without it.

A sweep of a large bucket is one logical run in several invocations (each part hands the rest to the sweep queue).
The bucket's schedule fires on its own clock, so without a rule a scheduled start could page the bucket while the
previous run's continuation is still running or queued: every changed SKU claimed twice over, pushes competing for
the call budget. The run therefore holds a lease on its bucket from its first part to its last.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class SweepAdmission(StrEnum):
    PROCEED = "proceed"  # this part holds the bucket: sweep
    SKIP = "skip"  # a scheduled start while another run holds the bucket: that run covers this period
    STOP = "stop"  # a continuation whose run lost the bucket (expired, then taken by a newer run, or released)


def sweep_lease_name(bucket: str) -> str:
    return f"sweep#{bucket}"


def admit(*, continuation: bool, holds_lease: bool) -> SweepAdmission:
    """A part that holds the lease sweeps. A scheduled start that could not get it skips: the live run sweeps the
    whole bucket anyway, and a schedule retried after a failure would only find the bucket still held, so the skip is
    a success. A continuation that could not renew stops: a newer run sweeps the bucket from its start, so nothing
    is lost, and going on would page the bucket beside it."""
    if holds_lease:
        return SweepAdmission.PROCEED
    return SweepAdmission.STOP if continuation else SweepAdmission.SKIP


def sweep_lease_until(now: datetime, time_left_seconds: float) -> datetime:
    """When a part's lease expires: twice the part's own time, counted from its start.

    ``time_left_seconds`` is the invocation's time left when the part starts, i.e. the function's timeout (300 s),
    so the lease follows whatever timeout the function is deployed with. Twice that:

    - outlives the part: a part renews at its start and never runs past its timeout, so a running part never loses
      its bucket (a lease shorter than the timeout would let a second run in beside a slow part);
    - leaves at least one more timeout for the sweep queue to deliver the continuation, which normally starts in
      about a second (the queue has no delay; the hand-over is sent in the part's last seconds);
    - lets go of a crashed run soon: at most two timeouts (10 min) after its last part started, the schedule's next
      start takes the bucket over. That is well inside the sweep queue's visibility timeout (1,800 s, at least six
      function timeouts), so a crashed part's message, when it comes back, finds the bucket held by the newer run
      and stops, instead of the bucket waiting for the redelivery. If no newer run took it, the lease is still the
      run's own and the redelivered part renews it and goes on.
    """
    return now + timedelta(seconds=2 * max(time_left_seconds, 0.0))
