"""What the recompute_stock, sweep_stock and assign_buckets handlers call: the parts built from the settings, run.

Three functions, not one, because their triggers differ in shape and in time: the recompute queue's batches are
small and many (seconds), a bucket sweep may page through 100,000 SKUs and hand itself over (minutes), and the
bucket assignment reads sales records on its own slow schedule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from stocksync import clock, composition
from stocksync.dal import aws
from stocksync.dal.assignment_positions import AssignmentPositions
from stocksync.dal.leases import Leases
from stocksync.dal.sku_table import SkuTable
from stocksync.errors import ConfigurationError, InvalidInputError
from stocksync.integrations.graph_api import graph_client_from_settings
from stocksync.integrations.messaging import QueuePublisher
from stocksync.integrations.recompute_io import (
    BusOverSellingAlerts,
    CatalogReadQueue,
    DeadLetterRejects,
    GraphOrderCanceller,
    PushQueueSender,
    SweepHandOver,
    report_run,
)
from stocksync.integrations.recompute_queue import RecomputeQueueBatch
from stocksync.integrations.sqs_batch import handle_sqs_batch, rejection_reason
from stocksync.logic.bucketing import BucketAssignment
from stocksync.logic.overselling import OverSellingResponder
from stocksync.logic.recompute import StockRecompute, sweep_bucket
from stocksync.logic.sweep_lease import SweepAdmission, admit, sweep_lease_name, sweep_lease_until
from stocksync.models.recompute import SweepRequest
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics

RECOMPUTE_SOURCE = "recompute_stock"
SWEEP_SOURCE = "sweep_stock"
# Time a sweep keeps for answering over-selling and handing over, on top of twice its slowest page.
SWEEP_RESERVE_SECONDS = 10.0
SWEEP_PAGE_SIZE = 1000

TimeLeft = Callable[[], float]


def stock_recompute(settings: Settings, skus: SkuTable, *, now: datetime) -> StockRecompute:
    canceller = GraphOrderCanceller(graph_client_from_settings(settings)) if settings.auto_cancel_oversold else None
    responder = OverSellingResponder(
        lambda: composition.ledger(settings, now=now).open_rows(),
        BusOverSellingAlerts(composition.bus(settings)),
        canceller,
        mode=settings.deduction_mode,
        now=now,
    )
    reads = None
    if settings.catalog_reads_enabled:
        reads = CatalogReadQueue(QueuePublisher(aws.client("sqs"), settings.catalog_read_queue_url))
    return StockRecompute(
        skus,
        PushQueueSender(QueuePublisher(aws.client("sqs"), settings.push_queue_url)),
        responder,
        buckets=settings.buckets,
        default_bucket=settings.default_bucket,
        mode=settings.deduction_mode,
        confirmation_timeout=timedelta(seconds=settings.confirmation_timeout_seconds),
        now=now,
        reads=reads,
    )


# ------------------------------------------------------------------------------------------------- queue


def recompute_queue_batch(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """One batch of the recompute queue; returns the ``batchItemFailures`` answer."""
    skus = composition.sku_table(settings)
    recompute = stock_recompute(settings, skus, now=clock.now())
    batch = RecomputeQueueBatch(skus, recompute, buckets=settings.buckets.keys())
    batch.prefetch(event.get("Records", []))
    response = handle_sqs_batch(
        event,
        context,
        source=RECOMPUTE_SOURCE,
        handle_record=batch.handle,
        dead_letters=composition.dead_letters(settings),
    )
    summary = report_run(recompute.finish(), trigger="queue")
    # A claimed push (or a read) that could not be sent: its messages come back, and the redelivery sends it.
    failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
    for message_id in batch.message_ids(recompute.unsent):
        if message_id not in failed:
            failed.add(message_id)
            response.setdefault("batchItemFailures", []).append({"itemIdentifier": message_id})
    logger.info("recompute batch finished", extra=summary)
    return response


# ------------------------------------------------------------------------------------------------- sweep


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

    skus = composition.sku_table(settings)
    recompute = stock_recompute(settings, skus, now=now)
    report = sweep_bucket(
        request,
        pages=skus,
        recompute=recompute,
        rejects=DeadLetterRejects(composition.dead_letters(settings), source=SWEEP_SOURCE, bucket=request.bucket),
        time_left=time_left,
        page_size=SWEEP_PAGE_SIZE,
        reserve_seconds=SWEEP_RESERVE_SECONDS,
    )
    summary = report_run(recompute.finish(), trigger="sweep")
    started_at = request.started_at or now
    if report.resume_after is not None:
        # The continuation carries the run: it renews the lease this part holds, and no other run sweeps meanwhile.
        SweepHandOver(QueuePublisher(aws.client("sqs"), require_sweep_queue(settings))).hand_over(
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
        **composition.describe(report),
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


def sweep_event(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """A bucket's schedule (``{"bucket": "fast"}``) or a batch of hand-overs from the sweep queue."""

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    def run_hand_over(record: Any) -> None:
        request = sweep_request(record.json_body, settings)
        # A hand-over sent before hand-overs carried their run starts a run of its own (and acquires the lease).
        run_sweep(request, settings, time_left=time_left, run=request.run or str(record.message_id))

    if "Records" in event:
        return handle_sqs_batch(
            event,
            context,
            source=SWEEP_SOURCE,
            handle_record=run_hand_over,
            dead_letters=composition.dead_letters(settings),
        )
    try:
        request = sweep_request(event, settings)
    except (ValidationError, InvalidInputError) as error:
        # A schedule with a bad input would fail the same way on every retry: dead-letter it, do not raise.
        reason = rejection_reason(error) or str(error)
        logger.error("invalid input", extra={"source": SWEEP_SOURCE, "reason": reason})
        metrics.add_metric(name="InvalidInput", unit=MetricUnit.Count, value=1)
        composition.dead_letters(settings).send(source=SWEEP_SOURCE, reason=reason, body=event)
        return {"rejected": reason}
    return run_sweep(request, settings, time_left=time_left, run=request.run or _invocation_id(context))


# ------------------------------------------------------------------------------------------------- buckets


def run_bucket_assignment(settings: Settings, *, time_left: TimeLeft) -> dict[str, Any]:
    """Re-evaluate velocity buckets from where the last run stopped; moved SKUs are recomputed."""
    now = clock.now()
    skus = composition.sku_table(settings)
    positions = AssignmentPositions(aws.client("dynamodb"), settings.control_table)
    recompute_queue = composition.recompute_queue(settings)
    assignment = BucketAssignment(
        pages=skus,
        velocities=skus,
        moves=skus,
        buckets=settings.buckets,
        hysteresis=settings.bucket_hysteresis,
        window=timedelta(hours=settings.velocity_window_hours),
        now=now,
        on_moved=lambda retailer_ids: recompute_queue.enqueue(retailer_ids, reason="bucket changed"),
    )
    report = assignment.run(positions.load(), time_left=time_left)
    positions.save(report.resume_at)
    metrics.add_metric(name="BucketMoves", unit=MetricUnit.Count, value=report.moved)
    metrics.add_metric(name="VelocitiesMeasured", unit=MetricUnit.Count, value=report.measured)
    result = composition.describe(report)
    result["resume_at"] = (
        {"bucket": report.resume_at.bucket, "after": report.resume_at.after} if report.resume_at else None
    )
    logger.info("bucket assignment finished" if report.finished else "bucket assignment paused", extra=result)
    return result
