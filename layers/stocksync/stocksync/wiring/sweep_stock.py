"""sweep_stock's composition root: a bucket's schedule, or a batch of hand-overs from the sweep queue, into a sweep
of that bucket (logic/recompute.py, ``sweep_bucket``) under the bucket's lease (logic/sweep_lease.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.leases import Leases
from stocksync.errors import ConfigurationError, InvalidInputError
from stocksync.integrations.recompute_io import DeadLetterRejects, SweepHandOver, report_run
from stocksync.integrations.sqs_batch import ReasonedBatchProcessor, rejection_reason
from stocksync.logic.recompute import sweep_bucket
from stocksync.logic.sweep_lease import SweepAdmission, admit, sweep_lease_name, sweep_lease_until
from stocksync.models.recompute import SweepRequest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts
from stocksync.wiring.recompute_parts import stock_recompute

SOURCE = "sweep_stock"
# Time a sweep keeps for answering over-selling and handing over, on top of twice its slowest page.
SWEEP_RESERVE_SECONDS = 10.0
SWEEP_PAGE_SIZE = 1000

TimeLeft = Callable[[], float]


def require_sweep_queue(settings: Settings) -> str:
    """The sweep hands itself over through SWEEP_QUEUE_URL; without it a long sweep could not finish."""
    if not settings.sweep_queue_url:
        raise ConfigurationError("SWEEP_QUEUE_URL", "must be set for the bucket sweep")
    return settings.sweep_queue_url


def sweep_request(raw: Any, settings: Settings) -> SweepRequest:
    """Raises ValidationError or InvalidInputError (unknown bucket), each naming the field."""
    request = SweepRequest.model_validate(raw)
    if request.bucket not in settings.buckets:
        raise InvalidInputError("bucket", f"unknown bucket {request.bucket!r}; known: {sorted(settings.buckets)}")
    return request


def _invocation_id(context: Any) -> str:
    """The run id of a scheduled start: the Lambda request id, which Lambda keeps when it retries a failed
    asynchronous invocation, so a retried start takes its own lease back instead of skipping."""
    return str(getattr(context, "aws_request_id", "") or uuid.uuid4())


def run_sweep(request: SweepRequest, settings: Settings, *, time_left: TimeLeft, run: str) -> dict[str, Any]:
    """Sweep one bucket (or the part that fits the time left, handing the rest over through the sweep queue), if
    this part holds the bucket's lease.

    ``run`` names the logical sweep: the hand-over's own (``request.run``) for a continuation, the invocation's id
    for a scheduled start. A start acquires the lease (or skips: another run is sweeping this bucket); a
    continuation renews it (or stops: its run lost the bucket); the last part releases it.
    """
    now = clock.now()
    continuation = request.run is not None
    leases = Leases(aws.client("dynamodb"), settings.control_table)
    lease, until = sweep_lease_name(request.bucket), sweep_lease_until(now, time_left())
    claim = leases.renew(lease, run, until=until) if continuation else leases.acquire(lease, run, until=until)
    admission = admit(continuation=continuation, holds_lease=claim.held)
    if admission is not SweepAdmission.PROCEED:
        holder = {"holder": claim.holder, "held_until": claim.expires_at.isoformat() if claim.expires_at else None}
        outcome = "skipped" if admission is SweepAdmission.SKIP else "stopped"
        result = {"bucket": request.bucket, outcome: True, "run": run, "part": request.part, **holder}
        if admission is SweepAdmission.SKIP:
            metrics.add_metric(name="SweepsSkipped", unit=MetricUnit.Count, value=1)
            logger.info(f"sweep of bucket {request.bucket} skipped: run {claim.holder} is sweeping it", extra=result)
        else:
            metrics.add_metric(name="SweepsStopped", unit=MetricUnit.Count, value=1)
            logger.warning(
                f"sweep of bucket {request.bucket} stopped: run {run} no longer holds it (holder: {claim.holder})",
                extra=result,
            )
        return result

    skus = parts.sku_table(settings)
    recompute = stock_recompute(settings, skus, now=now)
    report = sweep_bucket(
        request,
        pages=skus,
        recompute=recompute,
        rejects=DeadLetterRejects(parts.dead_letters(settings), source=SOURCE, bucket=request.bucket),
        time_left=time_left,
        page_size=SWEEP_PAGE_SIZE,
        reserve_seconds=SWEEP_RESERVE_SECONDS,
    )
    summary = report_run(recompute.finish(), trigger="sweep")
    started_at = request.started_at or now
    if report.resume_after is not None:
        # The continuation carries the run: it renews the lease this part holds, and no other run sweeps meanwhile.
        SweepHandOver(parts.queue(require_sweep_queue(settings))).hand_over(
            SweepRequest(
                bucket=request.bucket,
                after=report.resume_after,
                started_at=started_at,
                part=request.part + 1,
                run=run,
            )
        )
    else:
        metrics.add_metric(
            name="SweepSeconds", unit=MetricUnit.Seconds, value=(clock.now() - started_at).total_seconds()
        )
        _release(leases, lease, run, bucket=request.bucket)
    result = {
        **parts.describe(report),
        **summary,
        "part": request.part,
        "run": run,
        "dynamodb_requests": skus.requests,
    }
    logger.info("sweep finished" if report.finished else "sweep handed over", extra=result)
    return result


def _release(leases: Leases, lease: str, run: str, *, bucket: str) -> None:
    """Free the bucket for the next scheduled start. The sweep's work is done and kept either way: a release that
    fails (or finds the lease gone) is logged, not raised, since a retry would sweep the bucket again, and the lease
    lapses on its own."""
    try:
        released = leases.release(lease, run)
    except (ClientError, BotoCoreError) as error:
        logger.error("sweep lease not released", extra={"bucket": bucket, "run": run, "error": str(error)})
        return
    if not released:
        logger.warning("sweep lease was no longer this run's at its end", extra={"bucket": bucket, "run": run})


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """A bucket's schedule (``{"bucket": "fast"}``) or a batch of hand-overs from the sweep queue."""

    time_left = parts.time_left(context)

    def run_hand_over(record: Any) -> None:
        request = sweep_request(record.json_body, settings)
        # A hand-over sent before hand-overs carried their run starts a run of its own (and acquires the lease).
        run_sweep(request, settings, time_left=time_left, run=request.run or str(record.message_id))

    if "Records" in event:
        processor = ReasonedBatchProcessor(source=SOURCE, dead_letters=parts.dead_letters(settings))
        return processor.run(event, context, run_hand_over)
    try:
        request = sweep_request(event, settings)
    except (ValidationError, InvalidInputError) as error:
        return parts.reject_event(settings, source=SOURCE, reason=rejection_reason(error) or str(error), event=event)
    return run_sweep(request, settings, time_left=time_left, run=request.run or _invocation_id(context))
