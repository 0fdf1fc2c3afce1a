"""Helpers for calling handlers through their real entry points, as Lambda would."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities import parameters

from stocksync import clock, observability
from stocksync.dal.aws import reset_clients
from stocksync.models.settings import get_settings
from stocksync_dev.cli.pipeline import load_function

if TYPE_CHECKING:
    from stocksync_dev.local.aws import LocalAws

# Variables of the developer's own AWS setup that would take precedence over the fake credentials.
AMBIENT_AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py fresh (its module-level settings check runs against the current env)."""
    return load_function(function)


def forget_cached_environment(*also: Callable[[], object]) -> None:
    """Settings, boto3 clients and Powertools parameter providers are read once per process; forget them (and what
    ``also`` names: a module's own caches)."""
    for step in (get_settings.cache_clear, reset_clients, parameters.clear_caches, *also):
        step()


@contextmanager
def pointed_at(
    stack: LocalAws,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, str] | None = None,
    *,
    also_forget: tuple[Callable[[], object], ...] = (),
    only_aws: bool = False,
) -> Iterator[dict[str, str]]:
    """os.environ as a deployed function of ``stack`` sees it (the template's variables, resolved, and what points
    boto3 at moto), the developer's own AWS settings removed, cached environment forgotten, every table and queue
    emptied. Yields the environment; forgets the caches again after. ``only_aws``: just the AWS_ variables (a test of
    an adapter, not of a function), and the stack's data is left alone."""
    for name in list(os.environ):
        if name in AMBIENT_AWS_VARIABLES or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    environment = stack.function_environment(overrides)
    # A deployed function has POWERTOOLS_SERVICE_NAME (the stack's name) before it imports stocksync.observability,
    # so its Logger, its Metrics and the per-bucket metrics it makes later all agree. This process imported the
    # module before the stack existed: keep the name those objects took, or the metrics made afterwards would
    # carry another service than the rest.
    environment["POWERTOOLS_SERVICE_NAME"] = str(observability.metrics.service)
    for name, value in environment.items():
        if not only_aws or name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    forget_cached_environment(*also_forget)
    if not only_aws:
        stack.reset_data()
    try:
        yield environment
    finally:
        forget_cached_environment(*also_forget)


@dataclass
class FakeLambdaContext:
    function_name: str = "stocksync-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stocksync-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def sqs_event(bodies: list[Any], *, queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:queue") -> dict[str, Any]:
    """An SQS event as Lambda delivers it; non-string bodies are JSON-encoded."""
    records = []
    for index, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763900000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def bus_event(detail_type: str, detail: dict[str, Any], *, source: str = "com.example.merchant") -> dict[str, Any]:
    """An EventBridge event as an SQS target receives it in the message body."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-23T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def object_created(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    """The EventBridge event S3 sends for a new object, as the snapshot queue delivers it."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T03:00:05Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def drain_queue(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message currently visible on a queue (bodies parsed, attributes kept), deleting them."""
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(
                {
                    "body": json.loads(message["Body"]),
                    "attributes": {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def emitted_metrics(stdout: str) -> dict[str, Any]:
    """The metric values a handler printed as CloudWatch embedded-metric-format lines (Powertools Metrics), keyed
    ``"Namespace/Name service=value"`` as an alarm names them."""
    values: dict[str, Any] = {}
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dimensions = " ".join(f"{name}={blob[name]}" for group in directive["Dimensions"] for name in group)
            for metric in directive["Metrics"]:
                values[f"{directive['Namespace']}/{metric['Name']} {dimensions}"] = blob[metric["Name"]]
    return values


class SteppedClock:
    """The product's clock (``stocksync.clock``), moved only by the test: a lease or a deadline passes when the
    test says so. Use it with ``stepped_clock``."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@contextmanager
def stepped_clock(start: datetime) -> Iterator[SteppedClock]:
    """The product runs on a ``SteppedClock`` from ``start`` inside the block, on real time again after it."""
    stepped = SteppedClock(start)
    clock.use(stepped)
    try:
        yield stepped
    finally:
        clock.use(None)
