"""assign_buckets: on its schedule, moves SKUs without an explicit bucket to the bucket their sales velocity calls
for (with hysteresis), and queues the moved SKUs for a recompute (their threshold changed).

A pass over a large catalog may take several runs: each resumes where the previous one stopped.
"""

from __future__ import annotations

from typing import Any

# First, before anything imports pydantic: Powertools' batch module, when it finds pydantic loaded, builds its ~30
# parser models (Kafka, Kinesis, DynamoDB...) for type hints this function never uses, about a quarter of boto3's
# import time at every cold start (README, "Cold start").
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksync.models.settings import get_settings
from stocksync.observability import logger, metrics, tracer
from stocksync.recompute_entry import run_bucket_assignment

get_settings()  # validate the environment at cold start


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_bucket_assignment(get_settings(), time_left=lambda: context.get_remaining_time_in_millis() / 1000)
