"""assign_buckets' composition root: one pass (or the part that fits) of the velocity-bucket assignment
(logic/bucketing.py), resuming where the previous run stopped; moved SKUs go to the recompute queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from stocksync import clock
from stocksync.dal import aws
from stocksync.dal.assignment_positions import AssignmentPositions
from stocksync.logic.bucketing import BucketAssignment
from stocksync.models.settings import Settings
from stocksync.observability import logger, metrics
from stocksync.wiring import parts


def handle(event: dict[str, Any], context: Any, settings: Settings) -> dict[str, Any]:
    """Re-evaluate velocity buckets from where the last run stopped; moved SKUs are recomputed."""
    now = clock.now()
    skus = parts.sku_table(settings)
    positions = AssignmentPositions(aws.client("dynamodb"), settings.control_table)
    recompute_queue = parts.recompute_queue(settings)
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
    report = assignment.run(positions.load(), time_left=parts.time_left(context))
    positions.save(report.resume_at)
    metrics.add_metric(name="BucketMoves", unit=MetricUnit.Count, value=report.moved)
    metrics.add_metric(name="VelocitiesMeasured", unit=MetricUnit.Count, value=report.measured)
    result = parts.describe(report)
    result["resume_at"] = (
        {"bucket": report.resume_at.bucket, "after": report.resume_at.after} if report.resume_at else None
    )
    logger.info("bucket assignment finished" if report.finished else "bucket assignment paused", extra=result)
    return result
